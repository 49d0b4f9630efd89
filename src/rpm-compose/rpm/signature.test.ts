// Signature tags and verdicts on small signature headers made here: which tags count and what they
// cover, how each verdict arises from a detached packet, and the package verdict rules. The real
// rpmsign and rpm -K are the reference in test/integration/rpm-signature.test.ts.
import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArborError, CorruptionError } from '../../common/errors.js';
import { OpenPgpKeyring, parseKeyring, verifyDetachedSignature } from '../openpgp.js';
import { verifyRepomdSignature } from '../repodata/repomd-signature.js';
import { decodeHeader, encodeHeader, type HeaderField } from './header.js';
import { assertRpmSignatureOk, listSignatureTags, packageVerdict, type RpmSignatureReport } from './signature.js';
import { RegionTag, SigTag, TagType } from './tags.js';

const context = { pkg: 'test.rpm', part: 'signature header' };
const bin = (tag: number, bytes: Buffer): HeaderField => ({ tag, data: { type: TagType.Bin, value: bytes } });
const sigHeader = (fields: HeaderField[]) => decodeHeader(encodeHeader(fields, RegionTag.Signatures), context);

describe('listSignatureTags', () => {
  it('lists header-only signatures before legacy ones, each with the bytes it covers', () => {
    const header = sigHeader([
      bin(SigTag.Gpg, Buffer.from('g')),
      bin(SigTag.Rsa, Buffer.from('r')),
      bin(SigTag.Md5, Buffer.alloc(16)),
      { tag: SigTag.Sha256, data: { type: TagType.String, value: 'ab' } },
    ]);
    expect(listSignatureTags(header)).toEqual([
      { tag: 268, name: 'RSAHEADER', covers: 'header', packet: Buffer.from('r') },
      { tag: 1005, name: 'GPG', covers: 'header+payload', packet: Buffer.from('g') },
    ]);
  });

  it('finds none in a header with digests only', () => {
    expect(listSignatureTags(sigHeader([bin(SigTag.Md5, Buffer.alloc(16))]))).toEqual([]);
  });

  it('refuses a signature tag that is not binary as a malformed package', () => {
    const header = sigHeader([{ tag: SigTag.Dsa, data: { type: TagType.String, value: 'x' } }]);
    expect(() => listSignatureTags(header)).toThrow(CorruptionError);
    expect(() => listSignatureTags(header)).toThrow(/tag 267 is of type 6, not binary/);
  });
});

describe('packageVerdict', () => {
  it.each<[string[], string]>([
    [[], 'unsigned'],
    [['ok'], 'ok'],
    [['ok', 'ok'], 'ok'],
    [['ok', 'nokey'], 'nokey'],
    [['nokey', 'bad'], 'bad'],
    [['unsupported', 'nokey'], 'unsupported'],
    [['bad', 'unsupported'], 'bad'],
  ])('signatures %j make the package %s', (verdicts, expected) => {
    expect(packageVerdict(verdicts.map((verdict) => ({ verdict: verdict as 'ok' })))).toBe(expected);
  });
});

