// `arbor fleetlock serve` against a real 3-member etcd cluster: the FleetLock protocol as its
// specification states it (endpoints, the header, the body, JSON errors), and the semaphore under many
// concurrent clients, two servers, a server killed and an etcd member killed mid-run, checked by an
// observer that watches etcd itself rather than trusting the server.
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { HAVE_ETCD, type EtcdCluster, startEtcdCluster } from '../support/etcd.js';
import { type Served, serveFleetLock, stopFleetLock } from '../support/fleetlock.js';
import { Random, seedFromEnv } from '../support/random.js';
import { useTempDir } from '../support/temp.js';

const SEED = seedFromEnv();

interface Reply {
  status: number;
  body: string;
  contentType: string | null;
}

async function post(
  url: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = { 'fleet-lock-protocol': 'true' },
): Promise<Reply> {
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, body: await r.text(), contentType: r.headers.get('content-type') };
}

const params = (id: string, group = 'default') => ({ client_params: { id, group } });

describe.skipIf(!HAVE_ETCD)('arbor fleetlock', () => {
  const tmp = useTempDir('arbor-fleetlock-');
  let etcd: EtcdCluster;
  let server: Served;

  beforeAll(async () => {
    etcd = await startEtcdCluster(tmp.path, 3);
    server = await serveFleetLock(etcd.endpoints, '/conformance', '--group', 'default=1', '--group', 'workers=2');
  }, 60_000);
  afterAll(async () => {
    if (server) await stopFleetLock(server);
    if (etcd) await etcd.close();
  });

  describe('the protocol', () => {
    it('locks recursively, refuses a second holder with a JSON error, and unlocks if held', async () => {
      expect(await post(server.url, '/v1/pre-reboot', params('a'))).toEqual({
        status: 200,
        body: '',
        contentType: null,
      });
      expect((await post(server.url, '/v1/pre-reboot', params('a'))).status).toBe(200);
      const full = await post(server.url, '/v1/pre-reboot', params('b'));
      expect(full.status).toBe(409);
      expect(full.contentType).toBe('application/json');
      expect(JSON.parse(full.body)).toEqual({
        kind: 'failed_lock_semaphore_full',
        value: "semaphore currently full: 1 of 1 slots of group 'default' are held",
      });
      expect((await post(server.url, '/v1/steady-state', params('b'))).status).toBe(200);
      expect((await post(server.url, '/v1/steady-state', params('a'))).status).toBe(200);
      expect((await post(server.url, '/v1/steady-state', params('a'))).status).toBe(200);
      expect((await post(server.url, '/v1/pre-reboot', params('b'))).status).toBe(200);
      expect((await post(server.url, '/v1/steady-state', params('b'))).status).toBe(200);
    });

    it('keeps groups apart, each with its own slots', async () => {
      for (const id of ['w1', 'w2'])
        expect((await post(server.url, '/v1/pre-reboot', params(id, 'workers'))).status).toBe(200);
      expect((await post(server.url, '/v1/pre-reboot', params('w3', 'workers'))).status).toBe(409);
      expect((await post(server.url, '/v1/pre-reboot', params('d1'))).status).toBe(200);
      for (const [id, g] of [
        ['w1', 'workers'],
        ['w2', 'workers'],
        ['d1', 'default'],
      ] as const)
        expect((await post(server.url, '/v1/steady-state', params(id, g))).status).toBe(200);
    });

    it.each([
      ['no fleet-lock-protocol header', '/v1/pre-reboot', params('a'), {}, 400, 'bad_header'],
      ['the header not "true"', '/v1/pre-reboot', params('a'), { 'fleet-lock-protocol': 'yes' }, 400, 'bad_header'],
      ['a body that is not JSON', '/v1/steady-state', '{"client_params":', undefined, 400, 'bad_body'],
      ['no client_params', '/v1/pre-reboot', { id: 'a', group: 'default' }, undefined, 400, 'bad_body'],
      ['an empty id', '/v1/pre-reboot', params(''), undefined, 400, 'bad_body'],
      ['a group outside [a-zA-Z0-9.-]', '/v1/pre-reboot', params('a', 'a b'), undefined, 400, 'bad_body'],
      ['a group the server does not have', '/v1/pre-reboot', params('a', 'db'), undefined, 400, 'unknown_group'],
      ['an unknown endpoint', '/v1/reboot', params('a'), undefined, 404, 'not_found'],
      [
        'a body over 16 KiB',
        '/v1/pre-reboot',
        { client_params: { id: 'a', group: 'default', pad: 'x'.repeat(17_000) } },
        undefined,
        413,
        'body_too_large',
      ],
    ])('refuses %s', async (_what, path, body, headers, status, kind) => {
      const r = await post(server.url, path, body, headers);
      expect(r.status).toBe(status);
      expect(r.contentType).toBe('application/json');
      const error = JSON.parse(r.body) as { kind: string; value: string };
      expect(error.kind).toBe(kind);
      expect(error.value).not.toBe('');
    });

    it('refuses other methods', async () => {
      const r = await fetch(`${server.url}/v1/pre-reboot`, { headers: { 'fleet-lock-protocol': 'true' } });
      expect(r.status).toBe(405);
      expect(((await r.json()) as { kind: string }).kind).toBe('method_not_allowed');
    });

    it('logs one JSON line per request', () => {
      expect(server.log.some((e) => e.op === 'pre-reboot' && e.id === 'a' && e.outcome === 'acquired')).toBe(true);
      expect(server.log.some((e) => e.status === 409 && e.kind === 'failed_lock_semaphore_full')).toBe(true);
    });
  });

  describe('status and forced release', () => {
    it('reports a slot held too long as stuck, and an admin frees it', async () => {
      const s = await serveFleetLock(etcd.endpoints, '/stuck', '--group', 'default=1', '--stuck-after', '1s');
      try {
        expect((await post(s.url, '/v1/pre-reboot', params('dead-host'))).status).toBe(200);
        await new Promise((r) => setTimeout(r, 2100));
        const cli = (...args: string[]) =>
          runCli(['fleetlock', ...args, '--etcd', etcd.endpoints.join(','), '--prefix', '/stuck']);
        const status = JSON.parse(cli('status', '--json', '--stuck-after', '1s').stdout) as {
          groups: { group: string; slots: number; holders: { id: string; stuck: boolean; heldSeconds: number }[] }[];
        };
        expect(status.groups).toEqual([
          { group: 'default', slots: 1, holders: [expect.objectContaining({ id: 'dead-host', stuck: true })] },
        ]);
        expect(cli('status', '--stuck-after', '1s').stdout).toMatch(
          /^default: 1 of 1 slots held\n {2}dead-host {2}since .* STUCK/,
        );
        const full = await post(s.url, '/v1/pre-reboot', params('next'));
        expect(JSON.parse(full.body).value).toContain('1 for longer than');
        expect(cli('release', '--group', 'default', 'dead-host')).toMatchObject({ exitCode: 0 });
        const again = cli('release', '--group', 'default', 'dead-host');
        expect(again.exitCode).toBe(1);
        expect(again.stderr).toContain('E_FLEETLOCK_NOT_HELD');
        expect((await post(s.url, '/v1/pre-reboot', params('next'))).status).toBe(200);
      } finally {
        await stopFleetLock(s);
      }
    });

    it('says which step failed when etcd cannot be reached', () => {
      const r = runCli(['fleetlock', 'status', '--etcd', 'http://127.0.0.1:9', '--etcd-timeout', '1s']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('E_FLEETLOCK_STORE');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  });

  describe(`under load (SEED=${SEED})`, () => {
    /**
     * `clients` hosts each take and give back a slot `rounds` times through the servers (trying the next
     * on a refused connection, retrying on 409 and 503), while `during` breaks something. Returns the most
     * slots held at once as seen by the clients and by an observer watching the etcd key.
     */
    async function run(
      prefix: string,
      slots: number,
      clients: number,
      rounds: number,
      servers: Served[],
      during: () => Promise<void>,
    ) {
      const rng = new Random(SEED).derive(prefix);
      const watcher = new Etcd3({ hosts: [...etcd.endpoints] });
      let observedMax = 0;
      let observedViolation = '';
      const watch = await watcher.watch().key(`${prefix}/groups/g`).create();
      watch.on('put', (kv) => {
        const sem = JSON.parse(kv.value.toString()) as { holders: { id: string }[] };
        observedMax = Math.max(observedMax, sem.holders.length);
        if (sem.holders.length > slots) observedViolation = kv.value.toString();
      });
      let holding = 0;
      let clientMax = 0;
      const call = async (path: string, id: string): Promise<void> => {
        for (let attempt = 0; ; attempt++) {
          if (attempt > 2000) throw new Error(`${id}: ${path} never succeeded`);
          const s = servers[(attempt + Number(id.slice(1))) % servers.length] as Served;
          let status = 0;
          try {
            status = (await post(s.url, path, params(id, 'g'))).status;
          } catch {
            status = 0; // that server is gone: try the next
          }
          if (status === 200) return;
          if (status !== 0 && status !== 409 && status !== 503) throw new Error(`${id}: ${path} answered ${status}`);
          await new Promise((r) => setTimeout(r, 5 + rng.int(0, 20)));
        }
      };
      const host = async (n: number): Promise<void> => {
        const id = `h${n}`;
        for (let round = 0; round < rounds; round++) {
          await call('/v1/pre-reboot', id);
          holding++;
          clientMax = Math.max(clientMax, holding);
          await new Promise((r) => setTimeout(r, rng.int(0, 15)));
          holding--;
          await call('/v1/steady-state', id);
        }
      };
      await Promise.all([...Array.from({ length: clients }, (_, n) => host(n)), during()]);
      await watch.cancel();
      watcher.close();
      return { clientMax, observedMax, observedViolation };
    }

    it('never lets more than N hosts hold slots, with two servers sharing the cluster', async () => {
      const servers = [
        await serveFleetLock(etcd.endpoints, '/load', '--group', 'g=3'),
        await serveFleetLock(etcd.endpoints, '/load', '--group', 'g=3'),
      ];
      try {
        const r = await run('/load', 3, 24, 3, servers, async () => {});
        expect(r.observedViolation).toBe('');
        expect(r.clientMax).toBeLessThanOrEqual(3);
        expect(r.observedMax).toBe(3);
      } finally {
        await Promise.all(servers.map(stopFleetLock));
      }
    }, 120_000);

    it('loses no slot when a server is killed and an etcd member crashes mid-run', async () => {
      const servers = [
        await serveFleetLock(etcd.endpoints, '/faults', '--group', 'g=2'),
        await serveFleetLock(etcd.endpoints, '/faults', '--group', 'g=2'),
      ];
      try {
        const r = await run('/faults', 2, 16, 3, servers, async () => {
          await new Promise((res) => setTimeout(res, 300));
          (servers[0] as Served).child.kill('SIGKILL');
          await etcd.stop(0);
          await new Promise((res) => setTimeout(res, 1500));
          await etcd.start(0);
        });
        expect(r.observedViolation).toBe('');
        expect(r.clientMax).toBeLessThanOrEqual(2);
        // Every host gave its slot back: nothing is held once all are done.
        const status = JSON.parse(
          runCli(['fleetlock', 'status', '--json', '--etcd', etcd.endpoints.join(','), '--prefix', '/faults']).stdout,
        ) as { groups: { holders: unknown[] }[] };
        expect(status.groups[0]?.holders).toEqual([]);
      } finally {
        await Promise.all(servers.map(stopFleetLock));
      }
    }, 120_000);
  });
});
