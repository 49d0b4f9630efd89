// Progress lines appear on a terminal and never when output is piped.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARBOR, arbor, runCli, sh, tempDir } from '../support/cli.js';

describe('progress', () => {
  const tmp = tempDir();
  const repo = join(tmp.path, 'repo');
  const tree = join(tmp.path, 'tree');
  beforeAll(() => {
    // Enough files that the commit reports progress more than once (every 256 files, ≤ 10 per second).
    for (let d = 0; d < 40; d++) {
      mkdirSync(join(tree, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), `${d}/${f}\n`.repeat(200));
    }
    arbor('init', '--repo', repo, '--mode', 'bare-user');
  });
  afterAll(() => tmp.cleanup());

  it('stays quiet on stderr when stderr is not a terminal', () => {
    const result = runCli(['commit', '--repo', repo, '-b', 'piped', '--tree', `dir=${tree}`]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^[0-9a-f]{64}\n$/);
  });

  it('draws files, bytes and rate on a terminal during commit and checkout', () => {
    // script(1) gives the child a pseudo-terminal; its transcript is what the terminal showed.
    const out = sh(
      `script -qec "ARBOR_COMMIT_WORKERS=0 node ${ARBOR} commit --repo ${repo} -b tty --tree dir=${tree} && node ${ARBOR} checkout --repo ${repo} --copy tty ${join(tmp.path, 'co')}" /dev/null`,
    );
    expect(out).toMatch(/committing: \d+ files, [\d.]+ (B|KiB|MiB) read/);
    expect(out).toMatch(/\/s/);
    expect(out).toMatch(/checking out: \d+ files, \d+ directories/);
    expect(out).toMatch(/[0-9a-f]{64}/);
  });

  it('draws objects, bytes, rate and time left on a terminal during a pull', () => {
    const client = join(tmp.path, 'client');
    arbor('init', '--repo', client, '--mode', 'bare-user');
    arbor('commit', '--repo', repo, '-b', 'for-pull', '--tree', `dir=${tree}`);
    const out = sh(`script -qec "node ${ARBOR} pull-local --repo ${client} ${repo} for-pull" /dev/null`);
    expect(out).toMatch(/receiving: \d+\/\d+\+? objects, [\d.]+ (B|KiB|MiB), [\d.]+ (B|KiB|MiB)\/s/);
    expect(out).toMatch(/fetched \d+ objects/);
    const piped = runCli(['pull-local', '--repo', client, repo, 'for-pull']);
    expect(piped.stderr).toBe('');
  });
});
