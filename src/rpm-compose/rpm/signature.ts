// OpenPGP signatures of a package (docs/rpm.md, "Signatures"): which signature-header tags hold
// them, which bytes each covers, and the package's verdict from checking every one with a keyring.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { ArborError, ioError } from '../../common/errors.js';
import { type OpenPgpKeyring, type SignatureCheck, verifyDetachedSignature } from '../openpgp.js';
import type { RpmHeader } from './header.js';
import type { RpmSignedParts } from './read.js';
import { SigTag } from './tags.js';

/** What a signature tag's packet was computed over. */
type SignedBytes = 'header' | 'header+payload';

/**
 * The signature tags, header-only first (rpm ≥ 4.14 writes these; 4.18's `rpmsign --addsign`
 * writes only them, `--rpmv3` adds the legacy pair). RSA keys use RSAHEADER/PGP; DSA and EdDSA
 * keys DSAHEADER/GPG.
 */
const SIGNATURE_TAGS: readonly { readonly tag: number; readonly name: string; readonly covers: SignedBytes }[] = [
  { tag: SigTag.Rsa, name: 'RSAHEADER', covers: 'header' },
  { tag: SigTag.Dsa, name: 'DSAHEADER', covers: 'header' },
  { tag: SigTag.Pgp, name: 'PGP', covers: 'header+payload' },
  { tag: SigTag.Gpg, name: 'GPG', covers: 'header+payload' },
];

/** One signature found in a signature header: its tag and the raw OpenPGP packet. */
export interface SignatureTag {
  readonly tag: number;
  readonly name: string;
  readonly covers: SignedBytes;
  readonly packet: Buffer;
}

/** The signatures a signature header holds, in SIGNATURE_TAGS order; each must be BIN (else E_RPM_MALFORMED). */
export function listSignatureTags(signature: RpmHeader): SignatureTag[] {
  const found: SignatureTag[] = [];
  for (const { tag, name, covers } of SIGNATURE_TAGS) {
    const packet = signature.bin(tag);
    if (packet !== undefined) found.push({ tag, name, covers, packet });
  }
  return found;
}

/** The verdict on a package: every signature ok, or the worst one's verdict, or unsigned. */
export type RpmSignatureVerdict = 'ok' | 'nokey' | 'bad' | 'unsupported' | 'unsigned';

/** One signature tag checked. */
export interface RpmSignatureResult {
  readonly tag: number;
  readonly name: string;
  readonly covers: SignedBytes;
  readonly verdict: SignatureCheck['verdict'];
  readonly reason: string | undefined;
  readonly algorithm: string | undefined;
  readonly keyId: string | undefined;
  readonly fingerprint: string | undefined;
  readonly created: string | undefined;
}

/** Every signature of one package, checked. */
export interface RpmSignatureReport {
  readonly path: string;
  readonly verdict: RpmSignatureVerdict;
  readonly signatures: readonly RpmSignatureResult[];
}

/** The file from `start` to its end, in chunks; a read error is an ArborError naming the file. */
async function* readFrom(path: string, start: number): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of createReadStream(path, { start })) yield chunk as Buffer;
  } catch (error) {
    throw ioError('read', path, error);
  }
}

// rpm fails a package on any signature that is not OK; the report names the worst.
const SEVERITY: Record<SignatureCheck['verdict'], number> = { ok: 0, nokey: 1, unsupported: 2, bad: 3 };

/** The package verdict from its signatures' verdicts (pure). */
export function packageVerdict(results: readonly Pick<RpmSignatureResult, 'verdict'>[]): RpmSignatureVerdict {
  if (results.length === 0) return 'unsigned';
  return results.reduce(
    (worst, r) => (SEVERITY[r.verdict] > SEVERITY[worst] ? r.verdict : worst),
    'ok' as SignatureCheck['verdict'],
  );
}

/**
 * Checks every OpenPGP signature of a package with the keyring. Header-only signatures cover the
 * main header's bytes (magic to end of store, as in the file); legacy ones those bytes and the
 * compressed payload to the end of the file, which is then streamed, never held whole.
 */
export async function verifyRpmSignature(pkg: RpmSignedParts, keyring: OpenPgpKeyring): Promise<RpmSignatureReport> {
  const signatures: RpmSignatureResult[] = [];
  for (const { tag, name, covers, packet } of listSignatureTags(pkg.signature)) {
    const data =
      covers === 'header'
        ? (): Uint8Array => pkg.headerBytes
        : (): ReadableStream<Uint8Array> =>
            Readable.toWeb(Readable.from(readFrom(pkg.path, pkg.headerOffset))) as ReadableStream<Uint8Array>;
    const check = await verifyDetachedSignature(packet, data, keyring);
    signatures.push({
      tag,
      name,
      covers,
      verdict: check.verdict,
      reason: check.reason,
      algorithm: check.info?.algorithm,
      keyId: check.info?.keyId,
      fingerprint: check.info?.fingerprint,
      created: check.info?.created,
    });
  }
  return { path: pkg.path, verdict: packageVerdict(signatures), signatures };
}

const PROBLEM: Record<Exclude<SignatureCheck['verdict'], 'ok'>, string> = {
  nokey: 'key ID not among the keys',
  bad: 'BAD signature',
  unsupported: 'signature not supported',
};

const HINT: Record<Exclude<SignatureCheck['verdict'], 'ok'>, string> = {
  nokey: 'pass the public key that signed it (`gpg --export --armor KEYID`), if you trust it',
  bad: 'the package was changed after it was signed, or signed wrongly: fetch it again',
  unsupported: 'ask for the package signed with a v4 signature, SHA-256 or better, and an RSA or EdDSA key',
};

/**
 * Throws E_RPM_SIGNATURE unless every signature of the package verified: what `gpgcheck=1` and
 * `rpm check --keys` require. The message names the package, the tag and the key ID.
 */
export function assertRpmSignatureOk(report: RpmSignatureReport): void {
  if (report.verdict === 'ok') return;
  if (report.verdict === 'unsigned') {
    throw new ArborError('E_RPM_SIGNATURE', `package '${report.path}' is not signed`, {
      hint: 'sign it with `rpmsign --addsign`, or take it from a repository that signs its packages',
    });
  }
  const failed = report.signatures.find((s) => s.verdict === report.verdict)!;
  const by = failed.keyId === undefined ? '' : ` by key ID ${failed.keyId}`;
  const verdict = failed.verdict as Exclude<SignatureCheck['verdict'], 'ok'>;
  throw new ArborError(
    'E_RPM_SIGNATURE',
    `package '${report.path}': ${failed.name} signature${by}: ${PROBLEM[verdict]}${failed.reason && verdict !== 'nokey' ? ` (${failed.reason})` : ''}`,
    {
      hint: HINT[verdict],
    },
  );
}
