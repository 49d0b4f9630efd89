// Round trips through the built CLI: a rich tree committed into every repository mode and checked
// out every supported way comes back identical; tar commits, owners, subpaths, union, devino reuse;
// and hostile trees or destinations never make a checkout write outside its destination.
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, arbor, runCli, sh } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import { encodeCommit } from '../../src/repo/objects/index.js';
import type { Checksum } from '../../src/common/hash.js';
import { expectArborError, initRepo, objectFile, rawDirTree, writeRawObject } from '../support/repo-surgery.js';
import { buildRichTree, expectedUserMode, listTree, withoutXattrs, writeTree } from '../support/tree.js';
import { filledInBeforeAll } from '../support/filled-later.js';

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

const commitJson = (...args: string[]): CommitJson =>
  JSON.parse(arbor('commit', '--json', '--timestamp', '1700000000', ...args)) as CommitJson;
const rootTree = (repo: string, rev: string): string =>
  (JSON.parse(arbor('show', '--json', '--repo', repo, rev)) as { rootTree: string }).rootTree;

describe.skipIf(!IS_ROOT)('a rich tree (every file type, owner, mode, xattr and odd name)', () => {
  const tmp = useTempDir('arbor-roundtrip-');
  let src: string;
  const repos = filledInBeforeAll<Record<Mode, string>>();
  let expected: ReturnType<typeof listTree>;

  beforeAll(() => {
    src = join(tmp.path, 'src');
    buildRichTree(src, { largeFileBytes: LARGE_FILE_BYTES });
    expected = listTree(src);
    for (const mode of MODES) {
      repos[mode] = initRepo(join(tmp.path, `repo-${mode}`), mode);
      commitJson('--repo', repos[mode], '-b', 'os/main', '-s', 'rich', '--tree', `dir=${src}`);
    }
  });

  it('holds every kind of entry the comparisons rely on (large file, setuid, capability, device, owned symlink, 0000 dir, newline name)', () => {
    const byPath = new Map(expected.map((e) => [e.path, e]));
    expect(byPath.get('files/large.bin')?.size).toBe(LARGE_FILE_BYTES);
    expect(byPath.get('files/setuid')?.mode).toBe('4755');
    expect(byPath.get('files/capability')?.xattrs['security.capability']).toMatch(/^01000002/);
    expect(byPath.get('special/sda1')).toMatchObject({ type: 'block', rdev: '8:1' });
    expect(byPath.get('links/owned')).toMatchObject({
      type: 'symlink',
      uid: 1234,
      gid: 5678,
      xattrs: { 'trusted.link': expect.any(String) },
    });
    expect(byPath.get('dirs/mode-0000')).toMatchObject({ type: 'dir', mode: '0000' });
    expect(byPath.get('names/new\nline')?.type).toBe('file');
  });

  it.each([
    ['bare', 'hardlinks (the default)', []],
    ['bare', '--copy', ['--copy']],
    ['bare-user', '--copy', ['--copy']],
    ['archive', 'the default (copies)', []],
    ['archive', '--copy', ['--copy']],
  ] as const)(
    'a checkout from the %s repository with %s reproduces every path, type, mode, owner, xattr and byte',
    (mode, _how, flags) => {
      const dest = join(tmp.path, `co-${mode}-${flags.join('')}`);
      const stats = JSON.parse(arbor('checkout', '--json', '--repo', repos[mode], ...flags, 'os/main', dest)) as {
        hardlinked: number;
        files: number;
      };
      expect(stats.hardlinked).toBe(mode === 'bare' && flags.length === 0 ? stats.files : 0);
      expect(listTree(dest)).toEqual(expected);
    },
  );

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

  it('commits to the same root tree when small files are read one by one instead of by io_uring', () => {
    const repo = repos.bare;
    const r = runCli(['commit', '--json', '--repo', repo, '-b', 'no-uring', '--tree', `dir=${src}`], {
      env: { ARBOR_IO_URING: '0' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(rootTree(repo, 'no-uring')).toBe(rootTree(repo, 'os/main'));
  });

  it('checks out a --subpath directory as DEST itself', () => {
    const dest = join(tmp.path, 'co-subpath-dir');
    arbor('checkout', '--repo', repos.bare, '--subpath', '/dirs', 'os/main', dest);
    expect(listTree(dest)).toEqual(listTree(join(src, 'dirs')));
  });

  it.each(['files/setuid', 'links/owned', 'special/sda1', 'files/large.bin'])(
    'checks out the single file --subpath %s as DEST, with its metadata',
    (path) => {
      const dest = join(tmp.path, `co-subpath-${path.replace(/\//g, '-')}`);
      arbor('checkout', '--repo', repos.archive, '--subpath', path, 'os/main', dest);
      expect(listTree(dest)).toEqual([{ ...expected.find((e) => e.path === path), path: '.' }]);
    },
  );

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

describe.skipIf(!IS_ROOT)('the devino cache on a checkout of many files', () => {
  const tmp = useTempDir('arbor-devino-');

  it('re-commits without reading a file, past the point where the whole cache is loaded at once', () => {
    // 600 files: more hits than the commit asks the index for one by one before it loads the device's rows.
    const src = join(tmp.path, 'src');
    mkdirSync(join(src, 'many'), { recursive: true });
    for (let i = 0; i < 600; i++) writeFileSync(join(src, 'many', `f${i}`), `file ${i}\n`);
    const repo = initRepo(join(tmp.path, 'repo'), 'bare');
    commitJson('--repo', repo, '-b', 'main', '--tree', `dir=${src}`);
    const dest = join(tmp.path, 'co');
    arbor('checkout', '--repo', repo, 'main', dest);
    const result = commitJson('--repo', repo, '-b', 'again', '--tree', `dir=${dest}`);
    expect(result).toMatchObject({ files: 600, devinoHits: 600, bytesRead: 0 });
    expect(rootTree(repo, 'again')).toBe(rootTree(repo, 'main'));
  });

  it('reads every file of a fresh copy whose hardlinks are among its own files', () => {
    const src = join(tmp.path, 'linked');
    mkdirSync(src);
    for (let i = 0; i < 300; i++) writeFileSync(join(src, `f${i}`), `file ${i}\n`);
    for (let i = 0; i < 300; i++) linkSync(join(src, `f${i}`), join(src, `g${i}`));
    const repo = initRepo(join(tmp.path, 'repo2'), 'bare');
    commitJson('--repo', repo, '-b', 'main', '--tree', `dir=${src}`);
    const copy = join(tmp.path, 'copy');
    sh(`cp -a ${src} ${copy}`);
    const result = commitJson('--repo', repo, '-b', 'copy', '--tree', `dir=${copy}`);
    expect(result).toMatchObject({ files: 600, devinoHits: 0 });
    expect(rootTree(repo, 'copy')).toBe(rootTree(repo, 'main'));
  });
});

describe.skipIf(!IS_ROOT)('--user-mode checkouts', () => {
  const tmp = useTempDir('arbor-usermode-');
  let src: string;
  const repos = filledInBeforeAll<Record<'bare' | 'bare-user', string>>();
  let expected: ReturnType<typeof listTree>;

  beforeAll(() => {
    src = join(tmp.path, 'src');
    // Device nodes cannot be made without root, so this tree has none (a fifo needs no privilege).
    buildRichTree(src, { devices: false });
    expected = expectedUserMode(listTree(src), { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
    for (const mode of ['bare', 'bare-user'] as const) {
      repos[mode] = initRepo(join(tmp.path, `repo-${mode}`), mode);
      commitJson('--repo', repos[mode], '-b', 'main', '--tree', `dir=${src}`);
    }
  });

  it.each([
    ['bare-user', 'hardlinks (the default)', []],
    ['bare-user', '--copy', ['--copy']],
    ['bare', '--copy', ['--copy']],
  ] as const)(
    'from the %s repository with %s give the caller every file with its permissions minus setuid/setgid, and no owners or xattrs',
    (mode, _how, flags) => {
      const dest = join(tmp.path, `co-${mode}${flags.join('')}`);
      const stats = JSON.parse(
        arbor('checkout', '--json', '--user-mode', '--repo', repos[mode], ...flags, 'main', dest),
      ) as { hardlinked: number };
      expect(stats.hardlinked > 0).toBe(flags.length === 0);
      // Hardlinked files are the objects themselves, which keep their bare-user header xattr.
      expect(withoutXattrs(listTree(dest), ['user.arbor.meta'])).toEqual(expected);
    },
  );

  it('from the bare repository hardlink only objects whose mode needs no change, so setuid/setgid are still dropped', () => {
    const dest = join(tmp.path, 'co-bare-link');
    const stats = JSON.parse(arbor('checkout', '--json', '--user-mode', '--repo', repos.bare, 'main', dest)) as {
      hardlinked: number;
    };
    expect(stats.hardlinked).toBeGreaterThan(0);
    // Linked objects keep their stored owners and xattrs (user mode does not apply them; it cannot strip them).
    const shape = (l: ReturnType<typeof listTree>) =>
      l.map(({ path, type, mode, size, sha256, target }) => ({ path, type, mode, size, sha256, target }));
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

describe('--union checkouts', () => {
  const tmp = useTempDir('arbor-union-');
  let repo: string;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    initRepo(repo, 'bare-user');
    writeTree(join(tmp.path, 'a'), {
      'same.txt': 'old\n',
      'only-a.txt': 'a\n',
      'dir/kept.txt': 'kept\n',
      'dir/changed.txt': 'a version\n',
    });
    writeTree(join(tmp.path, 'b'), {
      'same.txt': 'new\n',
      'only-b.txt': 'b\n',
      'dir/changed.txt': 'b version\n',
      'dir/sub/deep.txt': 'deep\n',
    });
    writeTree(join(tmp.path, 'c'), { dir: 'now a file\n' });
    writeTree(join(tmp.path, 'outside-tree'), {
      'usr/bin/tool': '#!/bin/sh\n',
      'etc/passwd': 'root:x:0:0::/root:/bin/sh\n',
    });
    for (const name of ['a', 'b', 'c', 'outside-tree'])
      commitJson('--repo', repo, '-b', name, '--tree', `dir=${join(tmp.path, name)}`);
  });

  it('writes a commit over an existing tree: its files replace, files it lacks stay', () => {
    const dest = join(tmp.path, 'co-union');
    arbor('checkout', '--repo', repo, 'a', dest);
    arbor('checkout', '--repo', repo, '--union', 'b', dest);
    const files = listTree(dest)
      .filter((e) => e.type === 'file')
      .map((e) => [e.path, readFileSync(join(dest, e.path), 'utf8')]);
    expect(files).toEqual([
      ['dir/changed.txt', 'b version\n'],
      ['dir/kept.txt', 'kept\n'],
      ['dir/sub/deep.txt', 'deep\n'],
      ['only-a.txt', 'a\n'],
      ['only-b.txt', 'b\n'],
      ['same.txt', 'new\n'],
    ]);
  });

  it('refuses with exit 2 to replace a directory by a file, naming the path', () => {
    const dest = join(tmp.path, 'co-type-change');
    arbor('checkout', '--repo', repo, 'a', dest);
    expectArborError(runCli(['checkout', '--repo', repo, '--union', 'c', dest]), 2, 'E_CHECKOUT_TARGET', `${dest}/dir`);
    expect(readFileSync(join(dest, 'dir/kept.txt'), 'utf8')).toBe('kept\n');
  });

  it('replaces symlinks in DEST that lead outside instead of writing through them', () => {
    const outside = join(tmp.path, 'outside');
    mkdirSync(outside);
    const dest = join(tmp.path, 'co-symlinks');
    mkdirSync(join(dest, 'etc'), { recursive: true });
    symlinkSync(outside, join(dest, 'usr'));
    symlinkSync(join(outside, 'passwd'), join(dest, 'etc/passwd'));
    arbor('checkout', '--repo', repo, '--union', 'outside-tree', dest);
    expect(readdirSync(outside)).toEqual([]);
    expect(lstatSync(join(dest, 'usr')).isDirectory()).toBe(true);
    expect(lstatSync(join(dest, 'etc/passwd')).isFile()).toBe(true);
    expect(readFileSync(join(dest, 'usr/bin/tool'), 'utf8')).toBe('#!/bin/sh\n');
  });

  it('refuses with exit 2 a DEST that is a symlink, even to a directory', () => {
    const outside = join(tmp.path, 'outside-dest');
    mkdirSync(outside);
    const dest = join(tmp.path, 'co-dest-link');
    symlinkSync(outside, dest);
    for (const flags of [[], ['--union']]) {
      expectArborError(
        runCli(['checkout', '--repo', repo, ...flags, 'outside-tree', dest]),
        2,
        'E_CHECKOUT_TARGET',
        dest,
      );
    }
    expect(readdirSync(outside)).toEqual([]);
  });

  it('replaces a single-file DEST that is a symlink only with --union, never writing through it', () => {
    const outside = join(tmp.path, 'outside-file');
    mkdirSync(outside);
    const dest = join(tmp.path, 'co-file-link');
    symlinkSync(join(outside, 'passwd'), dest);
    expectArborError(
      runCli(['checkout', '--repo', repo, '--subpath', '/etc/passwd', 'outside-tree', dest]),
      2,
      'E_CHECKOUT_TARGET',
      dest,
    );
    arbor('checkout', '--repo', repo, '--union', '--subpath', '/etc/passwd', 'outside-tree', dest);
    expect(readdirSync(outside)).toEqual([]);
    expect(readFileSync(dest, 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
  });
});

describe('hand-made hostile dirtrees', () => {
  const tmp = useTempDir('arbor-hostile-');
  let repo: string;
  let outside: string;
  let ids: { link: string; file: string; subTree: string; meta: string };

  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    outside = join(tmp.path, 'outside');
    initRepo(repo, 'bare-user');
    mkdirSync(outside);
    const tree = join(tmp.path, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    symlinkSync(outside, join(tree, 'evil'));
    writeFileSync(join(tree, 'sub/pwned'), 'written outside DEST\n');
    commitJson('--repo', repo, '-b', 'parts', '--tree', `dir=${tree}`);
    const rows = JSON.parse(arbor('ls', '--json', '-R', '--repo', repo, 'parts')) as {
      path: string;
      checksum: string;
    }[];
    const at = (path: string): string => rows.find((r) => r.path === path)?.checksum as string;
    ids = {
      link: at('/evil'),
      file: at('/sub/pwned'),
      subTree: at('/sub'),
      meta: (JSON.parse(arbor('show', '--json', '--repo', repo, 'parts')) as { rootMeta: string }).rootMeta,
    };
  });

  let cases = 0;
  /** Stores `root` as the root dirtree of a new commit on ref `name`. */
  const commitRawTree = (name: string, root: Buffer): string => {
    const rootTree = writeRawObject(repo, 'dirtree', root);
    const commit = encodeCommit({
      parent: null,
      timestamp: 0,
      subject: name,
      body: '',
      rootTree: rootTree as Checksum,
      rootMeta: ids.meta as Checksum,
      metadata: new Map(),
    });
    arbor('refs', '--repo', repo, '--create', name, writeRawObject(repo, 'commit', commit));
    return rootTree;
  };

  it.each([
    [
      'a symlink and a directory with the same name',
      () => rawDirTree([['evil', ids.link]], [['evil', ids.subTree, ids.meta]]),
      'both a file and a directory',
    ],
    ["a directory named '..'", () => rawDirTree([], [['..', ids.subTree, ids.meta]]), "'..' is reserved"],
    ["a directory named '.'", () => rawDirTree([], [['.', ids.subTree, ids.meta]]), "'.' is reserved"],
    [
      "a symlink 'evil' and a file 'evil/pwned' through it",
      () =>
        rawDirTree(
          [
            ['evil', ids.link],
            ['evil/pwned', ids.file],
          ],
          [],
        ),
      "contains '/'",
    ],
    [
      "a directory named 'evil/sub'",
      () => rawDirTree([['evil', ids.link]], [['evil/sub', ids.subTree, ids.meta]]),
      "contains '/'",
    ],
    ["a file named '../../escape'", () => rawDirTree([['../../escape', ids.file]], []), "contains '/'"],
    ['an empty name', () => rawDirTree([['', ids.file]], []), 'empty name'],
    [
      'unsorted entries',
      () =>
        rawDirTree(
          [
            ['b', ids.file],
            ['a', ids.file],
          ],
          [],
        ),
      'unsorted',
    ],
  ])('refuses with exit 3 to check out a tree holding %s, writing nothing outside DEST', (_what, build, problem) => {
    const name = `hostile/case-${++cases}`;
    const tree = commitRawTree(name, build());
    const dest = join(tmp.path, 'dest', name);
    mkdirSync(join(dest, '..'), { recursive: true });
    const before = readdirSync(tmp.path).sort();
    expectArborError(
      runCli(['checkout', '--repo', repo, name, dest]),
      3,
      'E_OBJECT_MALFORMED',
      `dirtree ${tree}`,
      problem,
    );
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(tmp.path).sort()).toEqual(before);
    expect(existsSync(join(dest, '..', 'pwned'))).toBe(false);
  });

  it('refuses a hostile dirtree below a valid one, with exit 3 naming the nested dirtree', () => {
    const nested = writeRawObject(repo, 'dirtree', rawDirTree([], [['..', ids.subTree, ids.meta]]));
    commitRawTree('hostile/nested', rawDirTree([], [['ok', nested, ids.meta]]));
    const dest = join(tmp.path, 'dest-nested');
    expectArborError(
      runCli(['checkout', '--repo', repo, 'hostile/nested', dest]),
      3,
      'E_OBJECT_MALFORMED',
      `dirtree ${nested}`,
    );
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(tmp.path, 'pwned'))).toBe(false);
  });

  it('reports in fsck, with exit 3, a file object whose size is not the one its dirtree records', () => {
    // '/sub/pwned' holds 21 bytes ("written outside DEST\n"); this dirtree claims 5.
    commitRawTree('hostile/size', rawDirTree([['pwned', ids.file, 5]], []));
    const result = runCli(['fsck', '--repo', repo]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toMatch(
      new RegExp(`corrupt file ${ids.file}: holds 21 content bytes, but '/pwned' in commit [0-9a-f]{64} records 5`),
    );
  });

  it('refuses with exit 3 to copy out a file object whose size is not the one its dirtree records', () => {
    commitRawTree('hostile/size-copy', rawDirTree([['pwned', ids.file, 5]], []));
    const dest = join(tmp.path, 'dest-size');
    expectArborError(
      runCli(['checkout', '--repo', repo, '--copy', 'hostile/size-copy', dest]),
      3,
      'E_OBJECT_CORRUPT',
      `file ${ids.file}`,
      'holds 21 content bytes, its dirtree records 5',
    );
  });

  it('reports a hostile dirtree in fsck with exit 3', () => {
    const tree = commitRawTree('hostile/fsck', rawDirTree([], [['..', ids.subTree, ids.meta]]));
    const result = runCli(['fsck', '--repo', repo]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain(`corrupt dirtree ${tree}: dirtree ${tree}: name '..' is reserved`);
  });

  it('fsck --repair removes a file object whose size a dirtree contradicts', () => {
    commitRawTree('hostile/size-repair', rawDirTree([['pwned', ids.file, 5]], []));
    const result = runCli(['fsck', '--repair', '--repo', repo]);
    expect(result.stdout).toMatch(
      new RegExp(`corrupt file ${ids.file}: holds 21 content bytes, .* records 5 \\(removed\\)`),
    );
    expect(existsSync(objectFile(repo, ids.file, 'file'))).toBe(false);
  });
});
