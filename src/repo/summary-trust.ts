// What a client may believe of a verified summary beyond its signature (TUF's rollback, freeze and
// key-rotation rules): whether it is newer than the last one accepted from the remote, whether it
// has expired, and which keys it tells the client to trust next. Pure: the clock is passed in.
import { ArborError, CorruptionError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import type { Summary } from './objects/index.js';
import { type SignatureCheck, keyId } from './sign.js';

/** Summary metadata (int): Unix seconds after which clients refuse the summary. */
export const EXPIRES_KEY = 'arbor.expires';
/** Summary metadata (bytes-list of raw 32-byte ed25519 public keys): keys clients add to the remote's trusted keys. */
export const NEXT_KEYS_KEY = 'arbor.next-keys';
/** Summary metadata (bytes-list, as above): keys clients stop trusting. */
export const RETIRED_KEYS_KEY = 'arbor.retired-keys';
/** A summary is still accepted this long after its expiry: the client's clock may be a little ahead. */
export const EXPIRY_SKEW_SECONDS = 300;

/** The newest summary a client accepted from one remote (kept in repo.db). */
export interface SummaryRecord {
  /** The summary's own timestamp (Unix seconds, as the server wrote it). */
  readonly timestamp: number;
  /** BLAKE3 of the summary's bytes. */
  readonly checksum: Checksum;
}

/** What a summary says about its freshness and the remote's keys. Strict: a wrongly typed value is a malformed summary. */
export interface SummaryTrust {
  readonly expires: number | null;
  readonly nextKeys: Buffer[];
  readonly retiredKeys: Buffer[];
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

function keyList(summary: Summary, key: string, what: string): Buffer[] {
  const value = summary.metadata.get(key);
  if (value === undefined) return [];
  if (value.type !== 'bytes-list' || value.value.some((k) => k.length !== 32)) {
    throw new CorruptionError(
      'E_OBJECT_MALFORMED',
      `${what}: metadata '${key}' is not a list of 32-byte ed25519 public keys`,
    );
  }
  return value.value.map((k) => Buffer.from(k));
}

/** Reads `arbor.expires`, `arbor.next-keys` and `arbor.retired-keys` of a summary. */
export function readSummaryTrust(summary: Summary, what: string): SummaryTrust {
  const expires = summary.metadata.get(EXPIRES_KEY);
  if (expires !== undefined && (expires.type !== 'int' || expires.value < 0))
    throw new CorruptionError('E_OBJECT_MALFORMED', `${what}: metadata '${EXPIRES_KEY}' is not a non-negative int`);
  return {
    expires: expires?.type === 'int' ? expires.value : null,
    nextKeys: keyList(summary, NEXT_KEYS_KEY, what),
    retiredKeys: keyList(summary, RETIRED_KEYS_KEY, what),
  };
}

/**
 * Refuses a summary of remote `remote` that has expired (E_SUMMARY_EXPIRED) or is older than
 * the one recorded (E_SUMMARY_REPLAYED; a different summary with the same timestamp counts as
 * older: servers write strictly increasing timestamps). Returns true when `candidate` is newer
 * than the record, which must then advance.
 */
export function checkFreshness(
  remote: string,
  recorded: SummaryRecord | undefined,
  candidate: SummaryRecord & { readonly expires: number | null },
  nowSeconds: number,
): boolean {
  const what = `the summary of remote '${remote}'`;
  if (candidate.expires !== null && nowSeconds > candidate.expires + EXPIRY_SKEW_SECONDS) {
    throw new ArborError(
      'E_SUMMARY_EXPIRED',
      `${what} expired at ${iso(candidate.expires)} (written at ${iso(candidate.timestamp)}; this machine's clock says ${iso(nowSeconds)})`,
      {
        hint: "the server must rewrite its summary before it expires (`arbor summary --update --expires`); until it does, someone may be replaying an old one. Check this machine's clock too",
      },
    );
  }
  if (recorded === undefined || candidate.timestamp > recorded.timestamp) return true;
  if (candidate.timestamp === recorded.timestamp && candidate.checksum === recorded.checksum) return false;
  const older =
    candidate.timestamp < recorded.timestamp
      ? `was written at ${iso(candidate.timestamp)}, before`
      : `differs from, but has the timestamp of,`;
  throw new ArborError(
    'E_SUMMARY_REPLAYED',
    `${what} ${older} the summary this repository accepted earlier (written at ${iso(recorded.timestamp)}): refusing a replayed or rolled-back summary`,
    {
      hint: `a mirror may be stale, or someone is replaying an old summary: try again later or another mirror. If the server's repository was rebuilt on purpose, run \`arbor remote reset-freshness ${remote}\``,
    },
  );
}

/**
 * The remote's trusted keys after accepting a summary: next keys are added; retired keys are
 * dropped only when a valid signature by a trusted key that is not being retired vouches for it
 * (a key cannot retire itself, so the remote never ends up with no key). Returns null when
 * nothing changes.
 */
export function planTrustedKeys(
  trusted: readonly Buffer[],
  checks: readonly SignatureCheck[],
  change: Pick<SummaryTrust, 'nextKeys' | 'retiredKeys'>,
): Buffer[] | null {
  const out = [...trusted];
  for (const key of change.nextKeys) if (!out.some((k) => k.equals(key))) out.push(key);
  const retiring = new Set(change.retiredKeys.map((k) => keyId(k)));
  const vouched = checks.some((c) => c.valid && c.trusted && !retiring.has(c.keyId));
  const kept = vouched ? out.filter((k) => !retiring.has(keyId(k))) : out;
  const same = kept.length === trusted.length && kept.every((k, i) => trusted[i]?.equals(k) === true);
  return same ? null : kept;
}
