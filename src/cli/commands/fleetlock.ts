// `arbor fleetlock serve|status|release`: the FleetLock reboot-coordination server (the protocol Zincati
// speaks) with its semaphores in etcd, and the admin's view of them: holders, stuck slots, forced release.
import { Command, Option } from 'clipanion';
import { ArborError, UsageError } from '../../common/errors.js';
import {
  FleetLockError,
  GROUP_NAME,
  type Holder,
  SemaphoreStore,
  parseFailureBudget,
  startFleetLockServer,
  unlock,
} from '../../fleet/index.js';
import { Repo, loadSigningKey } from '../../repo/index.js';
import { positiveDuration } from '../../common/duration.js';
import { ArborCommand } from '../repo-command.js';

abstract class FleetLockCommand extends ArborCommand {
  etcd = Option.String('--etcd', 'http://127.0.0.1:2379', {
    description: 'Client URLs of the etcd members, comma-separated (default http://127.0.0.1:2379)',
  });
  prefix = Option.String('--prefix', '/arbor/fleetlock', { description: 'etcd key prefix (default /arbor/fleetlock)' });
  etcdTimeout = Option.String('--etcd-timeout', '5s', { description: 'Deadline of each etcd call (default 5s)' });
  stuckAfter = Option.String('--stuck-after', '1h', {
    description: 'A slot held longer than this is reported as stuck (default 1h)',
  });

  protected openStore(): Promise<SemaphoreStore> {
    const endpoints = this.etcd.split(',').filter((e) => e !== '');
    for (const e of endpoints)
      if (!/^https?:\/\/[^/\s]+\/?$/.test(e))
        throw new UsageError('E_USAGE', `--etcd: expected client URLs like http://127.0.0.1:2379, got '${e}'`);
    return SemaphoreStore.open({
      endpoints,
      prefix: this.prefix.replace(/\/+$/, ''),
      timeoutMs: positiveDuration('--etcd-timeout', this.etcdTimeout) * 1000,
    });
  }

  /** Runs `work` with a store, turning the store's protocol errors into Arbor's. */
  protected async withStore<T>(work: (store: SemaphoreStore) => Promise<T>): Promise<T> {
    const store = await this.openStore();
    try {
      return await work(store);
    } catch (error) {
      if (error instanceof FleetLockError) throw new ArborError('E_FLEETLOCK_STORE', error.value);
      throw error;
    } finally {
      store.close();
    }
  }
}

export class FleetLockServeCommand extends FleetLockCommand {
  static override paths = [['fleetlock', 'serve']];
  static override usage = Command.Usage({
    description: 'Serve the FleetLock protocol (POST /v1/pre-reboot, /v1/steady-state) from semaphores in etcd',
    details: `
      Hosts (Arbor's update agent, or Zincati) ask for a reboot slot before rebooting into an update and
      give it back once the new deployment is healthy. Each group has a number of slots (--group NAME=SLOTS,
      default: default=1); a group not configured is refused. Slots live in etcd and change only through
      compare-and-swap transactions, so any number of servers can share one cluster and be restarted at
      any time. One JSON line is logged to stdout per request. Runs until SIGINT or SIGTERM.
    `,
    examples: [
      [
        'Two groups',
        '$0 fleetlock serve --listen 0.0.0.0:3333 --etcd http://10.0.0.5:2379 --group workers=3 --group db=1',
      ],
    ],
  });
  listen = Option.String('--listen', '127.0.0.1:3333', { description: 'Address and port (default 127.0.0.1:3333)' });
  group = Option.Array('--group', { description: 'NAME=SLOTS, repeatable (default: default=1)' });
  releases = Option.String('--releases', {
    description: 'Take trial reports (POST /v1/report) and pause releases of this repository over budget',
  });
  sign = Option.Array('--sign', [], { description: 'With --releases: key that signs the summary it republishes' });
  expires = Option.String('--expires', { description: 'With --releases: expiry of the summaries it publishes' });
  failureBudget = Option.Array('--failure-budget', {
    description: 'With --releases: N failed trials or P% of reporting hosts pause a release (default 2)',
  });

