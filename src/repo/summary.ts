// Writing a repository's `summary` (refs with their commits, and the static deltas on disk) and
// its signature file, and listing/reading/deleting the deltas themselves.
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, CorruptionError, UsageError, errnoCode, ioError, present } from '../common/errors.js';
import { readdirOrEmpty } from '../common/readdir-or-empty.js';
import { type Checksum, hashBytes, isChecksum } from '../common/hash.js';
import { writeFileAtomic } from '../common/fs-atomic.js';
import {
  type MetadataValue,
  type Summary,
  type SummaryDelta,
  type Superblock,
  commitVersion,
  decodeSummary,
  decodeSuperblock,
  encodeSummary,
} from './objects/index.js';
import { type SigningKey, signSummary } from './sign.js';
import type { Repo } from './store.js';
import { EXPIRES_KEY, NEXT_KEYS_KEY, RETIRED_KEYS_KEY } from './summary-trust.js';

/** Summary metadata holding the release graph, copied from REPO/releases.json (docs/fleet.md). */
export const RELEASES_KEY = 'arbor.releases';
/** The file `arbor release` edits and `summary --update` publishes. */
export const RELEASES_FILE = 'releases.json';
const MAX_RELEASES_BYTES = 1024 * 1024;

/** What `summary --update` may add besides refs and deltas (docs/format.md §6.2). */
export interface SummaryOptions {
  /** Clients refuse the summary this many seconds after it is written. */
  readonly expiresInSeconds?: number;
  /** Keys clients of a signed remote add to the keys they trust (key rotation). */
  readonly nextKeys?: readonly Buffer[];
  /** Keys those clients stop trusting. */
  readonly retiredKeys?: readonly Buffer[];
}

/**
 * The timestamp of the summary in `repo`, or 0 when there is none (or it does not decode: it is
 * about to be replaced anyway).
 */
function previousSummaryTimestamp(repo: Repo): number {
  try {
    return decodeSummary(readFileSync(join(repo.path, 'summary')), 'summary').timestamp;
  } catch {
    return 0;
  }
}

export interface DeltaEntry {
  readonly name: string;
  readonly from: Checksum | null;
  readonly to: Checksum;
  readonly dir: string;
}

/** Deltas stored under deltas/: `TO` (from scratch) or `FROM-TO` directories with a superblock. */
export function listDeltas(repo: Repo): DeltaEntry[] {
  const root = join(repo.path, 'deltas');
  const out: DeltaEntry[] = [];
  for (const name of readdirOrEmpty(root).sort()) {
    const parsed = parseDeltaName(name);
    if (parsed && existsSync(join(root, name, 'superblock'))) out.push({ name, ...parsed, dir: join(root, name) });
  }
  return out;
}

function parseDeltaName(name: string): { from: Checksum | null; to: Checksum } | undefined {
  if (isChecksum(name)) return { from: null, to: name };
  const [from, to, ...rest] = name.split('-');
  if (rest.length === 0 && from !== undefined && to !== undefined && isChecksum(from) && isChecksum(to))
    return { from, to };
  return undefined;
}

/** Finds a delta by name, `FROM-TO` prefixes, or the target commit alone when that is unambiguous. */
export function findDelta(repo: Repo, spec: string): DeltaEntry {
  const all = listDeltas(repo);
  const exact = all.find((d) => d.name === spec);
  if (exact) return exact;
  const [a, b] = spec.split('-');
  const matches = all.filter((d) =>
    b === undefined
      ? d.name.startsWith(spec) || d.to.startsWith(spec)
      : (d.from ?? '').startsWith(a ?? '') && d.to.startsWith(b),
  );
  const [only] = matches;
  if (matches.length === 1 && only !== undefined) return only;
  if (matches.length === 0)
    throw new ArborError('E_DELTA_NOT_FOUND', `no static delta matches '${spec}'`, {
      hint: 'list them with `arbor static-delta list`',
    });
  throw new UsageError(
    'E_DELTA_AMBIGUOUS',
    `'${spec}' matches ${matches.length} deltas: ${matches.map((d) => d.name.slice(0, 20)).join(', ')}`,
  );
}

