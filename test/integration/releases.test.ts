// The release graph end to end: `arbor release` on a compose server publishes it inside the signed summary
// (served by nginx), and update agents following a channel take only what it allows — phased rollouts by
// each host's stable position, paused and dead-end releases skipped, barriers never jumped — while a graph
// changed without a new signature is refused.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolloutPosition } from '../../src/fleet/agent.js';
import { arbor } from '../support/cli.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { STATEROOT, TestSysroot, commitRootOwned, writeOsTree } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';

describe.skipIf(!HAVE_NGINX)('release graph', () => {
  const tmp = useTempDir('arbor-releases-');
  let nginx: NginxServer;
  let server: string;
  let key: { keyFile: string; pubFile: string };
  let template: TestSysroot;
  const commits: Record<string, string> = {};
  let hosts = 0;

  const commit = (version: string): string => {
    const dir = join(tmp.path, `tree-${version}`);
    writeOsTree(dir, { version, files: { [`usr/share/release-${version}`]: `${version}\n` } });
    const { checksum } = commitRootOwned(server, 'os/stable', dir, version, 1_700_000_000 + Number(version) * 100);
    arbor('sign', '--repo', server, checksum, '--keyfile', key.keyFile);
    commits[version] = checksum;
    return checksum;
  };
  const release = (...args: string[]) => arbor('release', ...args, '--repo', server, '--sign', key.keyFile);

  beforeAll(async () => {
    server = join(tmp.path, 'srv', 'repo');
    arbor('init', '--repo', server, '--mode', 'archive');
    key = JSON.parse(arbor('keygen', '--json', '-o', join(tmp.path, 'release'))) as typeof key;
    commit('1');
    release('add', '1', '--ref', 'os/stable', '--commit', commits['1'] as string, '--channel', 'stable');
    nginx = await startNginx(join(tmp.path, 'srv'));
    template = TestSysroot.create(join(tmp.path, 'template'));
    template.repoCli('remote', 'add', 'srv', `${nginx.url}/repo`, `--sign-verify=ed25519=${key.pubFile}`);
    template.repoCli('pull', 'srv', 'os/stable');
    template.ok('admin', 'deploy', '--stateroot', STATEROOT, '--origin-ref', 'srv:os/stable', 'srv:os/stable');
  }, 60_000);
  afterAll(() => nginx?.stop());

  /** A host following channel `stable` of the graph with policy stage, with an id placed at `position` or above. */
  const host = (minPosition: number, maxPosition: number) => {
    let id = '';
    for (let i = 0; ; i++) {
      id = `host-${hosts}-${i}`;
      const p = rolloutPosition(id);
      if (p >= minPosition && p < maxPosition) break;
    }
    const path = join(tmp.path, `host-${hosts++}`);
    arborCp(template.path, path);
    const config = join(path, 'agent.yaml');
    writeFileSync(config, `id: ${id}\npolicy: stage\nreleases: {remote: srv, channel: stable}\n`);
    const s = new TestSysroot(path);
    return {
      s,
      run: (at: string) => {
        const r = s.cli(['agent', 'run-once', '--config', config, '--at', at, '--json']);
        if (r.exitCode !== 0) throw new Error(`agent exited ${r.exitCode}: ${r.stderr}`);
        return JSON.parse(r.stdout) as { result: string; state: { staged: { checksum: string } | null } };
      },
      runFailing: (at: string) => s.cli(['agent', 'run-once', '--config', config, '--at', at]),
    };
  };

  it('publishes the graph inside the signed summary; release list shows it', () => {
    expect(arbor('release', 'list', '--repo', server)).toBe(`1  stable  ${commits['1']?.slice(0, 12)}  os/stable`);
    const summary = JSON.parse(arbor('summary', '--repo', server, '--view', '--json')) as {
      metadata: Record<string, string>;
    };
    expect(JSON.parse(summary.metadata['arbor.releases'] as string).releases).toHaveLength(1);
  });

  it('rolls a release out by each host’s stable position', () => {
    commit('2');
    // A rollout over 10 days from 2026-12-01: on 2026-12-03 it admits the first 20 % of hosts.
    release(
      'add',
      '2',
      '--ref',
      'os/stable',
      '--commit',
      commits['2'] as string,
      '--rollout',
      '10d',
      '--rollout-start',
      '2026-12-01T00:00:00Z',
    );
    const early = host(0, 0.1);
    const late = host(0.6, 1);
    expect(late.run('2026-12-03T00:00:00Z').result).toMatch(
      /^no release to take: release 2 is rolling out \(20 % of hosts so far; this host at \d+ %\)$/,
    );
    expect(early.run('2026-12-03T00:00:00Z').state.staged?.checksum).toBe(commits['2']);
    expect(late.run('2026-12-11T00:00:00Z').state.staged?.checksum).toBe(commits['2']);
  });

  it('never takes a paused or dead-end release, and stops at a barrier', () => {
    commit('3');
    commit('4');
    commit('5');
    release('add', '3', '--ref', 'os/stable', '--commit', commits['3'] as string, '--barrier');
    release('add', '4', '--ref', 'os/stable', '--commit', commits['4'] as string);
    release('add', '5', '--ref', 'os/stable', '--commit', commits['5'] as string);
    release('pause', '5', '--reason', 'bad kernel');
    release('deadend', '4');
    // Behind the barrier of 3: a host on 1 stops at 3 although 4 and 5 exist.
    const h = host(0, 1);
    expect(h.run('2026-12-20T00:00:00Z').state.staged?.checksum).toBe(commits['3']);
    expect(arbor('release', 'list', '--repo', server)).toContain(
      `5  stable  ${commits['5']?.slice(0, 12)}  os/stable  PAUSED (bad kernel)`,
    );
  });

  it('picks an older allowed release when the newest is paused, and moves on once it is resumed', () => {
    commit('6');
    release('add', '6', '--ref', 'os/stable', '--commit', commits['6'] as string);
    release('pause', '6', '--reason', 'canary failed');
    // A host already on 3 (past the barrier): 4 is a dead-end, 5 and 6 are paused.
    const h = host(0, 1);
    arbor('release', 'list', '--repo', server);
    expect(h.run('2026-12-20T00:00:00Z').state.staged?.checksum).toBe(commits['3']);
    h.s.ok('admin', 'finalize-staged');
    const env = h.s.bootedEnv(0, mkdtempSync(join(tmp.path, 'boot-')));
    const onThree = h.s.cli(
      ['agent', 'run-once', '--config', join(h.s.path, 'agent.yaml'), '--at', '2026-12-20T00:10:00Z'],
      env,
    );
    expect(onThree.stdout).toBe('no release to take: release 6 is paused: canary failed\n');
    release('resume', '6');
    const resumed = h.s.cli(
      ['agent', 'run-once', '--config', join(h.s.path, 'agent.yaml'), '--at', '2026-12-20T00:20:00Z', '--json'],
      env,
    );
    expect((JSON.parse(resumed.stdout) as { state: { staged: { checksum: string } } }).state.staged.checksum).toBe(
      commits['6'],
    );
  });

  it('refuses a graph changed on the server without a new signature', () => {
    arbor('release', 'resume', '5', '--repo', server);
    arbor('summary', '--repo', server, '--update');
    const h = host(0, 1);
    const r = h.runFailing('2026-12-20T00:00:00Z');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('E_SIGNATURE_MISSING');
  });
});

function arborCp(from: string, to: string): void {
  const r = spawnSync('cp', ['-a', from, to]);
  if (r.status !== 0) throw new Error(`cp -a ${from} ${to} failed`);
}
