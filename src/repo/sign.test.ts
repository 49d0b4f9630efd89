// ed25519 signatures of commits and summaries: key files, signing and checking, the exact signed
// messages (pinned by golden vectors made with a fixed test key), and the errors users see.
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify as edVerify } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GOLDEN_DIR, readGolden } from '../../test/support/golden.js';
import { useTempDir } from '../../test/support/temp.js';
import { ArborError, Exit, UsageError } from '../common/errors.js';
import { type Checksum, checksumToBytes, hashBytes } from '../common/hash.js';
import { type MetadataValue, decodeCommitMeta, encodeCommitMeta } from './objects/index.js';
import {
  SIGNATURES_KEY,
  type SignatureCheck,
  type SigningKey,
  checkCommitSignatures,
  checkSummarySignatures,
  generateKeyPair,
  keyId,
  loadPublicKeys,
  loadSigningKey,
  parsePublicKeys,
  requireTrustedSignature,
  signCommitMeta,
  signSummary,
  signatureEntries,
} from './sign.js';

/** The key the golden signature vectors were made with: ed25519 seed 00 01 02 … 1f. */
function testKey(): SigningKey {
  const seed = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const privateKey = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return { privateKey, publicKey: createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(12) };
}
const TEST_PUBLIC_KEY = '03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8';

function freshKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: publicKey.export({ format: 'der', type: 'spki' }).subarray(12) };
}

const COMMIT = readGolden('commit', 'with-parent').checksum;
const OTHER_COMMIT = readGolden('commit', 'no-parent').checksum;
const SUMMARY = { bytes: readFileSync(join(GOLDEN_DIR, 'summary/two-refs-two-deltas.bin')) };

/** Catches what `fn` throws, failing when it returns. */
function thrown(fn: () => unknown): ArborError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ArborError);
    return error as ArborError;
  }
  throw new Error('expected a throw');
}

const entries = (metadata: ReadonlyMap<string, MetadataValue>): Buffer[] => signatureEntries(metadata);

describe('key files', () => {
  const tmp = useTempDir('arbor-sign-');

  it('keygen writes a 0600 PEM private key and a base64 public key that load back as one pair', () => {
    const pair = generateKeyPair(join(tmp.path, 'release'));
    expect(statSync(pair.keyFile).mode & 0o777).toBe(0o600);
    const key = loadSigningKey(pair.keyFile);
    const [pub, ...rest] = loadPublicKeys(pair.pubFile);
    expect(rest).toEqual([]);
    expect(pub).toEqual(key.publicKey);
    expect(pair.keyId).toBe(keyId(key.publicKey));
    expect(pair.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('keygen → sign → verify gives one valid, trusted signature named by its key id', () => {
    const pair = generateKeyPair(join(tmp.path, 'roundtrip'));
    const meta = signCommitMeta(new Map(), COMMIT, loadSigningKey(pair.keyFile));
    // Through the stored form, as `arbor sign` writes it and `arbor verify` reads it.
    const stored = decodeCommitMeta(encodeCommitMeta(meta));
    expect(checkCommitSignatures(stored, COMMIT, loadPublicKeys(pair.pubFile))).toEqual([
      { keyId: pair.keyId, valid: true, trusted: true },
    ]);
  });

  it.each<[string, string | Buffer]>([
    ['a missing file', ''],
    ['a file that is not PEM', 'not a key\n'],
    [
      'an RSA private key',
      generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    ],
  ])('loadSigningKey rejects %s with E_KEY_INVALID (exit 2)', (what, content) => {
    const path = join(tmp.path, `bad-${what.replace(/\W+/g, '-')}`);
    if (content !== '') writeFileSync(path, content);
    const error = thrown(() => loadSigningKey(path));
    expect(error).toBeInstanceOf(UsageError);
    expect(error).toMatchObject({ code: 'E_KEY_INVALID', exit: Exit.Usage });
    expect(error.message).toContain(path);
  });
});

describe('parsePublicKeys', () => {
  const a = freshKey();
  const b = freshKey();
  const pem = (key: SigningKey): string =>
    createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }) as string;

  it('accepts base64 lines (what keygen writes), PEM blocks and comments; PEM keys come first', () => {
    expect(parsePublicKeys(`${a.publicKey.toString('base64')}\n`, 'k')).toEqual([a.publicKey]);
    expect(parsePublicKeys(pem(b), 'k')).toEqual([b.publicKey]);
    expect(parsePublicKeys(`# release keys\n\n  ${a.publicKey.toString('base64')}  \n${pem(b)}`, 'k')).toEqual([
      b.publicKey,
      a.publicKey,
    ]);
  });

  it.each<[string, string]>([
    ['an empty file', ''],
    ['only comments', '# nothing here\n'],
    ['a word', 'garbage\n'],
    ['base64 of 31 bytes', `${Buffer.alloc(31, 7).toString('base64')}\n`],
    ['base64 of 33 bytes', `${Buffer.alloc(33, 7).toString('base64')}\n`],
    ['hex instead of base64', `${Buffer.alloc(32, 7).toString('hex')}\n`],
    ['a good key followed by garbage', `${Buffer.alloc(32, 7).toString('base64')}\nnope\n`],
    [
      'an RSA PEM public key',
      generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }) as string,
    ],
    ['a PEM block with a broken body', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'],
  ])('rejects %s with E_KEY_INVALID (exit 2) naming the file', (_, text) => {
    const error = thrown(() => parsePublicKeys(text, "public key file 'k.pub'"));
    expect(error).toMatchObject({ code: 'E_KEY_INVALID', exit: Exit.Usage });
    expect(error.message).toContain("'k.pub'");
  });
});