  protected async run(): Promise<number> {
    const groups = new Map<string, number>();
    for (const spec of this.group ?? ['default=1']) {
      const [, name, slots] = /^([^=]+)=(\d{1,6})$/.exec(spec) ?? [];
      if (name === undefined || !GROUP_NAME.test(name) || Number(slots) < 1)
        throw new UsageError(
          'E_USAGE',
          `--group: expected NAME=SLOTS (NAME of [a-zA-Z0-9.-], SLOTS ≥ 1), got '${spec}'`,
        );
      groups.set(name, Number(slots));
    }
    const [, listenHost, listenPort] = /^(.*):(\d{1,5})$/.exec(this.listen) ?? [];
    if (listenHost === undefined) throw new UsageError('E_USAGE', `--listen: expected HOST:PORT, got '${this.listen}'`);
    if (this.releases !== undefined && this.sign.length === 0)
      throw new UsageError('E_USAGE', '--releases needs --sign: a paused release must be published signed');
    if (this.releases === undefined && (this.sign.length > 0 || this.failureBudget !== undefined))
      throw new UsageError('E_USAGE', '--sign and --failure-budget need --releases');
    const budget = parseFailureBudget(this.failureBudget ?? ['2']);
    const keys = this.sign.map((f) => loadSigningKey(f));
    const expires = this.expires === undefined ? {} : { expiresInSeconds: positiveDuration('--expires', this.expires) };
    if (this.releases !== undefined) Repo.open(this.releases).close(); // a wrong path fails now, not at the first report
    const store = await this.openStore();
    const stuckAfterSeconds = positiveDuration('--stuck-after', this.stuckAfter);
    const log = (event: Record<string, unknown>): void =>
      this.print(JSON.stringify({ time: new Date().toISOString(), ...event }));
    let started: Awaited<ReturnType<typeof startFleetLockServer>>;
    try {
      started = await startFleetLockServer({
        host: listenHost.replace(/^\[(.*)\]$/, '$1'),
        port: Number(listenPort),
        groups,
        store,
        stuckAfterSeconds,
        log,
        ...(this.releases !== undefined
          ? { reports: { store, repoPath: this.releases, keys, ...expires, budget, log } }
          : {}),
      });
    } catch (error) {
      store.close();
      throw new ArborError('E_FLEETLOCK_LISTEN', `cannot listen on ${this.listen}: ${(error as Error).message}`);
    }
    const { address } = started;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.print(JSON.stringify({ listening: `http://${host}:${address.port}`, groups: Object.fromEntries(groups) }));
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        started.server.close(() => resolve());
        started.server.closeAllConnections();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    store.close();
    return 0;
  }
}

interface GroupStatus {
  readonly group: string;
  readonly slots: number;
  readonly holders: readonly (Holder & { readonly heldSeconds: number; readonly stuck: boolean })[];
}

export class FleetLockStatusCommand extends FleetLockCommand {
  static override paths = [['fleetlock', 'status']];
  static override usage = Command.Usage({
    description: 'List each FleetLock group: its slots, who holds them and since when, and stuck slots',
    details: 'Read from etcd directly, not from a server. Exit 0 even when slots are stuck: read `stuck` in --json.',
  });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    const stuckAfter = positiveDuration('--stuck-after', this.stuckAfter);
    const now = Date.now() / 1000;
    const groups: GroupStatus[] = await this.withStore(async (store) => {
      const out: GroupStatus[] = [];
      for (const group of await store.groups()) {
        const { semaphore } = await store.read(group, 0);
        out.push({
          group,
          slots: semaphore.slots,
          holders: semaphore.holders.map((h) => {
            const heldSeconds = Math.max(0, Math.round(now - h.since));
            return { ...h, heldSeconds, stuck: heldSeconds > stuckAfter };
          }),
        });
      }
      return out;
    });
    if (this.json) {
      this.printJson({ stuckAfterSeconds: stuckAfter, groups });
      return 0;
    }
    if (groups.length === 0) this.print('no group has taken a slot yet');
    for (const g of groups) {
      this.print(`${g.group}: ${g.holders.length} of ${g.slots} slots held`);
      for (const h of g.holders)
        this.print(
          `  ${h.id}  since ${new Date(h.since * 1000).toISOString()} (${h.heldSeconds} s)${h.stuck ? '  STUCK: release with `arbor fleetlock release`' : ''}`,
        );
    }
    return 0;
  }
}

export class FleetLockReleaseCommand extends FleetLockCommand {
  static override paths = [['fleetlock', 'release']];
  static override usage = Command.Usage({
    description: "Release a host's reboot slot by force (a host that died between pre-reboot and steady-state)",
    examples: [['Free a stuck slot', '$0 fleetlock release --group workers node-17']],
  });
  group = Option.String('--group', 'default', { description: 'The group (default: default)' });
  id = Option.String({ name: 'ID' });

  protected async run(): Promise<number> {
    if (!GROUP_NAME.test(this.group)) throw new UsageError('E_USAGE', `--group: '${this.group}' is not a group name`);
    const released = await this.withStore((store) =>
      store.update(this.group, 0, (sem) => {
        const r = unlock(sem, this.id);
        return { next: r.next, result: r.released };
      }),
    );
    if (!released)
      throw new ArborError('E_FLEETLOCK_NOT_HELD', `'${this.id}' holds no slot in group '${this.group}'`, {
        hint: 'see `arbor fleetlock status`',
      });
    this.print(`released the slot of '${this.id}' in group '${this.group}'`);
    return 0;
  }
}
