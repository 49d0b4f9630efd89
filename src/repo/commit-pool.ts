// A small pool of worker threads that hash and stage regular files while the main thread walks
// directories. On 2 cores with a cold page cache, overlapping reads is what makes commits fast.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ErrorReport } from '../common/error-transfer.js';
import type { Checksum } from '../common/hash.js';
import type { RepoMode } from './config.js';
import type { DevinoRow } from './index-db.js';
import { compiledWorker } from './worker-url.js';
import { present } from '../common/errors.js';
import { afterWorkerOnline } from '../common/v8-heap.js';

export interface WorkerSetup {
  readonly repoPath: string;
  readonly mode: RepoMode;
  readonly staging: string;
  /** Owner override of `commit --owner-uid/--owner-gid`. */
  readonly owner: { readonly uid?: number; readonly gid?: number } | undefined;
}

/**
 * One regular file to hash and maybe stage. The worker lstats it itself (so cold-cache metadata
 * reads overlap too). With `devinoDev`, a hardlink on that device is first looked up in the devino
 * cache (by the worker, on its own connection), and not read when it is an object.
 */
export interface CommitJob {
  readonly path: string;
  readonly devinoDev?: number;
}

export type CommitJobResult =
  | {
      readonly checksum: Checksum;
      readonly size: number;
      readonly written: boolean;
      readonly duplicate?: boolean;
      readonly devino?: DevinoRow;
      /** Found through the devino cache, not read. */
      readonly devinoHit?: boolean;
    }
  | { readonly error: ErrorReport };

const BATCH_FILES = 64;
/**
 * Batches sent to a worker before it answers: enough work (≈ 0.1 s on small files) to carry it
 * through the main thread's longer steps (a checkpoint's renames, a collection, a cold directory)
 * instead of idling until the main thread comes back to hand out more.
 */
const IN_FLIGHT_PER_WORKER = 16;

/** The compiled worker; tests that run TypeScript sources directly fall back to the main thread. */
const WORKER_URL = compiledWorker('commit-worker.js', 'ARBOR_COMMIT_WORKERS');

export function workersAvailable(): boolean {
  return WORKER_URL !== undefined;
}

interface Pending {
  readonly jobs: CommitJob[];
  /** The caller's token for each job, handed back with its result. */
  readonly tokens: number[];
}

export class CommitPool {
  readonly #workers: { worker: Worker; inFlight: number }[] = [];
  readonly #queue: Pending[] = [];
  readonly #waiting = new Map<number, Pending>();
  #current: Pending = { jobs: [], tokens: [] };
  #nextId = 0;
  #outstanding = 0;
  #failure: Error | undefined;
  #drained: (() => void) | undefined;
  #settled: { count: number; resolve: () => void } | undefined;

  // One handler and integer tokens rather than a closure per file: 60k closures showed in peak RSS.
  readonly #onResult: (token: number, result: CommitJobResult) => void;

  constructor(
    setup: WorkerSetup,
    onResult: (token: number, result: CommitJobResult) => void,
    count = defaultWorkerCount(),
  ) {
    this.#onResult = onResult;
    for (let i = 0; i < count; i++) {
      // Workers allocate little JS; a small young generation keeps each one's RSS low.
      const worker = new Worker(WORKER_URL as URL, {
        workerData: setup,
        resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 },
      });
      const slot = { worker, inFlight: 0 };
      // Its isolate's start let the young generation grow again (v8-heap.ts): undo that.
      worker.once('online', afterWorkerOnline);
      worker.on('message', (msg: { id: number; results: CommitJobResult[] }) => {
        slot.inFlight--;
        const { tokens } = present(this.#waiting.get(msg.id), `commit batch ${msg.id}`);
        this.#waiting.delete(msg.id);
        msg.results.forEach((r, index) => this.#onResult(present(tokens[index], `the token of job ${index}`), r));
        this.#outstanding -= msg.results.length;
        // A worker is free: what the walk has queued since goes out now, a partial batch too.
        this.flush();
        this.#dispatch();
        if (this.#outstanding === 0) this.#drained?.();
        if (this.#settled && this.#outstanding <= this.#settled.count) this.#settled.resolve();
      });
      worker.on('error', (error) => {
        this.#failure ??= error;
        this.#drained?.();
        this.#settled?.resolve();
      });
      this.#workers.push(slot);
    }
  }

  /** Queues one file; `onResult(token, …)` runs once a worker has hashed (and maybe staged) it. */
  add(job: CommitJob, token: number): void {
    this.#current.jobs.push(job);
    this.#current.tokens.push(token);
    this.#outstanding++;
    if (this.#current.jobs.length >= BATCH_FILES) this.flush();
  }

  /** Sends the partial batch (call now and then so workers never starve while the walk goes on). */
  flush(): void {
    if (this.#current.jobs.length === 0) return;
    this.#queue.push(this.#current);
    this.#current = { jobs: [], tokens: [] };
    this.#dispatch();
  }

  /** Hands queued batches out, each to the worker with the fewest in flight (none gets all the queue). */
  #dispatch(): void {
    for (;;) {
      let slot = this.#workers[0];
      for (const other of this.#workers) if (slot === undefined || other.inFlight < slot.inFlight) slot = other;
      if (slot === undefined || slot.inFlight >= IN_FLIGHT_PER_WORKER) return;
      const pending = this.#queue.shift();
      if (pending === undefined) return;
      const id = this.#nextId++;
      this.#waiting.set(id, pending);
      slot.inFlight++;
      slot.worker.postMessage({ id, jobs: pending.jobs });
    }
  }

  /** Files queued or being hashed, whose results have not come back yet. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Resolves once at most `count` files are outstanding (or a worker failed). */
  async settleTo(count: number): Promise<void> {
    this.flush();
    while (this.#outstanding > count && !this.#failure)
      await new Promise<void>((resolve) => (this.#settled = { count, resolve }));
    this.#settled = undefined;
  }

  /** Resolves when every queued file has a result. */
  async drain(): Promise<void> {
    this.flush();
    if (this.#outstanding > 0 && !this.#failure) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#drained = undefined;
    if (this.#failure) throw this.#failure;
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }
}

/** One worker per core (at least 2, to overlap reads even on one core); ARBOR_COMMIT_WORKERS overrides. */
function defaultWorkerCount(): number {
  const configured = Number(process.env.ARBOR_COMMIT_WORKERS);
  if (Number.isInteger(configured) && configured > 0) return configured;
  return Math.max(2, Math.min(availableParallelism(), 8));
}
