// Bad input through the built CLI: every failure has its documented exit status, a first stderr
// line `error[E_…]: …` naming the path, ref or object, no stack trace, and leaves the repository
// as it was (refs unchanged, fsck clean, no staging directory left in tmp/).
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, arbor, runCli, sh } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import {
  NOBODY,
  expectArborError,
  flipByte,
  initRepo,
  listObjectFiles,
  objectFile,
  runCliAs,
  stagingDirs,
} from '../support/repo-surgery.js';
import { native } from '../../src/common/native.js';
import { WHOLE_FILE_LIMIT } from '../../src/repo/store.js';
import { writeLargeFile, writeTree } from '../support/tree.js';

const MODES = ['bare', 'bare-user', 'archive'] as const;

/** What a failed command must leave as it found: refs, objects, a clean fsck and no staging dirs. */
function snapshot(repo: string, run: (args: string[]) => ReturnType<typeof runCli> = runCli): () => void {
  const refs = run(['refs', '--list', '--repo', repo]).stdout;
  const objects = listObjectFiles(repo);
  return () => {
    expect(run(['refs', '--list', '--repo', repo]).stdout).toBe(refs);
    expect(listObjectFiles(repo)).toEqual(objects);
    expect(run(['fsck', '--repo', repo])).toMatchObject({ exitCode: 0, stderr: '' });
    expect(stagingDirs(repo)).toEqual([]);
  };
}

/** A tar archive made by tar-stream from explicit headers, so it can hold members GNU tar would not write. */
async function craftTar(
  path: string,
  members: {
    name: string;
    type?: 'file' | 'symlink' | 'link' | 'directory';
    linkname?: string;
    content?: string;
    pax?: Record<string, string>;
  }[],
): Promise<void> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const m of members) {
    const { content, ...header } = m;
    p.entry({ type: 'file', mode: 0o644, ...header }, content ?? '');
  }
  p.finalize();
  await done;
  writeFileSync(path, Buffer.concat(chunks));
}

describe('a commit that cannot read its tree', () => {
  const tmp = useTempDir('arbor-bad-tree-');
  let repo: string;
  let tree: string;
  let untouched: () => void;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    tree = join(tmp.path, 'tree');
    initRepo(repo, 'bare-user');
    writeTree(tree, { 'usr/bin/tool': '#!/bin/sh\n', 'etc/motd': 'hi\n' });
    arbor('commit', '--repo', repo, '-b', 'os/main', '--tree', `dir=${tree}`);
    untouched = snapshot(repo);
  });

  it('exits 1 naming a socket in the tree, and changes nothing', () => {
    const socket = join(tree, 'usr/control.sock');
    sh(`python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' '${socket}'`);
    try {
      expectArborError(
        runCli(['commit', '--repo', repo, '-b', 'os/main', '--tree', `dir=${tree}`]),
        1,
        'E_UNSUPPORTED_FILE',
        `'${socket}' is a socket`,
      );
      untouched();
    } finally {
      rmSync(socket);
    }
  });

  it('exits 2 when --tree dir= names a file, and 1 when it names nothing', () => {
    expectArborError(
      runCli(['commit', '--repo', repo, '-b', 'os/main', '--tree', `dir=${tree}/etc/motd`]),
      2,
      'E_TREE_NOT_DIR',
      `'${tree}/etc/motd' is not a directory`,
    );
    expectArborError(
      runCli(['commit', '--repo', repo, '-b', 'os/main', '--tree', `dir=${tree}/absent`]),
      1,
      'E_IO',
      `'${tree}/absent'`,
      'no such file or directory',
    );
    expectArborError(
      runCli(['commit', '--repo', repo, '-b', 'os/main', '--tree', `zip=${tree}`]),
      2,
      'E_USAGE',
      `'zip=${tree}'`,
    );
    untouched();
  });

  it.each(['../evil', 'a//b', 'heads/x.lock', 'sp ace', 'a/..b', 'a'.repeat(64)])(
    'exits 2 for the invalid ref name %j, and changes nothing',
    (name) => {
      expectArborError(
        runCli(['commit', '--repo', repo, '-b', name, '--tree', `dir=${tree}`]),
        2,
        'E_REF_INVALID',
        `'${name}'`,
      );
      untouched();
    },
  );
});

