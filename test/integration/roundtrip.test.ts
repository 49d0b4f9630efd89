// Round trips through the built CLI: a rich tree committed into every repository mode and checked
// out every supported way comes back identical; tar commits, owners, subpaths, union, devino reuse;
// and hostile trees or destinations never make a checkout write outside its destination.
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, arbor, runCli, sh, tempDir } from '../support/cli.js';
import { encodeCommit } from '../../src/repo/objects/index.js';
import type { Checksum } from '../../src/common/hash.js';
import { expectArborError, initRepo, rawDirTree, writeRawObject } from '../support/repo-surgery.js';
import { buildRichTree, expectedUserMode, listTree, withoutXattrs, writeTree } from '../support/tree.js';

const MODES = ['bare', 'bare-user', 'archive'] as const;
type Mode = (typeof MODES)[number];
/** Over 100 MiB and not a whole number of MiB: streamed (not buffered) by commit and checkout. */
const LARGE_FILE_BYTES = 101 * (1 << 20) + 4097;

interface CommitJson {
  commit: string;
  skipped: boolean;
  files: number;
  dirs: number;
  bytesRead: number;
  devinoHits: number;
  objectsWritten: number;
}

const commitJson = (...args: string[]): CommitJson => JSON.parse(arbor('commit', '--json', '--timestamp', '1700000000', ...args)) as CommitJson;
const rootTree = (repo: string, rev: string): string => (JSON.parse(arbor('show', '--json', '--repo', repo, rev)) as { rootTree: string }).rootTree;

describe.skipIf(!IS_ROOT)('a rich tree (every file type, owner, mode, xattr and odd name)', () => {
  const tmp = tempDir('arbor-roundtrip-');
  const src = join(tmp.path, 'src');
  const repos = {} as Record<Mode, string>;
  let expected: ReturnType<typeof listTree>;

  beforeAll(() => {
    buildRichTree(src, { largeFileBytes: LARGE_FILE_BYTES });
    expected = listTree(src);
    for (const mode of MODES) {
      repos[mode] = initRepo(join(tmp.path, `repo-${mode}`), mode);
      commitJson('--repo', repos[mode], '-b', 'os/main', '-s', 'rich', '--tree', `dir=${src}`);
    }
  });
  afterAll(() => tmp.cleanup());

  it('lists what the builder made, so the comparisons below cover it', () => {
    const byPath = new Map(expected.map((e) => [e.path, e]));
    expect(byPath.get('files/large.bin')?.size).toBe(LARGE_FILE_BYTES);
    expect(byPath.get('files/setuid')?.mode).toBe('4755');
    expect(byPath.get('files/capability')?.xattrs['security.capability']).toMatch(/^01000002/);
    expect(byPath.get('special/sda1')).toMatchObject({ type: 'block', rdev: '8:1' });
    expect(byPath.get('links/owned')).toMatchObject({ type: 'symlink', uid: 1234, gid: 5678, xattrs: { 'trusted.link': expect.any(String) } });
    expect(byPath.get('dirs/mode-0000')).toMatchObject({ type: 'dir', mode: '0000' });
    expect(byPath.get('names/new\nline')?.type).toBe('file');
  });

  it.each([
    ['bare', 'hardlinks (the default)', []],
    ['bare', '--copy', ['--copy']],
    ['bare-user', '--copy', ['--copy']],
    ['archive', 'the default (copies)', []],
    ['archive', '--copy', ['--copy']],
  ] as const)('checking out of a %s repository with %s reproduces every path, type, mode, owner, xattr and byte', (mode, _how, flags) => {
    const dest = join(tmp.path, `co-${mode}-${flags.join('')}`);
    const stats = JSON.parse(arbor('checkout', '--json', '--repo', repos[mode], ...flags, 'os/main', dest)) as { hardlinked: number; files: number };
    expect(stats.hardlinked).toBe(mode === 'bare' && flags.length === 0 ? stats.files : 0);
    expect(listTree(dest)).toEqual(expected);
  });

  it('commits a GNU tar of the tree (xattrs, numeric owners, hardlinks) to the same root tree as the directory', () => {
    const tar = join(tmp.path, 'tree.tar');
    sh(`tar -C '${src}' --xattrs --xattrs-include='*' --numeric-owner -cf '${tar}' .`);
    expect(sh(`tar -tvf '${tar}'`)).toMatch(/^h.* \.\/(hard\/[ab]|files\/hard-c) link to /m);
    const repo = repos['bare-user'];
    commitJson('--repo', repo, '-b', 'from-tar', '--tree', `tar=${tar}`);
    expect(rootTree(repo, 'from-tar')).toBe(rootTree(repo, 'os/main'));
    expect(arbor('diff', '--repo', repo, 'os/main', 'from-tar')).toBe('');
  });

  it('stores every entry as owned by --owner-uid/--owner-gid, the same from a directory and from a tar', () => {
    const repo = repos['bare-user'];
    const tar = join(tmp.path, 'owners.tar');
    sh(`tar -C '${src}' --xattrs --xattrs-include='*' --numeric-owner -cf '${tar}' .`);
    commitJson('--repo', repo, '-b', 'owned/dir', '--owner-uid', '42', '--owner-gid', '43', '--tree', `dir=${src}`);
    commitJson('--repo', repo, '-b', 'owned/tar', '--owner-uid', '42', '--owner-gid', '43', '--tree', `tar=${tar}`);
    const rows = JSON.parse(arbor('ls', '--json', '-R', '--repo', repo, 'owned/dir')) as { uid: number; gid: number }[];
    expect(rows.length).toBe(expected.length);
    expect(new Set(rows.map((r) => `${r.uid}:${r.gid}`))).toEqual(new Set(['42:43']));
    expect(rootTree(repo, 'owned/tar')).toBe(rootTree(repo, 'owned/dir'));
    const dest = join(tmp.path, 'co-owned');
    arbor('checkout', '--repo', repo, 'owned/dir', dest);
    expect(listTree(dest)).toEqual(expected.map((e) => ({ ...e, uid: 42, gid: 43 })));
  });

  it('checks out a --subpath directory as DEST itself', () => {
    const dest = join(tmp.path, 'co-subpath-dir');
    arbor('checkout', '--repo', repos.bare, '--subpath', '/dirs', 'os/main', dest);
    expect(listTree(dest)).toEqual(listTree(join(src, 'dirs')));
  });

  it.each(['files/setuid', 'links/owned', 'special/sda1', 'files/large.bin'])('checks out the single file --subpath %s as DEST, with its metadata', (path) => {
    const dest = join(tmp.path, `co-subpath-${path.replace(/\//g, '-')}`);
    arbor('checkout', '--repo', repos.archive, '--subpath', path, 'os/main', dest);
    expect(listTree(dest)).toEqual([{ ...expected.find((e) => e.path === path), path: '.' }]);
  });

  it('re-commits a hardlinked checkout to the same root tree without reading its files (devino cache)', () => {
    const dest = join(tmp.path, 'co-recommit');
    arbor('checkout', '--repo', repos.bare, 'os/main', dest);
    const result = commitJson('--repo', repos.bare, '-b', 'recommitted', '--tree', `dir=${dest}`);
    expect(rootTree(repos.bare, 'recommitted')).toBe(rootTree(repos.bare, 'os/main'));
    expect(result.devinoHits).toBeGreaterThan(0);
    expect(result.devinoHits).toBe(result.files);
    expect(result.bytesRead).toBe(0);
  });
});