describe('commit signatures', () => {
  const a = freshKey();
  const b = freshKey();

  it('a second key adds a second entry, and both are listed', () => {
    const meta = signCommitMeta(signCommitMeta(new Map(), COMMIT, a), COMMIT, b);
    expect(entries(meta)).toHaveLength(2);
    expect(checkCommitSignatures(meta, COMMIT, [a.publicKey, b.publicKey])).toEqual([
      { keyId: keyId(a.publicKey), valid: true, trusted: true },
      { keyId: keyId(b.publicKey), valid: true, trusted: true },
    ]);
  });

  it('signing again with the same key replaces its entry and keeps other metadata', () => {
    const other = new Map<string, MetadataValue>([['note', { type: 'string', value: 'kept' }]]);
    const meta = signCommitMeta(signCommitMeta(signCommitMeta(other, COMMIT, a), COMMIT, b), COMMIT, a);
    expect(entries(meta).map((e) => keyId(e.subarray(0, 32)))).toEqual([keyId(b.publicKey), keyId(a.publicKey)]);
    expect(meta.get('note')).toEqual({ type: 'string', value: 'kept' });
  });

  it.each([0, 31, 32, 63, 95])('a signature with byte %i flipped does not verify', (at) => {
    const meta = signCommitMeta(new Map(), COMMIT, a);
    const entry = Buffer.from(entries(meta)[0] as Buffer);
    entry[at] = (entry[at] as number) ^ 0x01;
    const [check] = checkCommitSignatures(new Map([[SIGNATURES_KEY, { type: 'bytes-list', value: [entry] }]]), COMMIT, [
      a.publicKey,
    ]);
    // Flipping the key half names another (untrusted) key; flipping the signature half breaks it.
    expect(check?.valid).toBe(false);
  });

  it('a signature of one commit is invalid for another', () => {
    const meta = signCommitMeta(new Map(), COMMIT, a);
    expect(checkCommitSignatures(meta, OTHER_COMMIT, [a.publicKey])).toEqual([
      { keyId: keyId(a.publicKey), valid: false, trusted: true },
    ]);
  });

  it('a valid signature by a key not in the trusted list is valid but untrusted', () => {
    const meta = signCommitMeta(new Map(), COMMIT, a);
    expect(checkCommitSignatures(meta, COMMIT, [b.publicKey])).toEqual([
      { keyId: keyId(a.publicKey), valid: true, trusted: false },
    ]);
  });

  it('ignores entries that are not 96 bytes and values of another type', () => {
    const meta = signCommitMeta(new Map(), COMMIT, a);
    const good = entries(meta)[0] as Buffer;
    expect(
      signatureEntries(
        new Map([
          [
            SIGNATURES_KEY,
            { type: 'bytes-list', value: [good.subarray(0, 95), good, Buffer.concat([good, Buffer.of(0)])] },
          ],
        ]),
      ),
    ).toEqual([good]);
    expect(signatureEntries(new Map([[SIGNATURES_KEY, { type: 'bytes', value: good }]]))).toEqual([]);
  });
});

describe('summary signatures', () => {
  const a = freshKey();
  const b = freshKey();

  it('cover the exact summary bytes: flipping any one byte makes the signature invalid', () => {
    const sig = signSummary(SUMMARY.bytes, a);
    expect(checkSummarySignatures(SUMMARY.bytes, sig, [a.publicKey])).toEqual([
      { keyId: keyId(a.publicKey), valid: true, trusted: true },
    ]);
    for (let at = 0; at < SUMMARY.bytes.length; at++) {
      const flipped = Buffer.from(SUMMARY.bytes);
      flipped[at] = (flipped[at] as number) ^ 0x80;
      expect(checkSummarySignatures(flipped, sig, [a.publicKey])[0]?.valid).toBe(false);
    }
    expect(checkSummarySignatures(SUMMARY.bytes.subarray(0, -1), sig, [a.publicKey])[0]?.valid).toBe(false);
  });

  it("signSummary keeps every key once: re-signing replaces that key's entry, another key adds one", () => {
    const once = signSummary(SUMMARY.bytes, a);
    const again = signSummary(SUMMARY.bytes, a, once);
    expect(entries(decodeCommitMeta(again))).toHaveLength(1);
    const both = signSummary(SUMMARY.bytes, b, again);
    expect(checkSummarySignatures(SUMMARY.bytes, both, [a.publicKey, b.publicKey])).toEqual([
      { keyId: keyId(a.publicKey), valid: true, trusted: true },
      { keyId: keyId(b.publicKey), valid: true, trusted: true },
    ]);
  });

  it('a commit signature is not a summary signature (the messages are domain-separated)', () => {
    const commitSig = entries(signCommitMeta(new Map(), COMMIT, a))[0] as Buffer;
    const sig = encodeCommitMeta(new Map([[SIGNATURES_KEY, { type: 'bytes-list', value: [commitSig] }]]));
    expect(checkSummarySignatures(SUMMARY.bytes, sig, [a.publicKey])[0]?.valid).toBe(false);
  });
});