describe.skipIf(!IS_ROOT)('a commit run by an unprivileged user', () => {
  const tmp = useTempDir('arbor-bad-perm-');
  let repo: string;
  let tree: string;
  const asNobody = (args: string[]) => runCliAs(NOBODY, args);
  let untouched: () => void;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    tree = join(tmp.path, 'tree');
    chownSync(tmp.path, NOBODY.uid, NOBODY.gid);
    expect(asNobody(['init', '--repo', repo, '--mode', 'bare-user'])).toMatchObject({ exitCode: 0 });
    writeTree(tree, { 'ok.txt': 'readable\n', 'secret/inside': 'hidden\n' });
    sh(`chown -R ${NOBODY.uid}:${NOBODY.gid} '${tree}'`);
    expect(asNobody(['commit', '--repo', repo, '-b', 'main', '--tree', `dir=${tree}`])).toMatchObject({ exitCode: 0 });
    untouched = snapshot(repo, asNobody);
  });

  it.each([
    ['file', 'ok.txt', 'cannot read'],
    ['directory', 'secret', 'cannot read directory'],
  ])('exits 1 naming an unreadable (mode 000) %s, and changes nothing', (_kind, rel, action) => {
    const path = join(tree, rel);
    chmodSync(path, 0o000);
    try {
      expectArborError(
        asNobody(['commit', '--repo', repo, '-b', 'main', '--tree', `dir=${tree}`]),
        1,
        'E_PERMISSION',
        `${action} '${path}'`,
        'permission denied (EACCES)',
      );
      untouched();
    } finally {
      chmodSync(path, 0o755);
    }
  });
});

