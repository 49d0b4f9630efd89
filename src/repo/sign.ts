// ed25519 signatures (node:crypto) on commits (kept in their detached metadata) and on the
// summary (kept in `summary.sig`). A signature entry is the signer's 32-byte public key followed
// by the 64-byte signature, so several keys can sign one commit and a verifier can name them.
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ArborError, UsageError, errnoCode, ioError } from '../common/errors.js';
import { type Checksum, checksumToBytes, hashBytes } from '../common/hash.js';
import { writeFileAtomic } from '../common/fs-atomic.js';
import { type MetadataValue, decodeCommitMeta, encodeCommitMeta } from './objects/index.js';

// node:crypto loads on the first signature, not with this module: `arbor status` and `rollback` reach
// this file through the repository and never sign, and loading it is a few milliseconds of their start-up.
const crypto = () => process.getBuiltinModule('node:crypto');
/** The commitmeta / summary.sig key holding ed25519 signature entries (bytes-list). */
export const SIGNATURES_KEY = 'arbor.signatures.ed25519';

const COMMIT_DOMAIN = Buffer.from('arbor commit signature v1\0');
const SUMMARY_DOMAIN = Buffer.from('arbor summary signature v1\0');
const ENTRY_BYTES = 32 + 64;
// The DER prefix of an ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: Buffer;
}

/** The short id of a public key shown to users: 16 hex digits of its BLAKE3 hash. */
export function keyId(publicKey: Buffer): string {
  return hashBytes(publicKey).slice(0, 16);
}

function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

function publicKeyObject(raw: Buffer): KeyObject {
  return crypto().createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Writes PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (base64 of the raw public key). */
export function generateKeyPair(prefix: string): { keyFile: string; pubFile: string; keyId: string } {
  const { privateKey, publicKey } = crypto().generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  const keyFile = `${prefix}.key`;
  const pubFile = `${prefix}.pub`;
  try {
    writeFileAtomic(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
    writeFileAtomic(pubFile, `${raw.toString('base64')}\n`);
  } catch (error) {
    throw ioError('write key pair', prefix, error);
  }
  return { keyFile, pubFile, keyId: keyId(raw) };
}

function readKeyFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new UsageError('E_KEY_INVALID', `${what} '${path}' does not exist`);
    throw ioError(`read ${what}`, path, error);
  }
}

/** Loads a private key file written by `arbor keygen` (or any PEM ed25519 PKCS#8 key). */
export function loadSigningKey(path: string): SigningKey {
  const text = readKeyFile(path, 'key file');
  let privateKey: KeyObject;
  try {
    privateKey = crypto().createPrivateKey(text);
  } catch {
    throw new UsageError('E_KEY_INVALID', `'${path}' is not a PEM private key`, {
      hint: 'create one with `arbor keygen`',
    });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519')
    throw new UsageError('E_KEY_INVALID', `'${path}' holds a ${privateKey.asymmetricKeyType} key, not ed25519`);
  return { privateKey, publicKey: rawPublicKey(crypto().createPublicKey(privateKey)) };
}

/**
 * Parses public keys: one per line, each base64 of the raw 32 bytes (what keygen writes) or a
 * PEM SubjectPublicKeyInfo block.
 */
export function parsePublicKeys(text: string, what: string): Buffer[] {
  const keys: Buffer[] = [];
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  for (const pem of pems) {
    try {
      const key = crypto().createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
      keys.push(rawPublicKey(key));
    } catch {
      throw new UsageError('E_KEY_INVALID', `${what}: a PEM block is not an ed25519 public key`);
    }
  }
  const rest = text.replace(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g, '');
  for (const line of rest
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))) {
    const raw = /^[A-Za-z0-9+/]{43}=$/.test(line) ? Buffer.from(line, 'base64') : undefined;
    if (raw?.length !== 32)
      throw new UsageError('E_KEY_INVALID', `${what}: '${line.slice(0, 60)}' is not a base64 ed25519 public key`);
    keys.push(raw);
  }
  if (keys.length === 0) throw new UsageError('E_KEY_INVALID', `${what} holds no public key`);
  return keys;
}

export function loadPublicKeys(path: string): Buffer[] {
  return parsePublicKeys(readKeyFile(path, 'public key file'), `public key file '${path}'`);
}

