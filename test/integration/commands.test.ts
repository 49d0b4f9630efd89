// The everyday commands through the built CLI: commit --skip-if-unchanged, diff, log, show, ls,
// cat, rev-parse revision syntax, refs, reset and prune figures, and that every --json parses.
import { chmodSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Checksum, hashBytes } from '../../src/common/hash.js';
import { encodeCommit } from '../../src/repo/objects/index.js';
import { ROOT, arbor, runCli } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import { expectArborError, initRepo, listObjectFiles, writeRawObject } from '../support/repo-surgery.js';
import { writeTree } from '../support/tree.js';

const commit = (repo: string, branch: string, dir: string, ...flags: string[]): string =>
  arbor('commit', '--repo', repo, '-b', branch, '--timestamp', '1700000000', '--tree', `dir=${dir}`, ...flags);

describe('commit --skip-if-unchanged', () => {
  const tmp = useTempDir('arbor-skip-');
  let repo: string;
  let tree: string;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    tree = join(tmp.path, 'tree');
    initRepo(repo, 'bare-user');
    writeTree(tree, { 'a.txt': 'a\n', 'sub/b.txt': 'b\n' });
  });

  it('prints the parent and makes no commit when the tree is unchanged, and commits once it changes', () => {
    const first = commit(repo, 'main', tree, '-s', 'first');
    expect(commit(repo, 'main', tree, '--skip-if-unchanged', '-s', 'again')).toBe(first);
    const json = JSON.parse(
      arbor('commit', '--json', '--repo', repo, '-b', 'main', '--skip-if-unchanged', '--tree', `dir=${tree}`),
    ) as { commit: string; skipped: boolean };
    expect(json).toMatchObject({ commit: first, skipped: true });
    expect(arbor('rev-parse', '--repo', repo, 'main')).toBe(first);
    expect((JSON.parse(arbor('log', '--json', '--repo', repo, 'main')) as { commits: unknown[] }).commits).toHaveLength(
      1,
    );

    writeFileSync(join(tree, 'a.txt'), 'changed\n');
    const second = commit(repo, 'main', tree, '--skip-if-unchanged');
    expect(second).not.toBe(first);
    expect(arbor('rev-parse', '--repo', repo, 'main^')).toBe(first);
  });

  it('without the flag records an unchanged tree as a new commit', () => {
    const head = arbor('rev-parse', '--repo', repo, 'main');
    const next = commit(repo, 'main', tree, '-s', 'same tree, new commit');
    expect(next).not.toBe(head);
    expect(arbor('rev-parse', '--repo', repo, 'main^')).toBe(head);
  });
});

describe('diff', () => {
  const tmp = useTempDir('arbor-diff-');
  let repo: string;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    initRepo(repo, 'bare-user');
    const v1 = join(tmp.path, 'v1');
    const v2 = join(tmp.path, 'v2');
    writeTree(v1, {
      'keep.txt': 'k\n',
      'mod.txt': 'a\n',
      'del.txt': 'd\n',
      type: 'file\n',
      'dir/gone/f': 'f\n',
      'dir/stay': 's\n',
      'dir2file/x': 'x\n',
      'chmod.sh': 'c\n',
    });
    writeTree(v2, {
      'keep.txt': 'k\n',
      'mod.txt': 'bb\n',
      'add.txt': 'new\n',
      'type/inner.txt': 'i\n',
      'dir/stay': 's\n',
      dir2file: 'now a file\n',
      'chmod.sh': 'c\n',
    });
    chmodSync(join(v1, 'dir'), 0o755);
    chmodSync(join(v2, 'dir'), 0o750);
    chmodSync(join(v1, 'chmod.sh'), 0o644);
    chmodSync(join(v2, 'chmod.sh'), 0o755);
    commit(repo, 'v1', v1);
    commit(repo, 'v2', v2);
  });

  it('lists added, modified and deleted paths; a type change is a deletion then an addition', () => {
    expect(arbor('diff', '--repo', repo, 'v1', 'v2').split('\n')).toEqual([
      'A    /add.txt',
      'M    /chmod.sh',
      'D    /del.txt',
      'M    /dir',
      'D    /dir/gone',
      'D    /dir/gone/f',
      'D    /dir2file',
      'D    /dir2file/x',
      'A    /dir2file',
      'M    /mod.txt',
      'D    /type',
      'A    /type',
      'A    /type/inner.txt',
    ]);
  });

  it('--stat counts entries and content bytes on each side', () => {
    // In: add.txt 4 + dir2file 11 + type/inner.txt 2 + mod.txt 3 + chmod.sh 2; out: del.txt 2, f 2, x 2, type 5, mod.txt 2, chmod.sh 2.
    expect(arbor('diff', '--stat', '--repo', repo, 'v1', 'v2')).toBe(
      '4 added, 3 modified, 6 deleted; 22 B in, 15 B out',
    );
    expect(JSON.parse(arbor('diff', '--stat', '--json', '--repo', repo, 'v1', 'v2'))).toEqual({
      added: 4,
      modified: 3,
      deleted: 6,
      bytesAdded: 22,
      bytesRemoved: 15,
    });
  });

  it('prints nothing for identical commits and reverses statuses when swapped', () => {
    expect(runCli(['diff', '--repo', repo, 'v2', 'v2'])).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    const back = arbor('diff', '--repo', repo, 'v2', 'v1').split('\n');
    expect(back).toContain('D    /add.txt');
    expect(back).toContain('A    /del.txt');
  });
});

