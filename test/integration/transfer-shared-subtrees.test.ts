// Regression: two directories with identical contents but different modes share one dirtree and
// differ in their dirmeta. A pull that walks each dirtree once must still fetch both dirmetas, and
// a delta's completeness check must still ask for both.
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arbor, runCli, tempDir } from '../support/cli.js';

describe('pull of directories sharing a dirtree with different dirmetas', () => {
  const tmp = tempDir();
  const tree = join(tmp.path, 'tree');
  const server = join(tmp.path, 'server');
  let v1 = '';
  beforeAll(() => {
    for (const [dir, mode] of [
      ['a', 0o755],
      ['b', 0o700],
      ['c/deep', 0o750],
    ] as const) {
      mkdirSync(join(tree, dir), { recursive: true });
      writeFileSync(join(tree, dir, 'same.txt'), 'identical content\n');
      chmodSync(join(tree, dir), mode);
    }
    arbor('init', '--repo', server, '--mode', 'archive');
    v1 = arbor('commit', '--repo', server, '-b', 'main', '--tree', `dir=${tree}`);
    writeFileSync(join(tree, 'added.txt'), 'v2\n');
    chmodSync(join(tree, 'b'), 0o711);
    arbor('commit', '--repo', server, '-b', 'main', '--tree', `dir=${tree}`);
    arbor('static-delta', 'generate', '--repo', server, '--to', 'main');
    arbor('summary', '--repo', server, '--update');
  });
  afterAll(() => tmp.cleanup());

  it("fetches every dirmeta object by object, and the checkout has each directory's mode", () => {
    const client = join(tmp.path, 'objects');
    arbor('init', '--repo', client, '--mode', 'bare-user');
    arbor('remote', 'add', '--repo', client, 'o', server, '--no-sign-verify');
    arbor('pull', '--repo', client, 'o', 'main', '--disable-static-deltas');
    const fsck = runCli(['fsck', '--repo', client]);
    expect(fsck.stderr).toBe('');
    expect(fsck.exitCode).toBe(0);
    const out = join(tmp.path, 'co');
    arbor('checkout', '--repo', client, '--user-mode', 'o:main', out);
    const ls = arbor('ls', '--repo', client, 'o:main', '/');
    expect(ls).toMatch(/^d0711 .* \/b$/m);
    expect(ls).toMatch(/^d0755 .* \/a$/m);
    expect((statSync(join(out, 'b')).mode & 0o777).toString(8)).toBe('711');
  });

  it('applies the delta and proves the new tree complete, dirmetas included', () => {
    const client = join(tmp.path, 'delta');
    arbor('init', '--repo', client, '--mode', 'bare-user');
    arbor('remote', 'add', '--repo', client, 'o', server, '--no-sign-verify');
    arbor('pull', '--repo', client, 'o', v1);
    arbor('refs', '--repo', client, '--create', 'o:main', v1);
    const pulled = arbor('pull', '--repo', client, 'o', 'main');
    expect(pulled).toMatch(/delta from/);
    expect(runCli(['fsck', '--repo', client]).exitCode).toBe(0);
    arbor('checkout', '--repo', client, '--user-mode', 'o:main', join(tmp.path, 'co2'));
  });
});
