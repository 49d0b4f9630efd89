// FleetLock semaphores in etcd (the v3 API through the etcd3 client): one key per group under a prefix,
// changed only by compare-and-swap transactions on the key's mod revision, so two servers (or two requests)
// never both take the last slot. Reads are linearizable. A member down is the client's to route around.
import type { Etcd3 } from 'etcd3';
import { FleetLockError } from './protocol.js';
import { type Semaphore, decodeSemaphore, emptySemaphore, encodeSemaphore } from './semaphore.js';

/** How often a transaction that lost a race is retried before the request fails (503: retry later). */
const MAX_ATTEMPTS = 20;

export interface StoreOptions {
  /** Client URLs of the cluster's members, e.g. `http://127.0.0.1:2379`. */
  readonly endpoints: readonly string[];
  /** Key prefix; each group's semaphore is `PREFIX/groups/GROUP`. */
  readonly prefix: string;
  /** Deadline of each etcd call, in milliseconds. */
  readonly timeoutMs: number;
}

/** A group's semaphore as stored, with the revision it was read at (0: no key yet). */
export interface StoredSemaphore {
  readonly group: string;
  readonly semaphore: Semaphore;
  readonly modRevision: string;
}

export class SemaphoreStore {
  readonly #client: Etcd3;

  private constructor(
    readonly options: StoreOptions,
    client: Etcd3,
  ) {
    this.#client = client;
  }

  /** A store on the cluster; the etcd client (gRPC) is loaded only here, so other commands start fast. */
  static async open(options: StoreOptions): Promise<SemaphoreStore> {
    const { Etcd3 } = await import('etcd3');
    const client = new Etcd3({
      hosts: [...options.endpoints],
      dialTimeout: options.timeoutMs,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + options.timeoutMs }),
    });
    return new SemaphoreStore(options, client);
  }

  keyOf(group: string): string {
    return `${this.options.prefix}/groups/${group}`;
  }

  /**
   * Reads the group's semaphore (an empty one of `slots` when there is no key), applies `change`, and
   * writes the result if it differs, only if nobody wrote the key in between; else starts again.
   */
  async update<T>(
    group: string,
    slots: number,
    change: (sem: Semaphore) => { next: Semaphore; result: T },
  ): Promise<T> {
    const key = this.keyOf(group);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const stored = await this.read(group, slots);
      const { next, result } = change(stored.semaphore);
      const text = encodeSemaphore(next);
      if (text === encodeSemaphore(stored.semaphore) && stored.modRevision !== '0') return result;
      if (stored.modRevision === '0' && next.holders.length === 0) return result;
      const guard =
        stored.modRevision === '0'
          ? this.#client.if(key, 'Create', '==', 0)
          : this.#client.if(key, 'Mod', '==', stored.modRevision);
      const outcome = await this.#call(() => guard.then(this.#client.put(key).value(text)).commit());
      if (outcome.succeeded) return result;
      // Lost a race with another writer: back off a little, at random, so contenders spread out.
      await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
    }
    throw new FleetLockError('store_unavailable', `too many concurrent changes to group '${group}'; retry`);
  }

  /** The group's semaphore and its revision. */
  async read(group: string, slots: number): Promise<StoredSemaphore> {
    const key = this.keyOf(group);
    const response = await this.#call(() => this.#client.get(key).exec());
    const kv = response.kvs[0];
    if (kv === undefined) return { group, semaphore: emptySemaphore(slots), modRevision: '0' };
    const semaphore = decodeSemaphore(kv.value.toString('utf8'));
    if (semaphore === null)
      throw new FleetLockError('store_invalid', `etcd key '${key}' does not hold a FleetLock semaphore`);
    return { group, semaphore, modRevision: kv.mod_revision };
  }

  /** Every group with a stored semaphore, by name. */
  async groups(): Promise<string[]> {
    const prefix = `${this.options.prefix}/groups/`;
    const keys = await this.#call(() => this.#client.getAll().prefix(prefix).keys());
    return keys.map((k) => k.slice(prefix.length)).sort();
  }

  /** Records (or replaces) host `id`'s trial report for `commit`. */
  async putReport(commit: string, id: string, report: Record<string, unknown>): Promise<void> {
    const key = `${this.options.prefix}/reports/${commit}/${encodeURIComponent(id)}`;
    await this.#call(() => this.#client.put(key).value(JSON.stringify(report)).exec());
  }

  /** Every host's report for `commit` (values that do not parse are skipped: the count is advisory). */
  async reports(commit: string): Promise<Record<string, unknown>[]> {
    const prefix = `${this.options.prefix}/reports/${commit}/`;
    const values = await this.#call(() => this.#client.getAll().prefix(prefix).strings());
    const out: Record<string, unknown>[] = [];
    for (const text of Object.values(values)) {
      try {
        const v = JSON.parse(text) as unknown;
        if (typeof v === 'object' && v !== null) out.push(v as Record<string, unknown>);
      } catch {
        // not written by this server
      }
    }
    return out;
  }

  close(): void {
    this.#client.close();
  }

  async #call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof FleetLockError) throw error;
      throw new FleetLockError(
        'store_unavailable',
        `etcd (${this.options.endpoints.join(', ')}) did not answer: ${(error as Error).message}`,
      );
    }
  }
}