describe('log, show, ls, cat and revision syntax', () => {
  const tmp = useTempDir('arbor-rev-');
  let repo: string;
  let tree: string;
  const ids: string[] = [];
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    tree = join(tmp.path, 'tree');
    initRepo(repo, 'bare-user');
    writeTree(tree, { 'etc/motd': 'hello\n', 'bin/tool': '#!/bin/sh\n' });
    symlinkSync('../etc/motd', join(tree, 'bin/motd-link'));
    // Explicit modes: the listings below must not depend on the umask.
    for (const [path, mode] of [
      ['', 0o755],
      ['bin', 0o755],
      ['etc', 0o755],
      ['bin/tool', 0o644],
      ['etc/motd', 0o644],
    ] as const)
      chmodSync(join(tree, path), mode);
    for (const [i, subject] of ['one', 'two', 'three'].entries()) {
      writeFileSync(join(tree, 'etc/version'), `${i + 1}\n`);
      ids.push(
        arbor(
          'commit',
          '--repo',
          repo,
          '-b',
          'os/main',
          '-s',
          subject,
          '--body',
          `body of ${subject}\nsecond line`,
          '--add-metadata',
          `version=${i + 1}.0`,
          '--timestamp',
          String(1700000000 + i * 3600),
          '--tree',
          `dir=${tree}`,
        ),
      );
    }
  });

  it.each([
    ['os/main', 2],
    ['os/main^', 1],
    ['os/main^^', 0],
    ['os/main~2', 0],
    ['os/main~1^', 0],
    ['os/main~0', 2],
  ])('rev-parse resolves %s', (rev, index) => {
    expect(arbor('rev-parse', '--repo', repo, rev)).toBe(ids[index]);
  });

  it('rev-parse resolves a full id and a unique prefix, with suffixes', () => {
    const head = ids[2] as string;
    expect(arbor('rev-parse', '--repo', repo, head)).toBe(head);
    expect(arbor('rev-parse', '--repo', repo, head.slice(0, 12))).toBe(head);
    expect(arbor('rev-parse', '--repo', repo, `${head.slice(0, 12)}~2`)).toBe(ids[0]);
  });

  it('rev-parse exits 1 past the first commit, naming it', () => {
    expectArborError(
      runCli(['rev-parse', '--repo', repo, 'os/main~3']),
      1,
      'E_REV_NOT_FOUND',
      ids[0] as string,
      "'os/main~3'",
    );
  });

  it('rev-parse exits 1 for an unknown ref and for a prefix shorter than 4 digits', () => {
    expectArborError(runCli(['rev-parse', '--repo', repo, 'os/nope']), 1, 'E_REF_NOT_FOUND', "'os/nope'");
    expectArborError(runCli(['rev-parse', '--repo', repo, (ids[0] as string).slice(0, 3)]), 1, 'E_REF_NOT_FOUND');
  });

  it('rev-parse exits 2 for a prefix several commits share, naming them, and resolves a longer one', () => {
    // Search commit objects (varying only the timestamp) until two share their first 4 hex digits.
    const c = JSON.parse(arbor('show', '--json', '--repo', repo, 'os/main')) as {
      rootTree: Checksum;
      rootMeta: Checksum;
    };
    const seen = new Map<string, Buffer>();
    let pair: [Buffer, Buffer] | undefined;
    for (let t = 0; !pair; t++) {
      const bytes = encodeCommit({
        parent: null,
        timestamp: t,
        subject: 'twin',
        body: '',
        rootTree: c.rootTree,
        rootMeta: c.rootMeta,
        metadata: new Map(),
      });
      const prefix = hashBytes(bytes).slice(0, 4);
      const other = seen.get(prefix);
      if (other) pair = [other, bytes];
      else seen.set(prefix, bytes);
    }
    const a = writeRawObject(repo, 'commit', pair[0]);
    const b = writeRawObject(repo, 'commit', pair[1]);
    const result = runCli(['rev-parse', '--repo', repo, a.slice(0, 4)]);
    expectArborError(result, 2, 'E_REV_AMBIGUOUS', a, b);
    expect(result.stderr).toMatch(/^hint: /m);
    expect(arbor('rev-parse', '--repo', repo, a.slice(0, 16))).toBe(a);
  });

  it('log lists the history newest first with versions, subjects and bodies; -n limits it', () => {
    const text = arbor('log', '--repo', repo, 'os/main');
    expect(text.match(/^commit [0-9a-f]{64}$/gm)).toEqual([...ids].reverse().map((id) => `commit ${id}`));
    expect(text).toContain('Version: 3.0');
    expect(text).toContain('    body of three\n    second line');
    expect(text).toContain(`Date:    ${new Date(1700000000 * 1000).toISOString()}`);
    expect(arbor('log', '--repo', repo, '-n', '1', 'os/main').match(/^commit /gm)).toHaveLength(1);
    const json = JSON.parse(arbor('log', '--json', '--repo', repo, 'os/main^')) as {
      commits: { checksum: string; parent: string | null; subject: string; version: string }[];
      truncatedAt: null;
    };
    expect(json.commits.map((c) => [c.checksum, c.parent, c.subject, c.version])).toEqual([
      [ids[1], ids[0], 'two', '2.0'],
      [ids[0], null, 'one', '1.0'],
    ]);
    expect(json.truncatedAt).toBeNull();
  });

  it('show prints a commit with its parent, trees and metadata', () => {
    const json = JSON.parse(arbor('show', '--json', '--repo', repo, 'os/main^')) as Record<string, unknown>;
    expect(json).toMatchObject({
      commit: ids[1],
      parent: ids[0],
      timestamp: 1700003600,
      subject: 'two',
      body: 'body of two\nsecond line',
      metadata: { version: '2.0' },
      detachedMetadata: {},
    });
    expect(json.rootTree).toMatch(/^[0-9a-f]{64}$/);
    const text = arbor('show', '--repo', repo, 'os/main^');
    expect(text).toContain(`commit ${ids[1]}\nParent:  ${ids[0]}\n`);
    expect(text).toContain('Metadata version: "2.0"');
  });

  it('ls lists one directory, or everything with -R, with types, modes, owners, sizes and link targets', () => {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const line = (type: string, size: number, path: string) =>
      `${type} ${String(uid).padStart(5)} ${String(gid).padStart(5)} ${String(size).padStart(10)} ${path}`;
    expect(arbor('ls', '--repo', repo, 'os/main', '/bin').split('\n')).toEqual([
      line('d0755', 0, '/bin'),
      line('l0777', 0, '/bin/motd-link -> ../etc/motd'),
      line('-0644', 10, '/bin/tool'),
    ]);
    const rows = JSON.parse(arbor('ls', '-R', '--json', '--repo', repo, 'os/main')) as {
      path: string;
      type: string;
      checksum: string;
    }[];
    expect(rows.map((r) => `${r.type} ${r.path}`)).toEqual([
      'd /',
      'd /bin',
      'l /bin/motd-link',
      '- /bin/tool',
      'd /etc',
      '- /etc/motd',
      '- /etc/version',
    ]);
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.checksum))).toBe(true);
    expect(arbor('ls', '--repo', repo, 'os/main', '/etc/motd')).toBe(line('-0644', 6, '/etc/motd'));
  });

  it('ls exits 1 naming a path the commit lacks', () => {
    expectArborError(
      runCli(['ls', '--repo', repo, 'os/main', '/nope/deeper']),
      1,
      'E_PATH_NOT_FOUND',
      "'/nope'",
      ids[2] as string,
    );
  });

  it('cat prints a file of any commit exactly', () => {
    expect(runCli(['cat', '--repo', repo, 'os/main~1', '/etc/version'])).toMatchObject({
      exitCode: 0,
      stdout: '2\n',
      stderr: '',
    });
    expect(runCli(['cat', '--repo', repo, 'os/main', 'etc/motd']).stdout).toBe('hello\n');
  });

  it.each([
    ['/etc', "'/etc' is a directory"],
    ['/bin/motd-link', "symlink to '../etc/motd'"],
  ])('cat exits 1 for %s, which is not a regular file', (path, message) => {
    expectArborError(runCli(['cat', '--repo', repo, 'os/main', path]), 1, 'E_NOT_A_FILE', message);
  });
});