describe('a file whose header would be over 1 MiB', () => {
  // tmpfs takes many 64 KiB user xattrs per file; ext4 keeps them in one block.
  const shm = '/dev/shm';
  const tmp = useTempDir('arbor-fat-header-');
  it.skipIf(!existsSync(shm))('exits 1 when committing it from a directory, naming it, and changes nothing', () => {
    const repo = join(tmp.path, 'repo');
    initRepo(repo, 'bare-user');
    const tree = mkdtempSync(join(shm, 'arbor-fat-'));
    try {
      writeFileSync(join(tree, 'ok'), 'ok\n');
      const fat = join(tree, 'fat');
      writeFileSync(fat, 'x');
      for (let i = 0; i < 17; i++) native.setxattr(fat, `user.v${i}`, Buffer.alloc(64 * 1024, i));
      const untouched = snapshot(repo);
      expectArborError(
        runCli(['commit', '--repo', repo, '-b', 'main', '--tree', `dir=${tree}`]),
        1,
        'E_FILE_HEADER_TOO_LARGE',
        `'${fat}'`,
        'more than the 1048576',
      );
      untouched();
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});

describe('tar archives', () => {
  const tmp = useTempDir('arbor-bad-tar-');
  let repo: string;
  let untouched: () => void;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    initRepo(repo, 'archive');
    writeTree(join(tmp.path, 'tree'), { 'a.txt': 'a\n' });
    arbor('commit', '--repo', repo, '-b', 'main', '--tree', `dir=${join(tmp.path, 'tree')}`);
    untouched = snapshot(repo);
  });

  const commitTar = (tar: string) => runCli(['commit', '--repo', repo, '-b', 'main', '--tree', `tar=${tar}`]);

  it.each([
    ["a member '../x'", [{ name: '../x', content: 'escape' }], "'../x'"],
    ["a member 'a/../../x'", [{ name: 'a/../../x', content: 'escape' }], "'a/../../x'"],
    [
      "a hardlink to '../x'",
      [
        { name: 'ok', content: 'x' },
        { name: 'link', type: 'link', linkname: '../x' },
      ],
      "'../x'",
    ],
    [
      'a member below a symlink member',
      [
        { name: 'evil', type: 'symlink', linkname: '/tmp' },
        { name: 'evil/x', content: 'through the link' },
      ],
      "'evil'",
    ],
    [
      'a hardlink to a member that comes later',
      [
        { name: 'link', type: 'link', linkname: 'later' },
        { name: 'later', content: 'x' },
      ],
      "'later'",
    ],
  ] as const)('exits 2 for %s, naming it, and changes nothing', async (what, members, mention) => {
    const tar = join(tmp.path, `${what.replace(/\W+/g, '-')}.tar`);
    await craftTar(tar, [...members]);
    expectArborError(commitTar(tar), 2, 'E_TAR_PATH', `'${tar}'`, mention);
    untouched();
  });

  it('exits 1 for a member whose xattrs make a file header over 1 MiB, naming it, and changes nothing', async () => {
    const tar = join(tmp.path, 'big-xattr.tar');
    await craftTar(tar, [{ name: 'fat', content: 'x', pax: { 'SCHILY.xattr.user.big': 'v'.repeat(1100 * 1024) } }]);
    expectArborError(commitTar(tar), 1, 'E_FILE_HEADER_TOO_LARGE', `'${tar}': member 'fat'`, 'more than the 1048576');
    untouched();
  });

  it('exits 2 for a file that is not a tar archive, naming it', () => {
    const tar = join(tmp.path, 'garbage.tar');
    writeFileSync(tar, Buffer.alloc(4096, 'not a tar header '));
    expectArborError(commitTar(tar), 2, 'E_TAR_INVALID', `'${tar}' is not a readable tar archive`);
    untouched();
  });

  it('exits 2 for a truncated tar archive, and changes nothing', () => {
    const tar = join(tmp.path, 'truncated.tar');
    writeFileSync(join(tmp.path, 'payload'), Buffer.alloc(300_000, 7));
    sh(`tar -C '${tmp.path}' -cf '${tar}.full' payload`);
    writeFileSync(tar, readFileSync(`${tar}.full`).subarray(0, 100_000));
    expectArborError(commitTar(tar), 2, 'E_TAR_INVALID', `'${tar}'`);
    untouched();
  });

  it('exits 1 for a tar archive that does not exist, naming it', () => {
    expectArborError(
      commitTar(join(tmp.path, 'absent.tar')),
      1,
      'E_IO',
      `'${join(tmp.path, 'absent.tar')}'`,
      'no such file or directory',
    );
    untouched();
  });
});

describe.each(MODES)('a corrupted %s repository', (mode) => {
  const tmp = useTempDir(`arbor-corrupt-${mode}-`);
  let tree: string;
  let count = 0;
  beforeAll(() => {
    tree = join(tmp.path, 'tree');
    writeTree(tree, { 'etc/motd': 'a message nobody else has\n', 'usr/bin/tool': '#!/bin/sh\necho tool\n' });
  });

  /** A new repository holding the tree on os/main, with the ids of what the tests damage. */
  const freshRepo = () => {
    const repo = initRepo(join(tmp.path, `repo-${++count}`), mode);
    const commit = arbor('commit', '--repo', repo, '-b', 'os/main', '--tree', `dir=${tree}`);
    const rows = JSON.parse(arbor('ls', '-R', '--json', '--repo', repo, 'os/main')) as {
      path: string;
      checksum: string;
    }[];
    const at = (path: string) => rows.find((r) => r.path === path)?.checksum as string;
    return { repo, commit, file: at('/etc/motd'), dirtree: at('/usr/bin') };
  };
  /** Flips a byte of the file object's stored bytes (archive: the last one, inside the compressed data). */
  const corruptFile = (repo: string, file: string) =>
    flipByte(objectFile(repo, file, 'file', mode === 'archive'), mode === 'archive' ? -1 : 0);

  it('fsck exits 3 naming a file object with one byte flipped; a --copy checkout and cat exit 3 too', () => {
    const { repo, file } = freshRepo();
    corruptFile(repo, file);
    const fsck = runCli(['fsck', '--repo', repo]);
    expect(fsck.exitCode).toBe(3);
    expect(fsck.stdout).toMatch(new RegExp(`^corrupt file ${file}: `, 'm'));
    expect(fsck.stdout).toMatch(/: 1 corrupt, 0 missing$/m);
    expectArborError(
      runCli(['checkout', '--copy', '--repo', repo, 'os/main', join(tmp.path, `co-${count}`)]),
      3,
      'E_OBJECT_CORRUPT',
      `file ${file} is corrupt`,
    );
    expectArborError(runCli(['cat', '--repo', repo, 'os/main', '/etc/motd']), 3, 'E_OBJECT_CORRUPT', `file ${file}`);
  });

  it('fsck --repair removes a corrupt object, then reports it missing at its path (exit 3) until a commit restores it', () => {
    const { repo, commit, file } = freshRepo();
    corruptFile(repo, file);
    const repair = runCli(['fsck', '--repair', '--repo', repo]);
    expect(repair.exitCode).toBe(3);
    expect(repair.stdout).toContain(`corrupt file ${file}`);
    expect(repair.stdout).toContain('(removed)');
    expect(repair.stdout).toContain(`missing file ${file} at '/etc/motd' of commit ${commit} (ref 'os/main')`);
    const after = runCli(['fsck', '--repo', repo]);
    expect(after.exitCode).toBe(3);
    expect(after.stdout).toMatch(/: 0 corrupt, 1 missing$/m);
    expectArborError(
      runCli(['checkout', '--copy', '--repo', repo, 'os/main', join(tmp.path, `co-${count}`)]),
      3,
      'E_OBJECT_MISSING',
      `file ${file} is missing`,
    );
    // Committing the same tree again stores the object anew.
    arbor('commit', '--repo', repo, '-b', 'restore', '--tree', `dir=${tree}`);
    expect(runCli(['fsck', '--repo', repo])).toMatchObject({ exitCode: 0 });
  });

  it(`a dirtree with one byte flipped makes even a default${mode === 'bare' ? ' (hardlink)' : ''} checkout exit 3, naming it`, () => {
    const { repo, dirtree } = freshRepo();
    flipByte(objectFile(repo, dirtree, 'dirtree'), 3);
    expectArborError(
      runCli(['checkout', '--repo', repo, 'os/main', join(tmp.path, `co-${count}`)]),
      3,
      'E_OBJECT_CORRUPT',
      `dirtree ${dirtree} is corrupt`,
    );
    expectArborError(runCli(['ls', '-R', '--repo', repo, 'os/main']), 3, 'E_OBJECT_CORRUPT', `dirtree ${dirtree}`);
    const fsck = runCli(['fsck', '--repo', repo]);
    expect(fsck.exitCode).toBe(3);
    expect(fsck.stdout).toContain(`corrupt dirtree ${dirtree}`);
  });

  it(`a default${mode === 'bare' ? ' (hardlink)' : ''} checkout exits 3 naming a file object that is missing`, () => {
    const { repo, file } = freshRepo();
    rmSync(objectFile(repo, file, 'file', mode === 'archive'));
    expectArborError(
      runCli(['checkout', '--repo', repo, 'os/main', join(tmp.path, `co-${count}`)]),
      3,
      'E_OBJECT_MISSING',
      `file ${file} is missing`,
    );
  });

  it('a --copy checkout exits 3 for a corrupted file too large to read in one piece', () => {
    const big = join(tmp.path, `big-tree-${++count}`);
    mkdirSync(big);
    writeLargeFile(join(big, 'large.bin'), WHOLE_FILE_LIMIT + 4097);
    const repo = initRepo(join(tmp.path, `repo-${count}`), mode);
    arbor('commit', '--repo', repo, '-b', 'os/main', '--tree', `dir=${big}`);
    const rows = JSON.parse(arbor('ls', '--json', '--repo', repo, 'os/main')) as { path: string; checksum: string }[];
    const file = rows.find((r) => r.path === '/large.bin')?.checksum as string;
    flipByte(objectFile(repo, file, 'file', mode === 'archive'), mode === 'archive' ? -1 : 1 << 20);
    expectArborError(
      runCli(['checkout', '--copy', '--repo', repo, 'os/main', join(tmp.path, `co-${count}`)]),
      3,
      'E_OBJECT_CORRUPT',
      `file ${file} is corrupt`,
    );
  });

  it('a ref pointing at a missing commit passes a plain listing but fails refs --verify with exit 3', () => {
    const { repo, commit } = freshRepo();
    rmSync(objectFile(repo, commit, 'commit'));
    expect(runCli(['refs', '--repo', repo])).toMatchObject({ exitCode: 0, stdout: 'os/main\n' });
    expectArborError(
      runCli(['refs', '--verify', '--repo', repo]),
      3,
      'E_COMMIT_MISSING',
      `commit ${commit} is missing`,
    );
    expectArborError(runCli(['log', '--repo', repo, 'os/main']), 3, 'E_COMMIT_MISSING', commit);
  });
});

describe('repositories and destinations that cannot be used', () => {
  const tmp = useTempDir('arbor-bad-repo-');
  let repo: string;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    initRepo(repo, 'bare-user');
    writeTree(join(tmp.path, 'tree'), { 'a.txt': 'a\n' });
    arbor('commit', '--repo', repo, '-b', 'main', '--tree', `dir=${join(tmp.path, 'tree')}`);
  });

  it.each([
    ['log', ['log', 'nothing']],
    ['show', ['show', 'nothing']],
    ['ls', ['ls', 'nothing']],
    ['cat', ['cat', 'nothing', '/a.txt']],
    ['checkout', ['checkout', 'nothing', '/nonexistent/never-written']],
    ['diff', ['diff', 'main', 'nothing']],
  ])('%s exits 1 naming a ref that does not exist', (_name, args) => {
    expectArborError(runCli([...args, '--repo', repo]), 1, 'E_REF_NOT_FOUND', "'nothing' is not a ref or a commit");
  });

  it('exits 1 with E_REPO_NOT_FOUND for a path without a repository', () => {
    expectArborError(
      runCli(['log', '--repo', join(tmp.path, 'nowhere'), 'main']),
      1,
      'E_REPO_NOT_FOUND',
      `'${join(tmp.path, 'nowhere')}'`,
    );
  });

  it.each([
    ['refs', ['refs']],
    ['log', ['log', 'main']],
    ['fsck', ['fsck']],
    ['commit', ['commit', '-b', 'main', '--tree', 'dir=/nonexistent']],
  ])('%s exits 1 with E_REPO_FORMAT for a repository of format version 3', (_name, args) => {
    const future = join(tmp.path, 'future');
    rmSync(future, { recursive: true, force: true });
    initRepo(future, 'bare-user');
    const config = join(future, 'config');
    writeFileSync(config, readFileSync(config, 'utf8').replace('format-version=2', 'format-version=3'));
    expectArborError(runCli([...args, '--repo', future]), 1, 'E_REPO_FORMAT', `'${future}' has format version 3`);
  });

  it('refuses a format version 1 repository with a hint to re-create it', () => {
    const old = join(tmp.path, 'old');
    rmSync(old, { recursive: true, force: true });
    initRepo(old, 'bare-user');
    const config = join(old, 'config');
    writeFileSync(config, readFileSync(config, 'utf8').replace('format-version=2', 'format-version=1'));
    const result = runCli(['refs', '--repo', old]);
    expectArborError(result, 1, 'E_REPO_FORMAT', `'${old}' has format version 1`);
    expect(result.stderr).toMatch(/older Arbor.*re-create it/);
  });

  it('checkout exits 2 for a non-empty DEST without --union and leaves its files alone', () => {
    const dest = join(tmp.path, 'busy');
    writeTree(dest, { 'keep.txt': 'mine\n' });
    expectArborError(
      runCli(['checkout', '--repo', repo, 'main', dest]),
      2,
      'E_CHECKOUT_NOT_EMPTY',
      `'${dest}' is not empty`,
    );
    expect(readFileSync(join(dest, 'keep.txt'), 'utf8')).toBe('mine\n');
    expect(readdirSync(dest)).toEqual(['keep.txt']);
  });

  it('checkout exits 2 when DEST is a file', () => {
    const dest = join(tmp.path, 'a-file');
    writeFileSync(dest, 'x');
    expectArborError(
      runCli(['checkout', '--repo', repo, 'main', dest]),
      2,
      'E_CHECKOUT_TARGET',
      `'${dest}' exists and is not a directory`,
    );
  });

  it('checkout exits 2 for --hardlink from an archive repository and for --hardlink with --copy', () => {
    const archive = initRepo(join(tmp.path, 'archive'), 'archive');
    arbor('commit', '--repo', archive, '-b', 'main', '--tree', `dir=${join(tmp.path, 'tree')}`);
    expectArborError(
      runCli(['checkout', '--hardlink', '--repo', archive, 'main', join(tmp.path, 'co-h')]),
      2,
      'E_CHECKOUT_HARDLINK',
      'archive',
    );
    expectArborError(
      runCli(['checkout', '--hardlink', '--copy', '--repo', repo, 'main', join(tmp.path, 'co-hc')]),
      2,
      'E_USAGE',
      '--hardlink and --copy',
    );
  });

  it('checkout exits 1 naming a --subpath the commit lacks', () => {
    expectArborError(
      runCli(['checkout', '--repo', repo, '--subpath', '/no/such', 'main', join(tmp.path, 'co-sub')]),
      1,
      'E_PATH_NOT_FOUND',
      "'/no'",
    );
  });

  it('init exits 2 for an unknown mode and for a repository of another mode', () => {
    expectArborError(runCli(['init', '--repo', join(tmp.path, 'new'), '--mode', 'zip']), 2, 'E_USAGE', "'zip'");
    expectArborError(runCli(['init', '--repo', repo, '--mode', 'archive']), 2, 'E_REPO_EXISTS', 'bare-user');
  });
});

describe('command lines that do not parse', () => {
  it.each([
    ['an unknown flag', ['log', '--frobnicate', 'main'], '--frobnicate'],
    ['an unknown command', ['frobnicate'], 'frobnicate'],
    ['a missing required option', ['commit', '--tree', 'dir=/'], '-b,--branch'],
    ['a missing argument', ['rev-parse'], 'rev-parse'],
  ])('exit 2 for %s, with the message on stderr and nothing on stdout', (_what, args, mention) => {
    const result = runCli(args);
    expect(result).toMatchObject({ exitCode: 2, stdout: '' });
    expect(result.stderr).toContain(mention);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