/** The signature entries of detached metadata (commitmeta or summary.sig bytes). */
export function signatureEntries(metadata: ReadonlyMap<string, MetadataValue>): Buffer[] {
  const value = metadata.get(SIGNATURES_KEY);
  if (value === undefined) return [];
  if (value.type !== 'bytes-list') return [];
  return value.value.filter((entry) => entry.length === ENTRY_BYTES);
}

function withSignature(
  metadata: ReadonlyMap<string, MetadataValue>,
  key: SigningKey,
  message: Buffer,
): Map<string, MetadataValue> {
  const entries = signatureEntries(metadata).filter((e) => !e.subarray(0, 32).equals(key.publicKey));
  entries.push(Buffer.concat([key.publicKey, crypto().sign(null, message, key.privateKey)]));
  const out = new Map(metadata);
  out.set(SIGNATURES_KEY, { type: 'bytes-list', value: entries });
  return out;
}

export interface SignatureCheck {
  readonly keyId: string;
  /** True when the signature verifies and its key is one of the trusted keys. */
  readonly valid: boolean;
  readonly trusted: boolean;
}

function checkEntries(entries: readonly Buffer[], message: Buffer, trusted: readonly Buffer[]): SignatureCheck[] {
  return entries.map((entry) => {
    const pub = entry.subarray(0, 32);
    const isTrusted = trusted.some((k) => k.equals(pub));
    let valid = false;
    try {
      valid = crypto().verify(null, message, publicKeyObject(pub), entry.subarray(32));
    } catch {
      valid = false;
    }
    return { keyId: keyId(pub), valid, trusted: isTrusted };
  });
}

const commitMessage = (checksum: Checksum): Buffer => Buffer.concat([COMMIT_DOMAIN, checksumToBytes(checksum)]);
const summaryMessage = (summary: Buffer): Buffer =>
  Buffer.concat([SUMMARY_DOMAIN, checksumToBytes(hashBytes(summary))]);

/** Adds (or replaces) `key`'s signature of a commit in its detached metadata. */
export function signCommitMeta(
  metadata: ReadonlyMap<string, MetadataValue>,
  checksum: Checksum,
  key: SigningKey,
): Map<string, MetadataValue> {
  return withSignature(metadata, key, commitMessage(checksum));
}

export function checkCommitSignatures(
  metadata: ReadonlyMap<string, MetadataValue>,
  checksum: Checksum,
  trusted: readonly Buffer[],
): SignatureCheck[] {
  return checkEntries(signatureEntries(metadata), commitMessage(checksum), trusted);
}

/** summary.sig: encoded detached metadata holding signatures of the summary's bytes. */
export function signSummary(summary: Buffer, key: SigningKey, previousSig?: Buffer): Buffer {
  const metadata = previousSig ? decodeCommitMeta(previousSig, 'summary.sig') : new Map<string, MetadataValue>();
  // withSignature drops only this key's previous entry: `summary --sign A --sign B` keeps both.
  return encodeCommitMeta(withSignature(metadata, key, summaryMessage(summary)));
}

export function checkSummarySignatures(summary: Buffer, sig: Buffer, trusted: readonly Buffer[]): SignatureCheck[] {
  return checkEntries(signatureEntries(decodeCommitMeta(sig, 'summary.sig')), summaryMessage(summary), trusted);
}

/** Throws unless a trusted key signed: names the keys that did sign (and whether they verified). */
export function requireTrustedSignature(
  checks: readonly SignatureCheck[],
  what: string,
  code: 'E_SIGNATURE_MISSING' | 'E_SIGNATURE_INVALID' = 'E_SIGNATURE_INVALID',
): string {
  const good = checks.find((c) => c.valid && c.trusted);
  if (good) return good.keyId;
  if (checks.length === 0)
    throw new ArborError('E_SIGNATURE_MISSING', `${what} is not signed`, {
      hint: 'sign it with `arbor sign`, or add the remote with --no-sign-verify',
    });
  const listed = checks.map((c) => `${c.keyId} (${!c.valid ? 'does not verify' : 'unknown key'})`).join(', ');
  throw new ArborError(code, `${what} has no valid signature by a trusted key: ${listed}`, {
    hint: "check the remote's public key (`arbor remote show`)",
  });
}