describe('refs and reset', () => {
  const tmp = useTempDir('arbor-refs-');
  let repo: string;
  let tree: string;
  let first: string;
  let second: string;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    tree = join(tmp.path, 'tree');
    initRepo(repo, 'bare-user');
    writeTree(tree, { f: '1\n' });
    first = commit(repo, 'os/main', tree);
    writeTree(tree, { f: '2\n' });
    second = commit(repo, 'os/main', tree);
  });

  it('--create makes a ref at a revision, listed with --list and by prefix; --delete removes it', () => {
    arbor('refs', '--repo', repo, '--create', 'release/1', 'os/main^');
    expect(arbor('refs', '--repo', repo, '--list')).toBe(`os/main ${second}\nrelease/1 ${first}`);
    expect(arbor('refs', '--repo', repo, 'release/')).toBe('release/1');
    expect(JSON.parse(arbor('refs', '--json', '--repo', repo))).toEqual([
      { name: 'os/main', checksum: second },
      { name: 'release/1', checksum: first },
    ]);
    arbor('refs', '--repo', repo, '--delete', 'release/1');
    expect(arbor('refs', '--repo', repo)).toBe('os/main');
  });

  it('--create refuses an existing ref (exit 1) and an invalid name (exit 2); --delete a missing one (exit 1)', () => {
    expectArborError(runCli(['refs', '--repo', repo, '--create', 'os/main', first]), 1, 'E_REF_EXISTS', "'os/main'");
    expectArborError(
      runCli(['refs', '--repo', repo, '--create', 'bad..name', first]),
      2,
      'E_REF_INVALID',
      "'bad..name'",
    );
    expectArborError(runCli(['refs', '--repo', repo, '--delete', 'no/such']), 1, 'E_REF_NOT_FOUND', "'no/such'");
    expect(arbor('refs', '--repo', repo, '--list')).toBe(`os/main ${second}`);
  });

  it('reset moves a ref back and forth; the history stays', () => {
    arbor('reset', '--repo', repo, 'os/main', 'os/main^');
    expect(arbor('rev-parse', '--repo', repo, 'os/main')).toBe(first);
    arbor('reset', '--repo', repo, 'os/main', second);
    expect(arbor('rev-parse', '--repo', repo, 'os/main')).toBe(second);
    expect(arbor('rev-parse', '--repo', repo, 'os/main^')).toBe(first);
  });

  it('reset refuses an unknown revision with exit 1 and leaves the ref', () => {
    expectArborError(
      runCli(['reset', '--repo', repo, 'os/main', 'nothing/here']),
      1,
      'E_REF_NOT_FOUND',
      "'nothing/here'",
    );
    expect(arbor('rev-parse', '--repo', repo, 'os/main')).toBe(second);
  });
});