describe.skipIf(!IS_ROOT)('--user-mode checkouts', () => {
  const tmp = tempDir('arbor-usermode-');
  const src = join(tmp.path, 'src');
  const repos = {} as Record<'bare' | 'bare-user', string>;
  let expected: ReturnType<typeof listTree>;

  beforeAll(() => {
    // Device nodes cannot be made without root, so this tree has none (a fifo needs no privilege).
    buildRichTree(src, { devices: false });
    expected = expectedUserMode(listTree(src), { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
    for (const mode of ['bare', 'bare-user'] as const) {
      repos[mode] = initRepo(join(tmp.path, `repo-${mode}`), mode);
      commitJson('--repo', repos[mode], '-b', 'main', '--tree', `dir=${src}`);
    }
  });
  afterAll(() => tmp.cleanup());

  it.each([
    ['bare-user', 'hardlinks (the default)', []],
    ['bare-user', '--copy', ['--copy']],
    ['bare', '--copy', ['--copy']],
  ] as const)('of a %s repository with %s give the caller every file with its permissions minus setuid/setgid, and no owners or xattrs', (mode, _how, flags) => {
    const dest = join(tmp.path, `co-${mode}${flags.join('')}`);
    const stats = JSON.parse(arbor('checkout', '--json', '--user-mode', '--repo', repos[mode], ...flags, 'main', dest)) as { hardlinked: number };
    expect(stats.hardlinked > 0).toBe(flags.length === 0);
    // Hardlinked files are the objects themselves, which keep their bare-user header xattr.
    expect(withoutXattrs(listTree(dest), ['user.arbor.meta'])).toEqual(expected);
  });

  it('of a bare repository hardlink only objects whose mode needs no change, so setuid/setgid are still dropped', () => {
    const dest = join(tmp.path, 'co-bare-link');
    const stats = JSON.parse(arbor('checkout', '--json', '--user-mode', '--repo', repos.bare, 'main', dest)) as { hardlinked: number };
    expect(stats.hardlinked).toBeGreaterThan(0);
    // Linked objects keep their stored owners and xattrs (user mode does not apply them; it cannot strip them).
    const shape = (l: ReturnType<typeof listTree>) => l.map(({ path, type, mode, size, sha256, target }) => ({ path, type, mode, size, sha256, target }));
    expect(shape(listTree(dest))).toEqual(shape(expected));
  });

  it('refuses a device node in user mode with exit 1, naming it', () => {
    const repo = initRepo(join(tmp.path, 'repo-dev'), 'bare-user');
    const tree = join(tmp.path, 'with-device');
    buildRichTree(tree);
    commitJson('--repo', repo, '-b', 'main', '--tree', `dir=${tree}`);
    const result = runCli(['checkout', '--user-mode', '--repo', repo, 'main', join(tmp.path, 'co-dev')]);
    expectArborError(result, 1, 'E_CHECKOUT_UNSUPPORTED', `co-dev/special/`, 'device node');
  });
});
