// OpenPGP keyrings and detached v4 signatures, through openpgpjs (docs/dependencies.md): what RPM
// package signatures and repomd.xml.asc are checked with. No cryptography is written here; this
// file decides which key a signature names and turns the library's answers into verdicts.
import { readFile } from 'node:fs/promises';
import type { PublicKey, SignaturePacket } from 'openpgp';
import { ArborError, UsageError, errnoCode, ioError } from '../common/errors.js';

type OpenPgp = typeof import('openpgp');
let library: Promise<OpenPgp> | undefined;
/** openpgpjs costs 150–400 ms to load: only commands that check signatures pay for it. */
async function openpgp(): Promise<OpenPgp> {
  library ??= import('openpgp');
  return library;
}

/** What a signature can be found to be. */
type SignatureVerdict = 'ok' | 'nokey' | 'bad' | 'unsupported';

/** What a signature packet says about itself (nothing here is trusted before the verdict is ok). */
interface SignatureInfo {
  readonly version: number;
  /** rpm's names: `RSA/SHA256`, `EdDSA/SHA512`, `DSA/SHA1`, `ECDSA/SHA256`. */
  readonly algorithm: string;
  /** The issuer key ID: 16 lowercase hex digits. */
  readonly keyId: string;
  /** The issuer fingerprint subpacket, when the signer wrote one (gpg ≥ 2.2 does). */
  readonly fingerprint: string | undefined;
  /** Signature creation time, ISO 8601. */
  readonly created: string | undefined;
}

/** One signature checked: its verdict, why when not ok, and what the packet said. */
export interface SignatureCheck {
  readonly verdict: SignatureVerdict;
  readonly reason: string | undefined;
  readonly info: SignatureInfo | undefined;
}

/** Public keys to verify with: primary keys and their subkeys, by key ID. */
export class OpenPgpKeyring {
  readonly #keyIds: ReadonlySet<string>;
  constructor(readonly keys: readonly PublicKey[]) {
    this.#keyIds = new Set(keys.flatMap((key) => key.getKeyIDs().map((id) => id.toHex())));
  }
  /** Whether a primary key or subkey has this 16-hex-digit key ID. */
  hasKeyId(keyId: string): boolean {
    return this.#keyIds.has(keyId);
  }
  /** The key IDs of every primary key and subkey, sorted. */
  get keyIds(): string[] {
    return [...this.#keyIds].sort();
  }
}

const ARMORED_KEY = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;

/**
 * Parses the public keys in one key file: armored blocks (a file may hold several, one after
 * another, as RPM-GPG-KEY files do) or binary transferable keys. Secret keys count by their
 * public part. `source` names the file in errors.
 */
export async function parseKeyring(bytes: Buffer, source: string): Promise<PublicKey[]> {
  const pgp = await openpgp();
  const invalid = (problem: string, cause?: unknown): UsageError =>
    new UsageError('E_OPENPGP_KEY_INVALID', `key file '${source}' ${problem}`, {
      hint: 'export the key with `gpg --export --armor KEYID`',
      cause,
    });
  const text = bytes.toString('latin1');
  try {
    let keys: PublicKey[];
    if (text.includes('-----BEGIN PGP')) {
      const blocks = text.match(ARMORED_KEY) ?? [];
      if (blocks.length === 0) throw invalid('has no armored PGP key block');
      keys = [];
      // openpgpjs reads only the first armored block of a string; each block is read on its own.
      for (const block of blocks) keys.push(...(await pgp.readKeys({ armoredKeys: block })));
    } else {
      keys = await pgp.readKeys({ binaryKeys: new Uint8Array(bytes) });
    }
    if (keys.length === 0) throw invalid('holds no OpenPGP key');
    return keys.map((key) => key.toPublic());
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw invalid(`is not an OpenPGP key: ${(error as Error).message}`, error);
  }
}

/** Reads key files (armored or binary) into one keyring; a missing or keyless file is E_OPENPGP_KEY_INVALID. */
export async function readKeyring(paths: readonly string[]): Promise<OpenPgpKeyring> {
  const keys: PublicKey[] = [];
  for (const path of paths) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT')
        throw new UsageError('E_OPENPGP_KEY_INVALID', `key file '${path}' does not exist`);
      throw ioError('read', path, error);
    }
    keys.push(...(await parseKeyring(bytes, path)));
  }
  return new OpenPgpKeyring(keys);
}

/** An empty keyring: every signature's verdict is then `nokey`, as `rpm -K` says with no keys imported. */
export function emptyKeyring(): OpenPgpKeyring {
  return new OpenPgpKeyring([]);
}

const RPM_PUBKEY_NAMES: Readonly<Record<string, string>> = {
  rsaEncryptSign: 'RSA',
  rsaSign: 'RSA',
  dsa: 'DSA',
  ecdsa: 'ECDSA',
  eddsaLegacy: 'EdDSA',
  ed25519: 'EdDSA',
  ed448: 'EdDSA',
};

