// A fleet of 20 hosts updating themselves with real parts: each host its own sysroot and `arbor agent`
// runs, a 3-member etcd cluster, the FleetLock server (3 reboot slots, failure budget 3) and the release
// graph served by nginx. A reboot is simulated as the booted system would see it: the staged deployment
// finalized, then the new entry blessed by its health check (the entry loses its counter) or the trial
// failing (the health runner's record, and the previous entry booted). An observer watching etcd — not the
// server — checks that no more than 3 hosts are ever between pre-reboot and steady-state.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arbor, runCliAsync } from '../support/cli.js';
import { type EtcdCluster, HAVE_ETCD, startEtcdCluster } from '../support/etcd.js';
import { type Served, serveFleetLock, stopFleetLock } from '../support/fleetlock.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { STATEROOT, TestSysroot, commitRootOwned, writeOsTree } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';

const HOSTS = 20;
const SLOTS = 3;

interface Host {
  readonly id: string;
  readonly s: TestSysroot;
  readonly config: string;
  readonly marker: string;
  env: NodeJS.ProcessEnv;
}

describe.skipIf(!HAVE_NGINX || !HAVE_ETCD)(`a fleet of ${HOSTS} hosts`, () => {
  const tmp = useTempDir('arbor-fleet-');
  let nginx: NginxServer;
  let etcd: EtcdCluster;
  let fleet: Served;
  let server: string;
  let key: { keyFile: string };
  const commits: Record<string, string> = {};
  const hosts: Host[] = [];
  let watcher: Etcd3;
  let observedMax = 0;
  let violation = '';

  /** Commits and releases `version`; its health runner exists, so hosts boot it on trial. */
  const publish = (version: string): string => {
    const dir = join(tmp.path, `tree-${version}`);
    writeOsTree(dir, {
      version,
      files: {
        [`usr/share/release-${version}`]: `${version}\n`,
        'usr/lib/arbor/arbor-health': { data: '#!/bin/sh\n', mode: 0o755 },
      },
    });
    const { checksum } = commitRootOwned(server, 'os/stable', dir, version, 1_700_000_000 + Number(version) * 100);
    commits[version] = checksum;
    arbor(
      'release',
      'add',
      version,
      '--ref',
      'os/stable',
      '--commit',
      checksum,
      '--repo',
      server,
      '--sign',
      key.keyFile,
    );
    return checksum;
  };

  beforeAll(async () => {
    server = join(tmp.path, 'srv', 'repo');
    arbor('init', '--repo', server, '--mode', 'archive');
    key = JSON.parse(arbor('keygen', '--json', '-o', join(tmp.path, 'release'))) as typeof key;
    publish('1');
    nginx = await startNginx(join(tmp.path, 'srv'));
    etcd = await startEtcdCluster(join(tmp.path, 'etcd'), 3);
    fleet = await serveFleetLock(
      etcd.endpoints,
      '/fleet',
      '--group',
      `web=${SLOTS}`,
      '--releases',
      server,
      '--sign',
      key.keyFile,
      '--failure-budget',
      '3',
    );
    watcher = new Etcd3({ hosts: [...etcd.endpoints] });
    const watch = await watcher.watch().key('/fleet/groups/web').create();
    watch.on('put', (kv) => {
      const sem = JSON.parse(kv.value.toString()) as { holders: unknown[] };
      observedMax = Math.max(observedMax, sem.holders.length);
      if (sem.holders.length > SLOTS) violation = kv.value.toString();
    });
    const template = TestSysroot.create(join(tmp.path, 'template'));
    template.repoCli('remote', 'add', 'srv', `${nginx.url}/repo`, '--no-sign-verify');
    template.repoCli('pull', 'srv', 'os/stable');
    template.ok('admin', 'deploy', '--stateroot', STATEROOT, '--origin-ref', 'srv:os/stable', 'srv:os/stable');
    for (let i = 0; i < HOSTS; i++) {
      const path = join(tmp.path, `host-${i}`);
      expect(spawnSync('cp', ['-a', template.path, path]).status).toBe(0);
      const marker = join(path, 'rebooted');
      const config = join(path, 'agent.yaml');
      writeFileSync(
        config,
        [
          `id: host-${i}`,
          'policy: apply',
          'interval: 60',
          'jitter: 0',
          `releases: {remote: srv, channel: stable, report: "${fleet.url}"}`,
          'reboot:',
          '  strategy: fleet-lock',
          `  fleet_lock: {url: "${fleet.url}", group: web}`,
          `  command: [sh, -c, "touch ${marker}"]`,
          '',
        ].join('\n'),
      );
      hosts.push({ id: `host-${i}`, s: new TestSysroot(path), config, marker, env: {} });
    }
  }, 180_000);
  afterAll(async () => {
    watcher?.close();
    if (fleet) await stopFleetLock(fleet);
    await etcd?.close();
    await nginx?.stop();
  });

  /** What the machine does at a reboot the agent asked for: finalize, boot entry 0, then bless or fall back. */
  const reboot = (h: Host, healthy: (h: Host) => boolean): void => {
    rmSync(h.marker);
    h.s.ok('admin', 'finalize-staged');
    const version = h.s.status().deployments[0]?.checksum as string;
    if (healthy(h)) {
      const entries = join(h.s.bootDir, 'loader', 'entries');
      for (const name of readdirSync(entries)) {
        const plain = name.replace(/\+\d+(-\d+)?\.conf$/, '.conf');
        if (plain !== name) renameSync(join(entries, name), join(entries, plain));
      }
      h.env = h.s.bootedEnv(0, mkdtempSync(join(tmp.path, 'boot-')));
    } else {
      const records = join(h.s.path, 'arbor/deploy', STATEROOT, 'var/lib/arbor/trial-failures');
      mkdirSync(records, { recursive: true });
      writeFileSync(
        join(records, `${version}.0`),
        `reason=health-check\ncheck=30-web\nwhen=${Math.floor(Date.now() / 1000)}\ntries-used=3\n`,
      );
      h.env = h.s.bootedEnv(1, mkdtempSync(join(tmp.path, 'boot-')));
    }
  };

  /** Rounds of agent runs (4 hosts at a time) until `done` holds or `rounds` pass; returns the rounds run. */
  const drive = async (healthy: (h: Host) => boolean, done: () => boolean, rounds: number): Promise<number> => {
    for (let round = 0; round < rounds; round++) {
      if (round > 0 && done()) return round;
      const queue = [...hosts];
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let h = queue.shift(); h; h = queue.shift()) {
            if (existsSync(h.marker)) reboot(h, healthy);
            const r = await runCliAsync(
              ['agent', 'run-once', '--config', h.config, '--sysroot', h.s.path],
              undefined,
              h.env,
            );
            if (r.exitCode !== 0) throw new Error(`${h.id}: agent exited ${r.exitCode}: ${r.stderr}`);
          }
        }),
      );
    }
    return rounds;
  };
  const bootedOn = (h: Host, version: string): boolean =>
    !existsSync(h.marker) &&
    h.s.status(h.env).deployments.find((d) => d.role === 'booted')?.checksum === commits[version];

  it(`takes a good release to every host, at most ${SLOTS} rebooting at once`, async () => {
    publish('2');
    const rounds = await drive(
      () => true,
      () =>
        hosts.every((h) => {
          const a = agentState(h);
          return a.lastUpdate?.checksum === commits['2'] && a.lock === 'none';
        }),
      40,
    );
    expect(hosts.filter((h) => !bootedOn(h, '2')).map((h) => h.id)).toEqual([]);
    expect(violation).toBe('');
    expect(observedMax).toBeLessThanOrEqual(SLOTS);
    expect(observedMax).toBeGreaterThan(1);
    console.log(`release 2 reached ${HOSTS} hosts in ${rounds} rounds; at most ${observedMax} held slots at once`);
  }, 600_000);

  it('pauses a release whose trials fail once the budget is spent; most hosts never take it', async () => {
    publish('3');
    const settled = (): boolean =>
      /^3 .*PAUSED/m.test(arbor('release', 'list', '--repo', server)) &&
      hosts.every((h) => {
        const a = agentState(h);
        return !existsSync(h.marker) && a.lock === 'none' && a.pendingReboot === null && a.staged === null;
      });
    await drive(() => false, settled, 15);
    const tried = hosts.filter((h) => agentState(h).failedReleases.some((f) => f.checksum === commits['3']));
    expect(tried.length).toBeGreaterThanOrEqual(3);
    expect(tried.length).toBeLessThanOrEqual(SLOTS * 2);
    expect(arbor('release', 'list', '--repo', server)).toMatch(
      /^3 .*PAUSED \(failure budget exceeded: \d+ of \d+ hosts failed their trial \(checks: 30-web\)\)$/m,
    );
    // Every host runs release 2 again, and none keeps release 3 staged.
    for (const h of hosts) {
      expect(bootedOn(h, '2')).toBe(true);
      expect(h.s.status(h.env).staged).toBeNull();
    }
    expect(violation).toBe('');
    console.log(`release 3 paused after ${tried.length} of ${HOSTS} hosts tried it`);
  }, 600_000);

  /** The agent's own record of the host (SYSROOT/arbor/agent/state.json). */
  function agentState(h: Host): {
    lock: string;
    pendingReboot: unknown;
    staged: unknown;
    lastUpdate: { checksum: string } | null;
    failedReleases: { checksum: string }[];
  } {
    const path = join(h.s.path, 'arbor/agent/state.json');
    if (!existsSync(path))
      return { lock: 'none', pendingReboot: null, staged: null, lastUpdate: null, failedReleases: [] };
    return JSON.parse(readFileSync(path, 'utf8')) as ReturnType<typeof agentState>;
  }
});
