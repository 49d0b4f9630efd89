// Worker thread of a pull: decompresses, verifies and stages fetched archive objects, so that the
// main thread only talks HTTP. Messages: StoreJob in, StoreResult out.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { ArborError, errnoCode, ioError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { encodeFileHeader } from './objects/index.js';
import { type StagingContext, openArchiveObject, writeStagedFile } from './object-writer.js';
import type { StoreJob, StoreResult } from './store-pool.js';

const ctx = workerData as StagingContext;

function handle(job: StoreJob): StoreResult {
  const compressed = Buffer.from(job.compressed);
  const checksum = job.checksum as Checksum;
  const opened = openArchiveObject(compressed, checksum);
  if ('problem' in opened) return { id: job.id, problem: opened.problem };
  const staged = join(ctx.staging, `${checksum}.file`);
  if (ctx.mode === 'archive') {
    writeFileSync(staged, compressed, { mode: 0o644, flag: 'wx' });
    return { id: job.id };
  }
  return { id: job.id, devino: writeStagedFile(ctx, staged, checksum, opened.header, encodeFileHeader(opened.header), { buffer: opened.content }) };
}

parentPort?.on('message', (job: StoreJob) => {
  let result: StoreResult;
  try {
    result = handle(job);
  } catch (caught) {
    // Errno failures (ENOSPC, EACCES, …) become the same ArborErrors the main thread would raise.
    const error = errnoCode(caught) !== undefined && !(caught instanceof ArborError) ? ioError('write object into', ctx.staging, caught) : caught;
    const e = error as { code?: unknown; message?: unknown; hint?: unknown };
    result = { id: job.id, error: { code: typeof e.code === 'string' ? e.code : undefined, message: String(e.message ?? error), hint: typeof e.hint === 'string' ? e.hint : undefined } };
  }
  parentPort?.postMessage(result);
});
