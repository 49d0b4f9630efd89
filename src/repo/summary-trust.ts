// What a client may believe of a verified summary beyond its signature (TUF's rollback and freeze
// rules): whether it is newer than the last one accepted from the remote, and whether it has
// expired. Pure: the clock is passed in.
import { ArborError, CorruptionError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import type { Summary } from './objects/index.js';

/** Summary metadata (int): Unix seconds after which clients refuse the summary. */
export const EXPIRES_KEY = 'arbor.expires';
/** A summary is still accepted this long after its expiry: the client's clock may be a little ahead. */
export const EXPIRY_SKEW_SECONDS = 300;

/** The newest summary a client accepted from one remote (kept in repo.db). */
export interface SummaryRecord {
  /** The summary's own timestamp (Unix seconds, as the server wrote it). */
  readonly timestamp: number;
  /** BLAKE3 of the summary's bytes. */
  readonly checksum: Checksum;
}

/** What a summary says about its freshness. Strict: a wrongly typed value is a malformed summary. */
export interface SummaryTrust {
  readonly expires: number | null;
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

/** Reads `arbor.expires` of a summary. */
export function readSummaryTrust(summary: Summary, what: string): SummaryTrust {
  const expires = summary.metadata.get(EXPIRES_KEY);
  if (expires !== undefined && (expires.type !== 'int' || expires.value < 0)) throw new CorruptionError('E_OBJECT_MALFORMED', `${what}: metadata '${EXPIRES_KEY}' is not a non-negative int`);
  return { expires: expires?.type === 'int' ? expires.value : null };
}

/**
 * Refuses a summary of remote `remote` that has expired (E_SUMMARY_EXPIRED) or is older than
 * the one recorded (E_SUMMARY_REPLAYED; a different summary with the same timestamp counts as
 * older: servers write strictly increasing timestamps). Returns true when `candidate` is newer
 * than the record, which must then advance.
 */
export function checkFreshness(remote: string, recorded: SummaryRecord | undefined, candidate: SummaryRecord & { readonly expires: number | null }, nowSeconds: number): boolean {
  const what = `the summary of remote '${remote}'`;
  if (candidate.expires !== null && nowSeconds > candidate.expires + EXPIRY_SKEW_SECONDS) {
    throw new ArborError('E_SUMMARY_EXPIRED', `${what} expired at ${iso(candidate.expires)} (written at ${iso(candidate.timestamp)}; this machine's clock says ${iso(nowSeconds)})`, {
      hint: 'the server must rewrite its summary before it expires (`arbor summary --update --expires`); until it does, someone may be replaying an old one. Check this machine\'s clock too',
    });
  }
  if (recorded === undefined || candidate.timestamp > recorded.timestamp) return true;
  if (candidate.timestamp === recorded.timestamp && candidate.checksum === recorded.checksum) return false;
  const older = candidate.timestamp < recorded.timestamp ? `was written at ${iso(candidate.timestamp)}, before` : `differs from, but has the timestamp of,`;
  throw new ArborError('E_SUMMARY_REPLAYED', `${what} ${older} the summary this repository accepted earlier (written at ${iso(recorded.timestamp)}): refusing a replayed or rolled-back summary`, {
    hint: `a mirror may be stale, or someone is replaying an old summary: try again later or another mirror. If the server's repository was rebuilt on purpose, run \`arbor remote reset-freshness ${remote}\``,
  });
}

