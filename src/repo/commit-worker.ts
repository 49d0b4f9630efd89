// Worker thread of a commit: hashes regular files and stages the new ones, in parallel with the
// main thread's directory walk. Messages: CommitJob batches in, CommitJobResult batches out.
import { closeSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { errnoCode } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import type { CommitJob, CommitJobResult, WorkerSetup } from './commit-pool.js';
import { decodeFileHeader } from './objects/index.js';
import { native } from '../common/native.js';
import { type StagingContext, hashFile, openFileForHashing, writeStagedFile } from './object-writer.js';

const setup = workerData as WorkerSetup;
const ctx: StagingContext = { mode: setup.mode, staging: setup.staging, isRoot: setup.isRoot };
const ext = setup.mode === 'archive' ? 'filez' : 'file';

function inRepo(checksum: Checksum): boolean {
  return lstatSync(join(setup.repoPath, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${ext}`), { throwIfNoEntry: false }) !== undefined;
}

function run(job: CommitJob, fd: number | Error): CommitJobResult {
  try {
    if (fd instanceof Error) throw fd;
    const headerBytes = Buffer.from(job.header.buffer, job.header.byteOffset, job.header.byteLength);
    const header = decodeFileHeader(headerBytes);
    const { checksum, content } = hashFile(job.path, headerBytes, header.size, fd);
    if (inRepo(checksum)) return { checksum, written: false };
    try {
      const devino = writeStagedFile(ctx, join(setup.staging, `${checksum}.file`), checksum, header, headerBytes, content ? { buffer: content } : { path: job.path });
      return { checksum, written: true, ...(devino && { devino }) };
    } catch (error) {
      // Another worker is staging the same content: it will be published like ours would.
      if (errnoCode(error) === 'EEXIST') return { checksum, written: false, duplicate: true };
      throw error;
    }
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown; hint?: unknown; name?: unknown };
    return { error: { name: String(e.name ?? 'Error'), code: typeof e.code === 'string' ? e.code : undefined, message: String(e.message ?? error), hint: typeof e.hint === 'string' ? e.hint : undefined } };
  }
}

parentPort?.on('message', (batch: { id: number; jobs: CommitJob[] }) => {
  // Open the whole batch and ask for readahead of every file first: the device then works on many
  // files at once while we hash them one by one (a cold-cache commit is bound by read latency).
  const fds = batch.jobs.map((job): number | Error => {
    try {
      const fd = openFileForHashing(job.path);
      native.willneed(fd);
      return fd;
    } catch (error) {
      return error as Error;
    }
  });
  const results = batch.jobs.map((job, i) => {
    const fd = fds[i] as number | Error;
    try {
      return run(job, fd);
    } finally {
      if (typeof fd === 'number') closeSync(fd);
    }
  });
  parentPort?.postMessage({ id: batch.id, results });
});
