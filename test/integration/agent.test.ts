// `arbor agent` on real sysroots updating from a remote served by nginx: each policy, maintenance windows
// with a given clock, a reboot simulated as the booted system would see it (finalize-staged, then the new
// entry's command line), a trial that must be blessed before the FleetLock slot is given back, and hosts
// sharing one FleetLock server backed by a real etcd cluster.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arbor } from '../support/cli.js';
import { type EtcdCluster, HAVE_ETCD, startEtcdCluster } from '../support/etcd.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { STATEROOT, TestSysroot, commitRootOwned, writeOsTree } from '../support/sysroot.js';
import { type Served, serveFleetLock, stopFleetLock } from '../support/fleetlock.js';
import { useTempDir } from '../support/temp.js';

interface AgentJson {
  result: string;
  state: {
    staged: { checksum: string } | null;
    pendingReboot: { checksum: string } | null;
    lock: string;
    lastUpdate: { checksum: string; outcome: string } | null;
    available: { checksum: string; newer: boolean } | null;
    pendingReports: unknown[];
  };
}

describe.skipIf(!HAVE_NGINX || !HAVE_ETCD)('arbor agent', () => {
  const tmp = useTempDir('arbor-agent-');
  let nginx: NginxServer;
  let server: string;
  let template: TestSysroot;
  let hosts = 0;
  const versions: Record<string, string> = {};

  /** Commits `version` to os/stable on the server (with a health runner: it then boots on trial). */
  const release = (version: string, onTrial = false): string => {
    const dir = join(tmp.path, `tree-${version}`);
    writeOsTree(dir, {
      version,
      files: {
        [`usr/share/release-${version}`]: `${version}\n`,
        ...(onTrial ? { 'usr/lib/arbor/arbor-health': { data: '#!/bin/sh\n', mode: 0o755 } } : {}),
      },
    });
    const { checksum } = commitRootOwned(server, 'os/stable', dir, version, 1_700_000_000 + Number(version));
    arbor('summary', '--repo', server, '--update');
    versions[version] = checksum;
    return checksum;
  };

  beforeAll(async () => {
    server = join(tmp.path, 'srv', 'repo');
    arbor('init', '--repo', server, '--mode', 'archive');
    release('1');
    nginx = await startNginx(join(tmp.path, 'srv'));
    template = TestSysroot.create(join(tmp.path, 'template'));
    template.repoCli('remote', 'add', 'srv', `${nginx.url}/repo`, '--no-sign-verify');
    template.repoCli('pull', 'srv', 'os/stable');
    template.ok('admin', 'deploy', '--stateroot', STATEROOT, '--origin-ref', 'srv:os/stable', 'srv:os/stable');
  }, 60_000);
  afterAll(() => nginx?.stop());

  /** A host: a copy of the template sysroot, its config file, and a reboot command that records. */
  const host = (config: string) => {
    const path = join(tmp.path, `host-${hosts++}`);
    const r = spawn('cp', ['-a', template.path, path]);
    return new Promise<{ s: TestSysroot; config: string; reboots: string }>((resolve) =>
      r.on('exit', () => {
        const reboots = join(path, 'reboots');
        const file = join(path, 'agent.yaml');
        writeFileSync(file, `${config}\n  command: [sh, -c, "echo reboot >> ${reboots}"]\n`);
        resolve({ s: new TestSysroot(path), config: file, reboots });
      }),
    );
  };
  /** `agent run-once` ("update now"), or with `command` 'run' what the timer starts (checks only when due). */
  const run = (
    h: { s: TestSysroot; config: string },
    args: string[] = [],
    env: NodeJS.ProcessEnv = {},
    command: 'run' | 'run-once' = 'run-once',
  ): AgentJson => {
    const r = h.s.cli(['agent', command, '--config', h.config, '--json', ...args], env);
    if (r.exitCode !== 0) throw new Error(`agent exited ${r.exitCode}: ${r.stderr}`);
    return JSON.parse(r.stdout) as AgentJson;
  };
  const rebootCount = (h: { reboots: string }): number =>
    existsSync(h.reboots) ? readFileSync(h.reboots, 'utf8').split('\n').filter(Boolean).length : 0;
  /** What the machine sees after rebooting: the staged deployment finalized, and booted from entry 0. */
  const reboot = (h: { s: TestSysroot }): NodeJS.ProcessEnv => {
    h.s.ok('admin', 'finalize-staged');
    return h.s.bootedEnv(0, mkdtempSync(join(tmp.path, 'boot-')));
  };

  it('policy check reports an update and changes nothing; stage stages it; status says so', async () => {
    const v2 = release('2');
    const h = await host('policy: check\nreboot:\n  strategy: immediate');
    const before = h.s.listing();
    expect(run(h).result).toBe(`update available: ${v2.slice(0, 12)} (version 2)`);
    expect(h.s.listing().filter((p) => !p.includes('arbor/agent'))).toEqual(before);

    writeFileSync(h.config, readFileSync(h.config, 'utf8').replace('policy: check', 'policy: stage'));
    const staged = run(h);
    expect(staged.result).toBe(`${v2.slice(0, 12)} (version 2) is staged; it is used at the next reboot`);
    expect(staged.state.staged?.checksum).toBe(v2);
    expect(h.s.status().staged?.checksum).toBe(v2);
    expect(rebootCount(h)).toBe(0);
    const status = h.s.cli(['agent', 'status', '--config', h.config]).stdout;
    expect(status).toContain(`Staged: ${v2.slice(0, 12)} (version 2)`);
  });

  it('policy apply waits for the maintenance window, then reboots; the next run records the update', async () => {
    const v3 = release('3');
    const h = await host(
      'policy: apply\nreboot:\n  strategy: periodic\n  windows:\n    - {days: [mon], start: "22:00", length: 1h}',
    );
    // 2026-12-07 is a Monday.
    const outside = run(h, ['--at', '2026-12-07T12:00:00Z']);
    expect(outside.result).toBe(
      `${v3.slice(0, 12)} (version 3) is staged; waiting for the maintenance window (opens 2026-12-07T22:00:00.000Z)`,
    );
    expect(rebootCount(h)).toBe(0);
    const inside = run(h, ['--at', '2026-12-07T22:10:00Z']);
    expect(inside.result).toBe(`rebooting into ${v3.slice(0, 12)} (version 3)`);
    expect(rebootCount(h)).toBe(1);
    // The timer's run: no check is due, so only settling the reboot tells it v3 is no longer an update.
    const after = run(h, ['--at', '2026-12-07T22:20:00Z'], reboot(h), 'run');
    expect(after.state.lastUpdate).toMatchObject({ checksum: v3, outcome: 'blessed' });
    expect(after.state.pendingReboot).toBeNull();
    expect(after.state.available).toMatchObject({ checksum: v3, newer: false });
    expect(after.result).toBe('up to date');
  });

  describe('with a FleetLock server on etcd', () => {
    let etcd: EtcdCluster;
    let lockServer: Served;

    beforeAll(async () => {
      etcd = await startEtcdCluster(join(tmp.path, 'etcd'), 3);
      lockServer = await serveFleetLock(etcd.endpoints, '/agent', '--group', 'web=1');
    }, 60_000);
    afterAll(async () => {
      if (lockServer) await stopFleetLock(lockServer);
      await etcd?.close();
    });

    const lockConfig = (id: string) =>
      `id: ${id}\npolicy: apply\nreboot:\n  strategy: fleet-lock\n  fleet_lock: {url: "URL", group: web}`;

    it('lets one host of the group reboot at a time, and frees the slot only once the trial is blessed', async () => {
      const a = await host(lockConfig('a').replace('URL', lockServer.url));
      const b = await host(lockConfig('b').replace('URL', lockServer.url));
      const v4 = release('4', true);
      expect(run(a).result).toBe(`rebooting into ${v4.slice(0, 12)} (version 4)`);
      expect(run(b).result).toMatch(/is staged; waiting for a reboot slot \(semaphore currently full: 1 of 1 slots/);
      expect(rebootCount(b)).toBe(0);

      // a boots the new deployment on trial: its slot stays held until the trial is blessed.
      const booted = reboot(a);
      expect(a.s.status().deployments[0]?.checksum).toBe(v4);
      const onTrial = run(a, [], booted);
      expect(onTrial.result).toBe(
        `booted ${v4.slice(0, 12)} (version 4) on trial; waiting for its health checks to bless it`,
      );
      expect(onTrial.state.lock).toBe('held');
      expect(run(b).result).toMatch(/waiting for a reboot slot/);

      // The health checks pass: the entry loses its boot counter, as arbor-health renames it.
      bless(a.s);
      const blessed = run(a, [], reboot(a));
      // This server takes no trial reports (no --releases): the report is dropped, not queued forever.
      expect(blessed.state).toMatchObject({
        lock: 'none',
        lastUpdate: { checksum: v4, outcome: 'blessed' },
        pendingReports: [],
      });
      expect(run(b).result).toBe(`rebooting into ${v4.slice(0, 12)} (version 4)`);
      expect(rebootCount(b)).toBe(1);
    }, 120_000);
  });
});

/** Drops the boot counter from the default entry's file name (`…+2-1.conf` → `….conf`). */
function bless(s: TestSysroot): void {
  const dir = join(s.bootDir, 'loader', 'entries');
  for (const name of readdirSync(dir)) {
    const plain = name.replace(/\+\d+(-\d+)?\.conf$/, '.conf');
    if (plain !== name) renameSync(join(dir, name), join(dir, plain));
  }
}
