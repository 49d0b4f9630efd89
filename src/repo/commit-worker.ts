// Worker thread of a commit: lstats, hashes and stages regular files, in parallel with the main
// thread's directory walk. Messages: CommitJob batches in, CommitJobResult batches out.
import { type Stats, closeSync, lstatSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { reportError } from '../common/error-transfer.js';
import { ArborError, errnoCode } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import type { CommitJob, CommitJobResult, WorkerSetup } from './commit-pool.js';
import type { FileHeader } from './objects/index.js';
import { DevinoReader, devinoMatches } from './index-db.js';
import { readdirOrEmpty } from '../common/readdir-or-empty.js';
import { native } from '../common/native.js';
import {
  type SmallFile,
  type StagingContext,
  WHOLE_FILE_LIMIT,
  encodeCommittedHeader,
  hashFile,
  hashSmallFiles,
  headerFromDisk,
  openFileForHashing,
  wantsReadahead,
  writeStagedFile,
} from './object-writer.js';

const setup = workerData as WorkerSetup;
const ctx: StagingContext = { mode: setup.mode, staging: setup.staging };
const ext = setup.mode === 'archive' ? 'filez' : 'file';

/** objects/XX of the repository, as Repo.objectDir gives it (the worker has no Repo). */
const objectDir = (prefix: string): string => join(setup.repoPath, 'objects', prefix);
/** A file object's name in its objects/XX directory. */
const objectName = (checksum: Checksum): string => `${checksum.slice(2)}.${ext}`;

function inRepo(checksum: Checksum): boolean {
  return (
    lstatSync(join(objectDir(checksum.slice(0, 2)), objectName(checksum)), { throwIfNoEntry: false }) !== undefined
  );
}

/** The devino cache, opened on the first hardlink to look up; null when it cannot be read. */
let devinos: DevinoReader | null | undefined;
/** Names in objects/XX, listed once per prefix when a devino row first points there. */
const listed = new Map<string, Set<string>>();

/**
 * The object a hardlink is, by the devino cache: its row must match the inode as it is now (mtime,
 * size, mode, owner), and the object must still be stored (a checkout can outlive a pruned
 * object). Presence is answered from one listing per objects/XX directory, not an lstat per file:
 * on a cold cache each lstat would read another object's inode. An object published after its
 * directory was listed reads as absent, and the file is then read: slower, never wrong.
 */
function devinoChecksum(st: Stats): Checksum | undefined {
  if (devinos === undefined) {
    const path = join(setup.repoPath, 'repo.db');
    try {
      // Lookups by inode land all over the file: have it read ahead whole, in one go, first.
      const fd = openSync(path, 'r');
      native.willneed(fd);
      closeSync(fd);
      devinos = new DevinoReader(path);
    } catch {
      devinos = null; // every file is read instead
    }
  }
  const row = devinos?.get(st.dev, st.ino);
  if (!devinoMatches(row, st)) return undefined;
  const prefix = row.checksum.slice(0, 2);
  let names = listed.get(prefix);
  if (names === undefined) {
    names = new Set(readdirOrEmpty(objectDir(prefix)));
    listed.set(prefix, names);
  }
  return names.has(objectName(row.checksum)) ? row.checksum : undefined;
}

/** A file of the batch opened to be hashed, with its header. */
type Opened = SmallFile & { readonly header: FileHeader };
/** A file of the batch after lstat: what to hash, or an answer already. */
type Prepared = Opened | { result: CommitJobResult };

function failure(error: unknown): CommitJobResult {
  return { error: reportError(error) };
}

function prepare(job: CommitJob): Prepared {
  try {
    const st = lstatSync(job.path);
    if (!st.isFile()) {
      return {
        result: failure(
          new ArborError('E_FILE_CHANGED', `'${job.path}' stopped being a regular file while it was committed`, {
            hint: 'commit a tree that nothing is writing to',
          }),
        ),
      };
    }
    if (job.devinoDev !== undefined && st.dev === job.devinoDev && st.nlink > 1) {
      const checksum = devinoChecksum(st);
      if (checksum !== undefined) return { result: { checksum, size: st.size, written: false, devinoHit: true } };
    }
    const owner = setup.owner ? { uid: setup.owner.uid ?? st.uid, gid: setup.owner.gid ?? st.gid } : undefined;
    const header = headerFromDisk(job.path, st, { owner });
    const headerBytes = encodeCommittedHeader(header, `'${job.path}'`);
    const fd = openFileForHashing(job.path);
    if (wantsReadahead(header.size)) native.willneed(fd);
    return { path: job.path, fd, headerBytes, size: header.size, header };
  } catch (error) {
    return { result: failure(error) };
  }
}

/** A big file: streamed through the hasher, then copied from its path if new. */
function hashAndStage(file: Opened): CommitJobResult {
  try {
    const { checksum, content } = hashFile(file.path, file.headerBytes, file.size, file.fd);
    return stage(file, checksum, content);
  } catch (error) {
    return failure(error);
  }
}

/** Stores a hashed file unless the repository has it: from `content`, or copied from `path`. */
function stage(file: Opened, checksum: Checksum, content: Buffer | undefined): CommitJobResult {
  const { path, header, headerBytes } = file;
  try {
    if (inRepo(checksum)) return { checksum, size: header.size, written: false };
    const devino = writeStagedFile(
      ctx,
      join(setup.staging, `${checksum}.file`),
      checksum,
      header,
      headerBytes,
      content ? { buffer: content } : { path },
    );
    return { checksum, size: header.size, written: true, ...(devino && { devino }) };
  } catch (error) {
    // Another worker is staging the same content: it will be published like ours would.
    if (errnoCode(error) === 'EEXIST') return { checksum, size: header.size, written: false, duplicate: true };
    return failure(error);
  }
}

function handle(jobs: readonly CommitJob[]): CommitJobResult[] {
  // lstat and open the whole batch first: small files are then read in one submission, big ones
  // were asked for readahead, and the device works on many files at once either way.
  const prepared = jobs.map(prepare);
  devinos?.release();
  const results: CommitJobResult[] = [];
  const small: { index: number; file: Opened }[] = [];
  try {
    prepared.forEach((p, index) => {
      if ('result' in p) results[index] = p.result;
      else if (p.size > WHOLE_FILE_LIMIT) results[index] = hashAndStage(p);
      else small.push({ index, file: p });
    });
    hashSmallFiles(
      small.map((s) => s.file),
      (k, hashed) => {
        const { index, file } = small[k] as (typeof small)[number];
        results[index] = 'error' in hashed ? failure(hashed.error) : stage(file, hashed.checksum, hashed.content);
      },
    );
  } catch (error) {
    // Not a file's own failure (those are results): every file still unanswered gets it.
    for (let i = 0; i < jobs.length; i++) results[i] ??= failure(error);
  } finally {
    for (const p of prepared) if ('fd' in p) closeSync(p.fd);
  }
  return results;
}

parentPort?.on('message', (batch: { id: number; jobs: CommitJob[] }) => {
  parentPort?.postMessage({ id: batch.id, results: handle(batch.jobs) });
});