function describePacket(pgp: OpenPgp, packet: SignaturePacket): SignatureInfo {
  const keyName =
    packet.publicKeyAlgorithm === null ? 'unknown' : pgp.enums.read(pgp.enums.publicKey, packet.publicKeyAlgorithm);
  const hashName = packet.hashAlgorithm === null ? 'unknown' : pgp.enums.read(pgp.enums.hash, packet.hashAlgorithm);
  return {
    version: packet.version,
    algorithm: `${RPM_PUBKEY_NAMES[keyName] ?? keyName}/${hashName.toUpperCase()}`,
    keyId: packet.issuerKeyID.toHex(),
    fingerprint: packet.issuerFingerprint ? Buffer.from(packet.issuerFingerprint).toString('hex') : undefined,
    created: packet.created?.toISOString(),
  };
}

/**
 * Checks one detached signature (a binary OpenPGP signature packet, or an armored one) over the
 * bytes `data()` gives, with the keyring. `data` is called only when a key is there to check with,
 * so a large input is not read for a `nokey` verdict. The input must be exactly one signature
 * packet. Times are not checked (`date: null`), as rpm does not: a host whose clock is wrong still
 * verifies, and an expired key still verifies what it signed; a revoked key does not.
 */
export async function verifyDetachedSignature(
  signatureBytes: Uint8Array | string,
  data: () => Uint8Array | ReadableStream<Uint8Array>,
  keyring: OpenPgpKeyring,
): Promise<SignatureCheck> {
  const pgp = await openpgp();
  const config = { ignoreUnsupportedPackets: false, ignoreMalformedPackets: false };
  let signature: Awaited<ReturnType<OpenPgp['readSignature']>>;
  try {
    signature =
      typeof signatureBytes === 'string'
        ? await pgp.readSignature({ armoredSignature: signatureBytes, config })
        : await pgp.readSignature({ binarySignature: signatureBytes, config });
  } catch (error) {
    const message = (error as Error).message;
    // v3 signature packets (old signers: gpg 1.x with --force-v3-sigs) are valid OpenPGP that openpgpjs does not read.
    if ((error as Error).name === 'UnsupportedError')
      return { verdict: 'unsupported', reason: `unsupported signature packet: ${message}`, info: undefined };
    return { verdict: 'bad', reason: `not an OpenPGP signature: ${message}`, info: undefined };
  }
  const packets = signature.packets;
  const packet = packets[0];
  if (packets.length !== 1 || packet === undefined)
    return { verdict: 'bad', reason: `holds ${packets.length} packets, not one signature`, info: undefined };
  const info = describePacket(pgp, packet);
  if (packet.version !== 4)
    return { verdict: 'unsupported', reason: `version ${packet.version} signatures are not checked`, info };
  if (!keyring.hasKeyId(info.keyId))
    return { verdict: 'nokey', reason: `key ID ${info.keyId} is not among the keys`, info };
  // The library's policy (no MD5 or SHA-1 over data, no DSA or ElGamal keys, RSA ≥ 2048 bits) is
  // kept: such a signature is reported as what it is rather than as a forgery.
  if (packet.hashAlgorithm !== null && pgp.config.rejectMessageHashAlgorithms.has(packet.hashAlgorithm))
    return { verdict: 'unsupported', reason: `${info.algorithm} signatures are refused as weak`, info };
  if (packet.publicKeyAlgorithm !== null && pgp.config.rejectPublicKeyAlgorithms.has(packet.publicKeyAlgorithm))
    return { verdict: 'unsupported', reason: `${info.algorithm} keys are refused as weak`, info };
  let result: Awaited<ReturnType<typeof pgp.verify>>;
  try {
    const message = await pgp.createMessage({ binary: data() });
    result = await pgp.verify({
      message,
      signature,
      verificationKeys: [...keyring.keys],
      format: 'binary',
      date: null,
    });
    // A streamed input is hashed as it is read: read it to the end before asking for the verdict.
    const output = result.data as Uint8Array | ReadableStream<Uint8Array>;
    if (!(output instanceof Uint8Array)) {
      const reader = output.getReader();
      while (!(await reader.read()).done);
    }
  } catch (error) {
    // The input's own errors (a read failing) pass; anything else is the library refusing the signature.
    if (error instanceof ArborError) throw error;
    return { verdict: 'bad', reason: (error as Error).message, info };
  }
  const [outcome] = result.signatures;
  if (outcome === undefined) return { verdict: 'bad', reason: 'the library found no signature to check', info };
  try {
    await outcome.verified;
    return { verdict: 'ok', reason: undefined, info };
  } catch (error) {
    return { verdict: 'bad', reason: (error as Error).message, info };
  }
}
