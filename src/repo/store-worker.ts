// Worker thread of a pull: inflates (in bounded steps), verifies and stages fetched archive
// objects, or checks and stages those the fetch helper inflated, so that the main thread only
// talks HTTP or reads the helper's stream. Messages: a batch of StoreJobs in, their StoreResults out.
import { parentPort, workerData } from 'node:worker_threads';
import { reportError } from '../common/error-transfer.js';
import { ArborError, errnoCode, ioError, present } from '../common/errors.js';
import { type StagingContext, stageArchiveObject, stageReceivedObject } from './object-writer.js';
import type { StoreAnswer, StoreJob, StoreResult } from './store-pool.js';

const ctx = workerData as StagingContext;

/** The job's object: in memory, or in the file it was spilled to. */
const inputOf = (job: StoreJob): { buffer: Buffer } | { path: string } =>
  job.compressed !== undefined
    ? { buffer: Buffer.from(job.compressed, 0, job.length ?? job.compressed.byteLength) }
    : { path: present(job.path, `the spilled file of object ${job.checksum}`) };

function handle(job: StoreJob): StoreResult {
  if (job.received !== undefined) {
    const received = {
      headerBytes: Buffer.from(job.received.header),
      hashed: job.received.hashed,
      // A spilled file is the job's to consume: moved into place rather than copied.
      content: { ...inputOf(job), owned: true },
    };
    const staged = stageReceivedObject(ctx, job.checksum, received, job.contentSize);
    return 'problem' in staged ? { id: job.id, problem: staged.problem } : { id: job.id, devino: staged.devino };
  }
  const staged = stageArchiveObject(ctx, inputOf(job), job.checksum, job.contentSize);
  if ('problem' in staged) return { id: job.id, problem: staged.problem };
  return { id: job.id, devino: staged.devino };
}

function settle(job: StoreJob): StoreResult {
  try {
    return handle(job);
  } catch (caught) {
    // Errno failures (ENOSPC, EACCES, …) become the same ArborErrors the main thread would raise.
    const error =
      errnoCode(caught) !== undefined && !(caught instanceof ArborError)
        ? ioError('write object into', ctx.staging, caught)
        : caught;
    return { id: job.id, error: reportError(error) };
  }
}

// A batch of jobs in; their results out in one message, with the reusable buffers handed back.
parentPort?.on('message', (jobs: StoreJob[]) => {
  const recycled = jobs.flatMap((job) => (job.recycle === true && job.compressed ? [job.compressed] : []));
  const answer: StoreAnswer = { results: jobs.map(settle), recycled };
  parentPort?.postMessage(answer, recycled);
});
