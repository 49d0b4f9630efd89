// Rollouts that halt themselves: the fleet server (`fleetlock serve --releases`) keeps the trial reports
// agents send in etcd and, once a release's failed trials exceed the failure budget, pauses it in the
// release graph and republishes the signed summary; an agent whose trial failed reports it by itself, and
// a host that has not taken the release yet no longer does.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arbor } from '../support/cli.js';
import { type EtcdCluster, HAVE_ETCD, startEtcdCluster } from '../support/etcd.js';
import { type Served, serveFleetLock, stopFleetLock } from '../support/fleetlock.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { STATEROOT, TestSysroot, commitRootOwned, writeOsTree } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';

describe.skipIf(!HAVE_NGINX || !HAVE_ETCD)('failure budget', () => {
  const tmp = useTempDir('arbor-budget-');
  let nginx: NginxServer;
  let etcd: EtcdCluster;
  let fleet: Served;
  let server: string;
  let key: { keyFile: string; pubFile: string };
  let template: TestSysroot;
  const commits: Record<string, string> = {};
  let hosts = 0;

  const publish = (version: string): void => {
    const dir = join(tmp.path, `tree-${version}`);
    writeOsTree(dir, { version, files: { [`usr/share/release-${version}`]: `${version}\n` } });
    const { checksum } = commitRootOwned(server, 'os/stable', dir, version, 1_700_000_000 + Number(version) * 100);
    arbor('sign', '--repo', server, checksum, '--keyfile', key.keyFile);
    commits[version] = checksum;
    arbor('release', 'add', version, '--ref', 'os/stable', '--repo', server, '--sign', key.keyFile);
  };
  const report = async (id: string, commit: string, outcome: string, check: string | null = null) => {
    const r = await fetch(`${fleet.url}/v1/report`, {
      method: 'POST',
      headers: { 'fleet-lock-protocol': 'true' },
      body: JSON.stringify({
        client_params: { id, group: 'default' },
        report: { commit, version: null, outcome, check },
      }),
    });
    return { status: r.status, body: await r.text() };
  };
  const host = (config: string) => {
    const path = join(tmp.path, `host-${hosts++}`);
    expect(spawnSync('cp', ['-a', template.path, path]).status).toBe(0);
    const file = join(path, 'agent.yaml');
    writeFileSync(file, `${config}\n`);
    const s = new TestSysroot(path);
    const run = (env: NodeJS.ProcessEnv = {}) => {
      const r = s.cli(['agent', 'run-once', '--config', file], env);
      if (r.exitCode !== 0) throw new Error(`agent exited ${r.exitCode}: ${r.stderr}`);
      return r.stdout.trim();
    };
    return { s, run };
  };

  beforeAll(async () => {
    server = join(tmp.path, 'srv', 'repo');
    arbor('init', '--repo', server, '--mode', 'archive');
    key = JSON.parse(arbor('keygen', '--json', '-o', join(tmp.path, 'release'))) as typeof key;
    publish('1');
    nginx = await startNginx(join(tmp.path, 'srv'));
    etcd = await startEtcdCluster(join(tmp.path, 'etcd'), 1);
    fleet = await serveFleetLock(
      etcd.endpoints,
      '/budget',
      '--group',
      'default=5',
      '--releases',
      server,
      '--sign',
      key.keyFile,
      '--failure-budget',
      '2',
    );
    template = TestSysroot.create(join(tmp.path, 'template'));
    template.repoCli('remote', 'add', 'srv', `${nginx.url}/repo`, `--sign-verify=ed25519=${key.pubFile}`);
    template.repoCli('pull', 'srv', 'os/stable');
    template.ok('admin', 'deploy', '--stateroot', STATEROOT, '--origin-ref', 'srv:os/stable', 'srv:os/stable');
  }, 90_000);
  afterAll(async () => {
    if (fleet) await stopFleetLock(fleet);
    await etcd?.close();
    await nginx?.stop();
  });

  it('refuses malformed reports', async () => {
    expect(await report('h0', 'x', 'failed')).toEqual({
      status: 400,
      body: JSON.stringify({ kind: 'bad_body', value: "'report.commit' must be a commit checksum" }),
    });
    expect((await report('h0', '0'.repeat(64), 'maybe')).status).toBe(400);
  });

  it('pauses a release once its failed trials exceed the budget, with the reason, signed', async () => {
    publish('2');
    const v2 = commits['2'] as string;
    for (const id of ['h1', 'h2']) expect((await report(id, v2, 'blessed')).status).toBe(200);
    expect((await report('h3', v2, 'failed', 'web')).status).toBe(200);
    expect(arbor('release', 'list', '--repo', server)).not.toContain('PAUSED');
    // The same host reporting again replaces its report: still one failure.
    expect((await report('h3', v2, 'failed', 'web')).status).toBe(200);
    expect(arbor('release', 'list', '--repo', server)).not.toContain('PAUSED');
    expect((await report('h4', v2, 'failed', 'db')).status).toBe(200);
    expect(arbor('release', 'list', '--repo', server)).toContain(
      `2  stable  ${v2.slice(0, 12)}  os/stable  PAUSED (failure budget exceeded: 2 of 4 hosts failed their trial (checks: web, db))`,
    );
    expect(fleet.log.some((e) => e.paused === '2')).toBe(true);
    // A host that has not taken it yet no longer does: the graph it reads (signed) says paused.
    const fresh = host('id: fresh\npolicy: stage\nreleases: {remote: srv, channel: stable}');
    expect(fresh.run()).toMatch(/^no release to take: release 2 is paused: failure budget exceeded/);
  });

  it('an agent reports its failed trial by itself, and that can halt a rollout', async () => {
    publish('3');
    const v3 = commits['3'] as string;
    expect((await report('other', v3, 'failed', 'web')).status).toBe(200);
    const h = host(
      `id: victim\npolicy: apply\nreleases: {remote: srv, channel: stable, report: "${fleet.url}"}\nreboot:\n  command: [/bin/true]`,
    );
    expect(h.run()).toBe(`rebooting into ${v3.slice(0, 12)} (version 3)`);
    // The trial fails: the boot-time health runner records it and the machine falls back to entry 1.
    h.s.ok('admin', 'finalize-staged');
    const records = join(h.s.path, 'arbor/deploy', STATEROOT, 'var/lib/arbor/trial-failures');
    mkdirSync(records, { recursive: true });
    writeFileSync(
      join(records, `${v3}.0`),
      `reason=health-check\ncheck=web\nwhen=${Math.floor(Date.now() / 1000)}\ntries-used=3\n`,
    );
    const env = h.s.bootedEnv(1, mkdtempSync(join(tmp.path, 'boot-')));
    h.run(env);
    expect(arbor('release', 'list', '--repo', server)).toContain(
      `3  stable  ${v3.slice(0, 12)}  os/stable  PAUSED (failure budget exceeded: 2 of 2 hosts failed their trial (checks: web))`,
    );
    const status = JSON.parse(
      h.s.cli(['agent', 'status', '--json', '--config', join(h.s.path, 'agent.yaml')], env).stdout,
    ) as {
      failedReleases: { checksum: string; check: string }[];
    };
    expect(status.failedReleases).toEqual([expect.objectContaining({ checksum: v3, check: 'web' })]);
  });
});
