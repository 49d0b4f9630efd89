// Hands hardlink operations of a checkout to worker threads in batches; failures come back to the
// caller, which decides (copy instead on EXDEV, report a missing object on ENOENT, ...).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { LinkFailure } from './link-worker.js';
import { compiledWorker } from './worker-url.js';
import { present } from '../common/errors.js';
import { afterWorkerOnline } from '../common/v8-heap.js';

const WORKER_URL = compiledWorker('link-worker.js', 'ARBOR_LINK_WORKERS');
const BATCH = 256;
/** Batches in flight per worker before `backlogged`; a worker gets more once it is down to half. */
const QUEUED_PER_WORKER = 8;

/** Undefined when the compiled worker is absent (tests running sources) or ARBOR_LINK_WORKERS=0. */
export function createLinkPool(): LinkPool | undefined {
  if (!WORKER_URL) return undefined;
  return new LinkPool(WORKER_URL, Math.max(1, Math.min(availableParallelism(), 4)));
}

export type FailedLink = LinkFailure;

export class LinkPool {
  readonly #workers: Worker[] = [];
  readonly #online: Promise<void>[] = [];
  readonly #failures: FailedLink[] = [];
  /** Object and target paths, alternating (see link-worker.ts). */
  #batch: string[] = [];
  #next = 0;
  #outstanding = 0;
  #error: Error | undefined;
  #drained: (() => void) | undefined;
  #lessBusy: (() => void) | undefined;

  constructor(url: URL, count: number) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(url, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 } });
      this.#online.push(
        new Promise<void>((resolve) => {
          worker.once('online', () => resolve(afterWorkerOnline()));
          worker.once('error', () => resolve()); // drain reports it
        }),
      );
      // The failures name their paths: the main thread keeps nothing of a batch once it is sent.
      worker.on('message', (failures: LinkFailure[]) => {
        this.#failures.push(...failures);
        if (--this.#outstanding === 0) this.#drained?.();
        if (this.#outstanding <= this.#limit / 2) this.#lessBusy?.();
      });
      worker.on('error', (error) => {
        this.#error ??= error;
        this.#drained?.();
        this.#lessBusy?.();
      });
      this.#workers.push(worker);
    }
  }

  /** Resolves once every worker runs or failed to start (drain reports that). */
  async ready(): Promise<void> {
    await Promise.all(this.#online);
  }

  get #limit(): number {
    return QUEUED_PER_WORKER * this.#workers.length;
  }

  /** True when the workers are so far behind that the caller should wait (lessBusy) before queuing more. */
  get backlogged(): boolean {
    return this.#outstanding >= this.#limit && !this.#error;
  }

  /** Resolves once the workers have caught up to half the backlog (at once when they are not behind). */
  async lessBusy(): Promise<void> {
    if (this.backlogged) await new Promise<void>((resolve) => (this.#lessBusy = resolve));
    this.#lessBusy = undefined;
  }

  /** Queues link(object, target); the target's directory must already exist. */
  link(object: string, target: string): void {
    this.#batch.push(object, target);
    if (this.#batch.length >= 2 * BATCH) this.flush();
  }

  flush(): void {
    if (this.#batch.length === 0) return;
    const id = this.#next++;
    this.#outstanding++;
    // Round robin: batches are equal in cost (one syscall each), so no load balancing is needed.
    present(this.#workers[id % this.#workers.length], 'a link worker').postMessage(this.#batch);
    this.#batch = [];
  }

  /** Waits for every queued link and returns those that failed. */
  async drain(): Promise<FailedLink[]> {
    this.flush();
    if (this.#outstanding > 0 && !this.#error) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#drained = undefined;
    if (this.#error) throw this.#error;
    return this.#failures.splice(0);
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
