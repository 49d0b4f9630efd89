// Worker threads that verify and stage fetched archive objects (decompress, hash, write), or
// objects the fetch helper inflated (check, write, compress again for archive clients), so a
// pull's main thread is free for HTTP or the helper's stream. Falls back to the main thread where workers cannot run.
import { Worker } from 'node:worker_threads';
import { type ErrorReport, reportError, reviveError } from '../common/error-transfer.js';
import type { Checksum } from '../common/hash.js';
import type { HelperObject } from './fetch-privsep.js';
import type { DevinoRow } from './index-db.js';
import type { StagingContext } from './object-writer.js';
import { compiledWorker } from './worker-url.js';
import { afterWorkerOnline } from '../common/v8-heap.js';
import { isContentBuffer, recycleContentBuffer } from './content-buffers.js';
import { present } from '../common/errors.js';

export interface StoreJob {
  readonly id: number;
  readonly checksum: Checksum;
  /** The fetched object in memory (its first `length` bytes when given), or */
  readonly compressed?: ArrayBuffer;
  readonly length?: number;
  /** the file in the staging directory it was spilled to (consumed by the job). */
  readonly path?: string;
  /** An object the fetch helper inflated (the root side hashed it as it arrived): `compressed` and `path` are then its content. */
  readonly received?: { readonly header: ArrayBuffer; readonly hashed: Checksum };
  /** Content bytes its dirtree records: the object may not inflate past them. */
  readonly contentSize: number;
  /** `compressed` is a reusable content buffer (content-buffers.ts): the worker hands it back. */
  readonly recycle?: boolean;
}

/** A worker's answer to a batch: a result per job, and the reusable content buffers it hands back. */
export interface StoreAnswer {
  readonly results: StoreResult[];
  readonly recycled: ArrayBuffer[];
}

export type StoreResult =
  | {
      readonly id: number;
      readonly devino?: DevinoRow | undefined;
      readonly problem?: undefined;
      readonly error?: undefined;
    }
  /** The object failed verification: what is wrong with it. */
  | { readonly id: number; readonly problem: string; readonly error?: undefined }
  | { readonly id: number; readonly error: ErrorReport; readonly problem?: undefined };

const WORKER_URL = compiledWorker('store-worker.js', 'ARBOR_PULL_WORKERS');

export function storeWorkersAvailable(): boolean {
  return WORKER_URL !== undefined;
}

/** Jobs bound for one worker in one message, with the buffers handed over with them. */
interface Batch {
  jobs: StoreJob[];
  transfer: ArrayBuffer[];
}

export class StorePool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, (r: StoreResult) => void>();
  /** Jobs not yet posted, per worker: one message per event-loop turn, not one per object. */
  readonly #batches: Batch[] = [];
  #flushScheduled = false;
  #next = 0;

  constructor(ctx: StagingContext, count: number) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(WORKER_URL as URL, {
        workerData: ctx,
        resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 256 },
      });
      worker.once('online', afterWorkerOnline);
      worker.on('message', ({ results, recycled }: StoreAnswer) => {
        for (const buffer of recycled) recycleContentBuffer(buffer);
        for (const r of results) {
          const resolve = this.#pending.get(r.id);
          this.#pending.delete(r.id);
          resolve?.(r);
        }
      });
      worker.on('error', (error) => {
        for (const resolve of this.#pending.values())
          resolve({
            id: -1,
            error: reportError(new Error(`internal error: pull worker failed: ${error.message}`, { cause: error })),
          });
        this.#pending.clear();
      });
      this.#workers.push(worker);
      this.#batches.push({ jobs: [], transfer: [] });
    }
  }

  /**
   * Verifies and stages one object in a worker, inflating at most what `contentSize` allows; a
   * buffer is handed over (not copied), a spilled file is read in steps and consumed. Jobs made in
   * one event-loop turn travel in one message.
   */
  store(
    checksum: Checksum,
    input: { compressed: Buffer } | { compressedPath: string } | HelperObject,
    contentSize: number,
  ): Promise<StoreResult> {
    const id = this.#next++;
    const batch = present(this.#batches[id % this.#batches.length], "a store worker's batch");
    const { transfer } = batch;
    let job: StoreJob;
    if ('headerBytes' in input) {
      const header = ownBuffer(input.headerBytes, transfer);
      const received = { header, hashed: input.hashed };
      if (!('content' in input)) job = { id, checksum, contentSize, received, path: input.spillPath };
      else if (isContentBuffer(input.content.buffer as ArrayBuffer) && input.content.byteOffset === 0) {
        // A reusable buffer travels whole and comes back with the result.
        const buffer = input.content.buffer as ArrayBuffer;
        transfer.push(buffer);
        job = { id, checksum, contentSize, received, compressed: buffer, length: input.content.length, recycle: true };
      } else job = { id, checksum, contentSize, received, compressed: ownBuffer(input.content, transfer) };
    } else if ('compressedPath' in input) {
      job = { id, checksum, path: input.compressedPath, contentSize };
    } else {
      job = { id, checksum, compressed: ownBuffer(input.compressed, transfer), contentSize };
    }
    batch.jobs.push(job);
    if (!this.#flushScheduled) {
      // Objects that arrive in one read of the network or the helper's pipe (dozens of small
      // ones) reach the workers together: a message costs far more than the bytes it hands over.
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
    return new Promise((resolve) => this.#pending.set(id, resolve));
  }

  #flush(): void {
    this.#flushScheduled = false;
    this.#batches.forEach((batch, i) => {
      if (batch.jobs.length === 0) return;
      present(this.#workers[i], 'a store worker').postMessage(batch.jobs, batch.transfer);
      this.#batches[i] = { jobs: [], transfer: [] };
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

/**
 * The bytes of `buffer` as an ArrayBuffer to hand to a worker (added to `transfer`): its own when
 * it owns all of it, else a copy (a view of Node's shared pool must never be detached).
 */
function ownBuffer(buffer: Buffer, transfer: ArrayBuffer[]): ArrayBuffer {
  const whole = buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength;
  const own = (whole ? buffer.buffer : Uint8Array.prototype.slice.call(buffer).buffer) as ArrayBuffer;
  if (!transfer.includes(own)) transfer.push(own);
  return own;
}

/** Turns a worker's error report back into an error of the same kind. */
export function storeError(result: { error: ErrorReport }): Error {
  return reviveError(result.error);
}
