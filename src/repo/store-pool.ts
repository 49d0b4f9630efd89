// Worker threads that verify and stage fetched archive objects (decompress, hash, write), so a
// pull's main thread is free for HTTP. Falls back to the main thread where workers cannot run.
import { Worker } from 'node:worker_threads';
import { type ErrorReport, reportError, reviveError } from '../common/error-transfer.js';
import type { Checksum } from '../common/hash.js';
import type { DevinoRow } from './index-db.js';
import type { StagingContext } from './object-writer.js';
import { compiledWorker } from './worker-url.js';

export interface StoreJob {
  readonly id: number;
  readonly checksum: string;
  /** The fetched object in memory, or */
  readonly compressed?: ArrayBuffer;
  /** the file in the staging directory it was spilled to (consumed by the job). */
  readonly path?: string;
  /** Content bytes its dirtree records: the object may not inflate past them. */
  readonly contentSize: number;
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

export class StorePool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, (r: StoreResult) => void>();
  #next = 0;

  constructor(ctx: StagingContext, count: number) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(WORKER_URL as URL, {
        workerData: ctx,
        resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 256 },
      });
      worker.on('message', (r: StoreResult) => {
        const resolve = this.#pending.get(r.id);
        this.#pending.delete(r.id);
        resolve?.(r);
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
    }
  }

  /**
   * Verifies and stages one object in a worker, inflating at most what `contentSize` allows; a
   * buffer is handed over (not copied), a spilled file is read in steps and consumed.
   */
  store(
    checksum: Checksum,
    input: { compressed: Buffer } | { compressedPath: string },
    contentSize: number,
  ): Promise<StoreResult> {
    const id = this.#next++;
    const worker = this.#workers[id % this.#workers.length] as Worker;
    if ('compressedPath' in input) {
      return new Promise((resolve) => {
        this.#pending.set(id, resolve);
        worker.postMessage({ id, checksum, path: input.compressedPath, contentSize } satisfies StoreJob);
      });
    }
    const { compressed } = input;
    // Hand over the bytes without a copy when the buffer owns its whole ArrayBuffer.
    const whole = compressed.byteOffset === 0 && compressed.byteLength === compressed.buffer.byteLength;
    const payload = (whole ? compressed.buffer : Uint8Array.prototype.slice.call(compressed).buffer) as ArrayBuffer;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      worker.postMessage({ id, checksum, compressed: payload, contentSize } satisfies StoreJob, [payload]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

/** Turns a worker's error report back into an error of the same kind. */
export function storeError(result: { error: ErrorReport }): Error {
  return reviveError(result.error);
}