describe('prune', () => {
  const tmp = useTempDir('arbor-prune-');
  let repo: string;
  let tree: string;
  let orphanObjects: string[];
  let orphanBytes: number;
  interface PruneJson {
    dryRun: boolean;
    objectsTotal: number;
    objectsDeleted: number;
    bytesFreed: number;
    commitsDeleted: number;
  }
  const prune = (...flags: string[]): PruneJson =>
    JSON.parse(arbor('prune', '--json', '--repo', repo, ...flags)) as PruneJson;

  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    tree = join(tmp.path, 'tree');
    initRepo(repo, 'bare-user');
    writeTree(tree, { 'kept/a': 'a\n', 'kept/b': 'b\n' });
    commit(repo, 'os/main', tree);
    writeTree(tree, { 'kept/a': 'a2\n' });
    commit(repo, 'os/main', tree);
    // A commit on its own ref whose every object is new; deleting the ref orphans exactly these.
    const before = new Set(listObjectFiles(repo));
    const scratch = join(tmp.path, 'scratch');
    writeTree(scratch, { 'unique/blob.bin': 'x'.repeat(10_000), 'unique/other': 'only here\n' });
    mkdirSync(join(scratch, 'unique/empty-dir'));
    commit(repo, 'scratch', scratch, '--parent', 'none');
    orphanObjects = listObjectFiles(repo).filter((o) => !before.has(o));
    orphanBytes = orphanObjects.reduce((sum, o) => sum + lstatSync(join(repo, 'objects', o)).size, 0);
    arbor('refs', '--repo', repo, '--delete', 'scratch');
  });

  it('keeps every commit (and what it reaches) by default', () => {
    expect(prune('--dry-run')).toMatchObject({ objectsDeleted: 0, bytesFreed: 0, commitsDeleted: 0 });
  });

  it('--refs-only --dry-run reports exactly the unreferenced objects and bytes, deleting nothing', () => {
    const total = listObjectFiles(repo).length;
    expect(orphanObjects.length).toBeGreaterThanOrEqual(5);
    expect(prune('--refs-only', '--dry-run')).toEqual({
      dryRun: true,
      objectsTotal: total,
      objectsDeleted: orphanObjects.length,
      bytesFreed: orphanBytes,
      commitsDeleted: 1,
    });
    expect(listObjectFiles(repo)).toHaveLength(total);
    expect(arbor('prune', '--refs-only', '--dry-run', '--repo', repo)).toMatch(
      new RegExp(`^would delete ${orphanObjects.length} of ${total} objects \\(1 commits\\), .* would be freed$`),
    );
  });

  it('--keep-younger-than spares unreferenced commits newer than the cutoff', () => {
    // The orphan's timestamp is 1700000000 (Nov 2023): older than a day, younger than 1000 weeks.
    expect(prune('--refs-only', '--keep-younger-than', '1000 weeks', '--dry-run').objectsDeleted).toBe(0);
    expect(prune('--refs-only', '--keep-younger-than', '1 day', '--dry-run').objectsDeleted).toBe(orphanObjects.length);
    expectArborError(
      runCli(['prune', '--repo', repo, '--refs-only', '--keep-younger-than', 'soon']),
      2,
      'E_USAGE',
      "'soon'",
    );
  });

  it('--refs-only deletes exactly those objects; fsck stays clean and refs still check out', () => {
    const total = listObjectFiles(repo).length;
    expect(prune('--refs-only')).toEqual({
      dryRun: false,
      objectsTotal: total,
      objectsDeleted: orphanObjects.length,
      bytesFreed: orphanBytes,
      commitsDeleted: 1,
    });
    const left = new Set(listObjectFiles(repo));
    expect(orphanObjects.filter((o) => left.has(o))).toEqual([]);
    expect(left.size).toBe(total - orphanObjects.length);
    expect(runCli(['fsck', '--repo', repo])).toMatchObject({ exitCode: 0 });
    arbor('checkout', '--repo', repo, 'os/main^', join(tmp.path, 'co'));
    expect(prune('--refs-only')).toMatchObject({ objectsDeleted: 0, bytesFreed: 0 });
  });
});

