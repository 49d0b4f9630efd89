// Worker thread of a pull: inflates (in bounded steps), verifies and stages fetched archive
// objects, or checks and stages those the fetch helper inflated, so that the main thread only
// talks HTTP or reads the helper's stream. Messages: StoreJob in, StoreResult out.
import { parentPort, workerData } from 'node:worker_threads';
import { reportError } from '../common/error-transfer.js';
import { ArborError, errnoCode, ioError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { type StagingContext, stageArchiveObject, stageReceivedObject } from './object-writer.js';
import type { StoreJob, StoreResult } from './store-pool.js';

const ctx = workerData as StagingContext;

function handle(job: StoreJob): StoreResult {
  if (job.received !== undefined) {
    const received = {
      headerBytes: Buffer.from(job.received.header),
      hashed: job.received.hashed as Checksum,
      content: job.compressed !== undefined ? { buffer: Buffer.from(job.compressed) } : { path: job.path as string },
    };
    const staged = stageReceivedObject(ctx, job.checksum as Checksum, received, job.contentSize);
    return 'problem' in staged ? { id: job.id, problem: staged.problem } : { id: job.id, devino: staged.devino };
  }
  const input = job.compressed !== undefined ? { buffer: Buffer.from(job.compressed) } : { path: job.path as string };
  const staged = stageArchiveObject(ctx, input, job.checksum as Checksum, job.contentSize);
  if ('problem' in staged) return { id: job.id, problem: staged.problem };
  return { id: job.id, devino: staged.devino };
}

parentPort?.on('message', (job: StoreJob) => {
  let result: StoreResult;
  try {
    result = handle(job);
  } catch (caught) {
    // Errno failures (ENOSPC, EACCES, …) become the same ArborErrors the main thread would raise.
    const error =
      errnoCode(caught) !== undefined && !(caught instanceof ArborError)
        ? ioError('write object into', ctx.staging, caught)
        : caught;
    result = { id: job.id, error: reportError(error) };
  }
  parentPort?.postMessage(result);
});