describe('golden signatures (test key, seed 00 01 … 1f)', () => {
  const key = testKey();
  const verifyRaw = (entry: Buffer, message: Buffer): boolean =>
    edVerify(
      null,
      message,
      createPublicKey({
        key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), entry.subarray(0, 32)]),
        format: 'der',
        type: 'spki',
      }),
      entry.subarray(32),
    );

  it('the test key is the one the vectors name', () => {
    expect(key.publicKey.toString('hex')).toBe(TEST_PUBLIC_KEY);
  });

  it('commitmeta/ed25519-signed is what signCommitMeta writes for commit/with-parent, and it verifies', () => {
    const golden = readGolden('commitmeta', 'ed25519-signed');
    expect(encodeCommitMeta(signCommitMeta(new Map(), COMMIT, key))).toEqual(golden.bytes);
    expect(checkCommitSignatures(golden.value, COMMIT, [key.publicKey])).toEqual([
      { keyId: keyId(key.publicKey), valid: true, trusted: true },
    ]);
  });

  it('commitmeta/summary-sig is what signSummary writes for summary/two-refs-two-deltas, and it verifies', () => {
    const golden = readGolden('commitmeta', 'summary-sig');
    expect(signSummary(SUMMARY.bytes, key)).toEqual(golden.bytes);
    expect(checkSummarySignatures(SUMMARY.bytes, golden.bytes, [key.publicKey])[0]).toMatchObject({
      valid: true,
      trusted: true,
    });
  });

  // The signed messages, spelled out independently of sign.ts (docs/format.md §6.3).
  it('a commit signature signs "arbor commit signature v1\\0" ‖ the 32 checksum bytes, and nothing shorter', () => {
    const entry = entries(readGolden('commitmeta', 'ed25519-signed').value)[0] as Buffer;
    const digest = checksumToBytes(COMMIT as Checksum);
    expect(verifyRaw(entry, Buffer.concat([Buffer.from('arbor commit signature v1\0'), digest]))).toBe(true);
    expect(verifyRaw(entry, digest)).toBe(false);
    expect(verifyRaw(entry, Buffer.concat([Buffer.from('arbor commit signature v1'), digest]))).toBe(false);
  });

  it('a summary signature signs "arbor summary signature v1\\0" ‖ BLAKE3 of the summary bytes', () => {
    const entry = entries(readGolden('commitmeta', 'summary-sig').value)[0] as Buffer;
    expect(
      verifyRaw(
        entry,
        Buffer.concat([Buffer.from('arbor summary signature v1\0'), checksumToBytes(hashBytes(SUMMARY.bytes))]),
      ),
    ).toBe(true);
    expect(verifyRaw(entry, SUMMARY.bytes)).toBe(false);
  });
});

describe('requireTrustedSignature', () => {
  const check = (id: string, valid: boolean, trusted: boolean): SignatureCheck => ({ keyId: id, valid, trusted });

  it('returns the key id of the first valid, trusted signature', () => {
    expect(
      requireTrustedSignature(
        [check('aaaaaaaaaaaaaaaa', true, false), check('bbbbbbbbbbbbbbbb', true, true)],
        'commit x',
      ),
    ).toBe('bbbbbbbbbbbbbbbb');
  });

  it('names every key that signed and why it does not count', () => {
    const error = thrown(() =>
      requireTrustedSignature(
        [check('1111111111111111', true, false), check('2222222222222222', false, true)],
        "commit 3f of remote 'origin'",
      ),
    );
    expect(error).toMatchObject({ code: 'E_SIGNATURE_INVALID', exit: Exit.Failed });
    expect(error.message).toBe(
      "commit 3f of remote 'origin' has no valid signature by a trusted key: 1111111111111111 (unknown key), 2222222222222222 (does not verify)",
    );
    expect(error.hint).toContain('arbor remote show');
  });

  it('says E_SIGNATURE_MISSING when nothing signed', () => {
    const error = thrown(() => requireTrustedSignature([], "the summary of remote 'origin'"));
    expect(error).toMatchObject({ code: 'E_SIGNATURE_MISSING', exit: Exit.Failed });
    expect(error.message).toBe("the summary of remote 'origin' is not signed");
  });
});