export function readSuperblock(entry: DeltaEntry): { superblock: Superblock; bytes: Buffer; size: number } {
  const path = join(entry.dir, 'superblock');
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw ioError('read delta superblock', path, error);
  }
  let superblock: Superblock;
  try {
    superblock = decodeSuperblock(bytes, path);
  } catch (error) {
    throw new CorruptionError('E_DELTA_CORRUPT', (error as Error).message);
  }
  if (superblock.to !== entry.to || superblock.from !== entry.from)
    throw new CorruptionError(
      'E_DELTA_CORRUPT',
      `${path} describes ${superblock.from ?? 'scratch'}→${superblock.to}, not what its directory name says`,
    );
  const size = bytes.length + superblock.parts.reduce((n, p, i) => n + (p.inline ? 0 : partSize(entry, i)), 0);
  return { superblock, bytes, size };
}

function partSize(entry: DeltaEntry, index: number): number {
  try {
    return statSync(join(entry.dir, String(index))).size;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT')
      throw new CorruptionError('E_DELTA_CORRUPT', `delta ${entry.name} lacks part ${index}`);
    throw error;
  }
}

export function deleteDelta(entry: DeltaEntry): void {
  rmSync(entry.dir, { recursive: true, force: true });
}

/**
 * Writes `summary` from the refs (not remote refs) and the deltas on disk, then `summary.sig`
 * when a key is given (a stale signature is removed: it would not verify).
 */
/** REPO/releases.json as text, or null when the repository publishes no release graph. */
export function readReleasesFile(repo: Repo): string | null {
  const path = join(repo.path, RELEASES_FILE);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw ioError('read', path, error);
  }
  if (bytes.length > MAX_RELEASES_BYTES)
    throw new UsageError('E_RELEASES_INVALID', `'${path}' is larger than ${MAX_RELEASES_BYTES} bytes`);
  return bytes.toString('utf8');
}

export function updateSummary(
  repo: Repo,
  keys: readonly SigningKey[] = [],
  options: SummaryOptions = {},
): { summary: Summary; bytes: Buffer; signed: number } {
  const refs = repo.db
    .listRefs()
    .filter((r) => !r.name.includes(':'))
    .map((r) => {
      const commit = repo.readCommit(r.checksum);
      return { name: r.name, checksum: r.checksum, timestamp: commit.timestamp, version: commitVersion(commit) ?? '' };
    });
  const deltas: SummaryDelta[] = listDeltas(repo).map((entry) => {
    const { bytes, size } = readSuperblock(entry);
    return { from: entry.from, to: entry.to, superblock: hashBytes(bytes), size };
  });
  // Strictly increasing even within one second or after the clock stepped back: clients refuse a
  // summary older than, or as old as but different from, the last one they accepted.
  const timestamp = Math.max(Math.floor(Date.now() / 1000), previousSummaryTimestamp(repo) + 1);
  const metadata = new Map<string, MetadataValue>([['arbor.mode', { type: 'string', value: repo.mode }]]);
  if (options.expiresInSeconds !== undefined)
    metadata.set(EXPIRES_KEY, { type: 'int', value: timestamp + options.expiresInSeconds });
  if (options.nextKeys?.length) metadata.set(NEXT_KEYS_KEY, { type: 'bytes-list', value: [...options.nextKeys] });
  if (options.retiredKeys?.length)
    metadata.set(RETIRED_KEYS_KEY, { type: 'bytes-list', value: [...options.retiredKeys] });
  const releases = readReleasesFile(repo);
  if (releases !== null) metadata.set(RELEASES_KEY, { type: 'string', value: releases });
  const summary: Summary = { timestamp, refs, deltas, metadata };
  const bytes = encodeSummary(summary);
  const sigPath = join(repo.path, 'summary.sig');
  // Each file is replaced atomically, but not the pair: a client reading between the two renames
  // sees a summary and a signature that do not match, fails verification, and can simply retry.
  if (keys.length > 0) {
    const sig = keys.reduce<Buffer | undefined>((previous, key) => signSummary(bytes, key, previous), undefined);
    writeFileAtomic(join(repo.path, 'summary'), bytes);
    writeFileAtomic(sigPath, present(sig, 'the summary signature'));
  } else {
    rmSync(sigPath, { force: true });
    writeFileAtomic(join(repo.path, 'summary'), bytes);
  }
  return { summary, bytes, signed: keys.length };
}