describe('--json output', () => {
  const tmp = useTempDir('arbor-json-');
  let repo: string;
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    initRepo(repo, 'archive');
    const tree = join(tmp.path, 'tree');
    writeTree(tree, { 'a/b': 'b\n', c: 'c\n' });
    commit(repo, 'main', tree);
    writeTree(tree, { 'a/b': 'changed\n' });
    commit(repo, 'main', tree);
  });

  it.each([
    ['log', ['log', 'main']],
    ['show', ['show', 'main']],
    ['ls', ['ls', '-R', 'main']],
    ['refs', ['refs']],
    ['refs --list', ['refs', '--list']],
    ['diff', ['diff', 'main^', 'main']],
    ['diff --stat', ['diff', '--stat', 'main^', 'main']],
    ['fsck', ['fsck']],
    ['prune', ['prune', '--dry-run']],
    ['checkout', ['checkout', 'main', '{tmp}/co']],
    ['commit', ['commit', '-b', 'other', '--tree', 'dir={tmp}/tree']],
  ])('%s --json prints one JSON document and nothing on stderr', (_name, args) => {
    const result = runCli([...args.map((a) => a.replace('{tmp}', tmp.path)), '--json', '--repo', repo]);
    expect(result).toMatchObject({ exitCode: 0, stderr: '' });
    expect(() => JSON.parse(result.stdout)).not.toThrow();
    expect(typeof JSON.parse(result.stdout)).toBe('object');
  });
});

describe('--version', () => {
  it("prints package.json's version", () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(runCli(['--version'])).toMatchObject({ exitCode: 0, stdout: `${version}\n`, stderr: '' });
  });
});