describe('detached signature verdicts', () => {
  const data = Buffer.from('the main header bytes');
  let signer: openpgp.PrivateKey;
  let other: openpgp.PrivateKey;
  let packet: Uint8Array;
  let keyring: OpenPgpKeyring;
  beforeAll(async () => {
    const make = async (name: string) =>
      (await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name }], format: 'object' }))
        .privateKey;
    signer = await make('signer');
    other = await make('other');
    const message = await openpgp.createMessage({ binary: data });
    packet = await openpgp.sign({ message, signingKeys: signer, detached: true, format: 'binary' });
    keyring = new OpenPgpKeyring([signer.toPublic()]);
  });

  it('is ok for the signed bytes and names the key and algorithm', async () => {
    const check = await verifyDetachedSignature(packet, () => data, keyring);
    expect(check).toMatchObject({ verdict: 'ok', reason: undefined });
    expect(check.info).toMatchObject({ version: 4, algorithm: 'EdDSA/SHA512', keyId: signer.getKeyID().toHex() });
    expect(check.info?.fingerprint).toBe(signer.getFingerprint());
  });

  it('is bad when one byte of the signed data differs', async () => {
    const changed = Buffer.from(data);
    changed[0]! ^= 1;
    expect(await verifyDetachedSignature(packet, () => changed, keyring)).toMatchObject({ verdict: 'bad' });
  });

  it('is nokey, without reading the data, when the issuer is not in the keyring', async () => {
    const check = await verifyDetachedSignature(
      packet,
      () => {
        throw new Error('data read for a nokey verdict');
      },
      new OpenPgpKeyring([other.toPublic()]),
    );
    expect(check).toMatchObject({ verdict: 'nokey', info: { keyId: signer.getKeyID().toHex() } });
  });

  it.each<[string, () => Uint8Array]>([
    ['garbage', () => Buffer.from('not a packet at all')],
    ['a truncated packet', () => packet.subarray(0, packet.length - 5)],
    ['two signature packets', () => Buffer.concat([packet, packet])],
    ['a packet with trailing bytes', () => Buffer.concat([packet, Buffer.from([0])])],
  ])('is bad for %s', async (_name, bytes) => {
    expect((await verifyDetachedSignature(bytes(), () => data, keyring)).verdict).toBe('bad');
  });

  it('is unsupported for a version 3 signature packet, which openpgpjs does not read', async () => {
    // Old-format packet, tag 2 (signature), 1-byte length; the body starts with version 3.
    const v3 = Buffer.from([0x88, 0x05, 0x03, 0x05, 0x00, 0x00, 0x00]);
    expect(await verifyDetachedSignature(v3, () => data, keyring)).toMatchObject({
      verdict: 'unsupported',
      reason: expect.stringContaining('Version 3 of the signature packet is unsupported'),
    });
  });

  it('verifies repomd.xml.asc armored, and refuses it over other bytes', async () => {
    const message = await openpgp.createMessage({ binary: data });
    const armored = await openpgp.sign({ message, signingKeys: signer, detached: true });
    expect((await verifyRepomdSignature(data, armored, keyring)).verdict).toBe('ok');
    expect((await verifyRepomdSignature(Buffer.from(armored), armored, keyring)).verdict).toBe('bad');
    expect((await verifyRepomdSignature(data, Buffer.from(armored), keyring)).verdict).toBe('ok');
  });
});

describe('parseKeyring', () => {
  it('reads every armored block of a file and the public part of secret keys', async () => {
    const make = async (name: string) =>
      await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name }], format: 'armored' });
    const a = await make('a');
    const b = await make('b');
    const keys = await parseKeyring(Buffer.from(`${a.publicKey}\n${b.privateKey}`), 'keys.asc');
    expect(keys.map((k) => k.isPrivate())).toEqual([false, false]);
    expect(new OpenPgpKeyring(keys).keyIds).toHaveLength(4); // two primary keys, two subkeys
  });

  it.each([
    ['text without a key block', 'hello'],
    ['a broken armored block', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----'],
    ['binary garbage', '\u0001\u0002\u0003'],
  ])('refuses %s, naming the file', async (_name, text) => {
    await expect(parseKeyring(Buffer.from(text), 'keys.asc')).rejects.toMatchObject({
      code: 'E_OPENPGP_KEY_INVALID',
      message: expect.stringContaining("key file 'keys.asc'"),
    });
  });
});

describe('assertRpmSignatureOk', () => {
  const report = (verdicts: string[]): RpmSignatureReport => ({
    path: 'p.rpm',
    verdict: packageVerdict(verdicts.map((verdict) => ({ verdict: verdict as 'ok' }))),
    signatures: verdicts.map((verdict) => ({
      tag: SigTag.Rsa,
      name: 'RSAHEADER',
      covers: 'header',
      verdict: verdict as 'ok',
      reason: verdict === 'bad' ? 'Signed digest did not match' : undefined,
      algorithm: 'RSA/SHA256',
      keyId: '0123456789abcdef',
      fingerprint: undefined,
      created: undefined,
    })),
  });
  it.each<[string[], RegExp]>([
    [[], /^package 'p.rpm' is not signed$/],
    [['nokey'], /^package 'p.rpm': RSAHEADER signature by key ID 0123456789abcdef: key ID not among the keys$/],
    [['ok', 'bad'], /^package 'p.rpm': RSAHEADER signature by key ID 0123456789abcdef: BAD signature \(Signed digest/],
  ])('refuses signatures %j with E_RPM_SIGNATURE', (verdicts, message) => {
    expect(() => assertRpmSignatureOk(report(verdicts))).toThrow(ArborError);
    expect(() => assertRpmSignatureOk(report(verdicts))).toThrow(message);
    try {
      assertRpmSignatureOk(report(verdicts));
    } catch (error) {
      expect((error as ArborError).code).toBe('E_RPM_SIGNATURE');
    }
  });
  it('passes when every signature is ok', () => {
    expect(() => assertRpmSignatureOk(report(['ok', 'ok']))).not.toThrow();
  });
});
