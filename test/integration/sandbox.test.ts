// Scriptlets and postprocess scripts of real packages (built with rpmbuild, a static busybox as the
// tree's /bin/sh) run in the bubblewrap sandbox: what they change lands in the tree, the store's
// objects and the host stay untouched, there is no network, and the order of scriptlets and
// triggers equals what the real rpm runs for the same packages.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  copyFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import {
  type Checksum,
  Repo,
  type Transaction,
  TreeEditor,
  checkoutCommit,
  encodeCommit,
  fsckRepo,
  lookupPath,
} from '../../src/repo/index.js';
import { importRpm, loadOwnerMap, readRpmHead } from '../../src/rpm-compose/index.js';
import {
  type ComposePackage,
  type ScriptletReport,
  runPostprocessScripts,
  runScriptlets,
} from '../../src/rpm-compose/scriptlets.js';
import { SandboxStepError, runInTree } from '../../src/rpm-compose/sandbox.js';
import { assembleTree } from '../../src/rpm-compose/assemble.js';
import { IS_ROOT } from '../support/cli.js';
import { HAVE_RPMBUILD, type PackageDef, buildPackages } from '../support/rpmgen.js';
import { useTempDir } from '../support/temp.js';

const BUSYBOX = '/bin/busybox';
const HAVE_SANDBOX = IS_ROOT && spawnSync('bwrap', ['--version']).status === 0 && existsSync(BUSYBOX);

/** The tree's shell: a static busybox (its sh runs applets without links to them). */
const SHELL: PackageDef = {
  name: 'shell',
  files: { '/bin/busybox': { copyOf: BUSYBOX, mode: 0o755 }, '/bin/sh': { symlink: 'busybox' } },
};

/** Scriptlets that change the tree in every way the upper layer can express. */
const EFFECTS: PackageDef = {
  name: 'effects',
  requires: ['shell'],
  files: {
    '/etc/effects.conf': 'original\n',
    '/usr/share/effects/gone': 'gone\n',
    '/usr/share/effects/mode': 'mode\n',
    '/usr/share/effects/dir/old': 'old\n',
    '/usr/share/effects/becomes-file/x': 'x\n',
    '/var/tmp': { dir: true, mode: 0o1777 },
  },
  scripts: {
    // The checkout links the store's objects: before any write, the file has the object's link count.
    pre: 'echo "pre $*" > /usr/share/effects/pre-ran\nstat -c %h /etc/effects.conf > /usr/share/effects/links',
    post: [
      'echo appended >> /etc/effects.conf',
      'rm /usr/share/effects/gone',
      'chmod 0600 /usr/share/effects/mode && chown 123:456 /usr/share/effects/mode',
      'mkdir -p /var/lib/effects/new && echo new > /var/lib/effects/new/file',
      'ln -s effects.conf /etc/effects-link',
      'rm -rf /usr/share/effects/dir && mkdir /usr/share/effects/dir && echo fresh > /usr/share/effects/dir/fresh',
      'rm -rf /usr/share/effects/becomes-file && echo file > /usr/share/effects/becomes-file',
      'echo "$*" > /var/lib/effects/args',
      'cat /proc/net/dev > /var/lib/effects/net',
      'readlink /proc/$$/exe > /var/lib/effects/shell',
      `if [ -e '${process.cwd()}' ]; then echo visible; else echo hidden; fi > /var/lib/effects/host`,
      'dd if=/dev/zero of=/var/lib/effects/big bs=1048576 count=5 2>/dev/null',
      'mkfifo /var/lib/effects/fifo',
      'echo probe > /arbor-sandbox-probe',
      'echo scratch > /tmp/scratch && echo scratch > /var/tmp/scratch',
    ].join('\n'),
    posttrans: 'echo "posttrans $*" > /var/lib/effects/posttrans',
  },
};

const BROKEN: PackageDef = {
  name: 'broken',
  requires: ['shell'],
  scripts: { post: 'echo "about to fail"\necho "on stderr" >&2\nexit 3' },
};
const LUA: PackageDef = { name: 'luapost', extra: '%post -p <lua>\nprint("hi")' };
const NO_INTERPRETER: PackageDef = { name: 'nointerp', extra: '%post -p /usr/bin/python3-absent\nprint(1)' };

// The packages of the order check: logging every scriptlet, package trigger and file trigger.
// File triggers log no arguments: rpm 4.18 (here) passes them only "0", rpm 4.20 "1 1".
const log = (what: string): string => `echo "${what} $*" >> /order`;
const logTrigger = (what: string): string => `echo "${what}" >> /order; while read p; do echo "  $p" >> /order; done`;
const ORDER: PackageDef[] = [
  {
    name: 'ord-bb',
    files: { '/usr/lib/bb.txt': 'bb\n' },
    scripts: { pre: log('bb pre'), post: log('bb post'), posttrans: log('bb posttrans') },
    extra: [
      `%filetriggerin -- /usr/lib\n${logTrigger('bb filetriggerin /usr/lib')}`,
      `%filetriggerin -P 100 -- /usr/share\n${logTrigger('bb filetriggerin-low /usr/share')}`,
      `%transfiletriggerin -- /usr/lib\n${logTrigger('bb transfiletriggerin /usr/lib')}`,
      `%triggerin -- ord-a\n${log('bb triggerin ord-a')}`,
      `%triggerprein -- ord-b\n${log('bb triggerprein ord-b')}`,
    ].join('\n'),
  },
  {
    name: 'ord-a',
    files: { '/usr/lib/a.so': 'a\n', '/usr/share/a.txt': 'a\n' },
    scripts: { pre: log('a pre'), post: log('a post'), posttrans: log('a posttrans') },
    extra: [
      `%triggerin -- ord-bb\n${log('a triggerin ord-bb')}`,
      `%filetriggerin -- /usr/lib/bb\n${logTrigger('a filetriggerin /usr/lib/bb')}`,
    ].join('\n'),
  },
  {
    name: 'ord-b',
    version: '2',
    files: { '/usr/lib/b.so': 'b\n' },
    scripts: { pre: log('b pre'), post: log('b post') },
  },
  {
    name: 'ord-c',
    files: { '/usr/lib/c.so': 'c\n', '/usr/lib/cdir/inner': 'inner\n' },
    extra: [
      `%filetriggerin -- /usr/lib\n${logTrigger('c filetriggerin /usr/lib')}`,
      `%transfiletriggerin -- /usr/lib\n${logTrigger('c transfiletriggerin /usr/lib')}`,
      // One script on two names, both installed before: rpm runs it once.
      `%triggerin -- ord-a, ord-b\n${log('c triggerin ord-a or ord-b')}`,
      `%triggerin -- ord-b < 2\n${log('c triggerin old ord-b')}`,
    ].join('\n'),
  },
];

describe.skipIf(!HAVE_RPMBUILD || !HAVE_SANDBOX)('scriptlets and postprocess scripts in the sandbox', () => {
  const tmp = useTempDir('arbor-sandbox-');
  let repo: Repo;
  const built = new Map<string, { path: string; nevra: string; commit: Checksum; pkg: ComposePackage['pkg'] }>();
  let composes = 0;

  beforeAll(async () => {
    const defs = [SHELL, EFFECTS, BROKEN, LUA, NO_INTERPRETER, ...ORDER];
    const paths = buildPackages(join(tmp.path, 'rpms'), defs);
    repo = Repo.init(join(tmp.path, 'repo'), 'bare');
    for (const [i, path] of paths.entries()) {
      const { pkg } = await readRpmHead(path);
      const { commit } = await importRpm(repo, path, { owners: loadOwnerMap() });
      built.set(defs[i]!.name, { path, nevra: `${pkg.name}-${pkg.version}-${pkg.release}.${pkg.arch}`, commit, pkg });
    }
  });
  afterAll(() => repo?.close());

  /** Assembles the packages, lets `work` edit the tree, commits it and checks it out (copied) for reading. */
  async function compose<T>(
    names: readonly string[],
    work: (tx: Transaction, edit: TreeEditor, packages: ComposePackage[]) => Promise<T>,
  ): Promise<{ result: T; dir: string }> {
    const packages = names.map((n) => built.get(n)!);
    const tx = repo.beginTransaction();
    try {
      const assembled = assembleTree(
        tx,
        packages.map((p) => ({ nevra: p.nevra, commit: p.commit })),
      );
      const edit = new TreeEditor(tx, assembled);
      const result = await work(
        tx,
        edit,
        packages.map((p) => ({ nevra: p.nevra, pkg: p.pkg })),
      );
      const root = edit.write();
      const ref = `test/compose-${++composes}`;
      const commit = tx.writeMetadata(
        'commit',
        encodeCommit({
          parent: null,
          timestamp: 0,
          subject: ref,
          body: '',
          rootTree: root.tree,
          rootMeta: root.meta,
          metadata: new Map(),
        }),
      );
      tx.commit([{ name: ref, checksum: commit }]);
      const dir = join(tmp.path, ref.replace('/', '-'));
      await checkoutCommit(repo, commit, dir, { mode: 'copy' });
      return { result, dir };
    } catch (error) {
      tx.abort();
      throw error;
    }
  }

  it('applies what %pre, %post and %posttrans change and leaves the store objects as they were', async () => {
    const originalConf = lookupPath(repo, built.get('effects')!.commit, '/etc/effects.conf') as {
      kind: 'file';
      checksum: Checksum;
    };
    const originalMode = lookupPath(repo, built.get('effects')!.commit, '/usr/share/effects/mode') as {
      kind: 'file';
      checksum: Checksum;
    };
    const { result, dir } = await compose(['shell', 'effects'], (tx, edit, packages) =>
      runScriptlets(tx, edit, packages),
    );
    expect(result).toEqual<ScriptletReport>({
      ran: [
        { nevra: 'effects-1-1.noarch', scriptlet: '%pre' },
        { nevra: 'effects-1-1.noarch', scriptlet: '%post' },
        { nevra: 'effects-1-1.noarch', scriptlet: '%posttrans' },
      ],
      skipped: [],
      ignored: [],
    });
    const read = (path: string): string => readFileSync(join(dir, path), 'utf8');
    expect(read('usr/share/effects/pre-ran')).toBe('pre 1\n');
    expect(Number(read('usr/share/effects/links'))).toBeGreaterThan(1);
    expect(read('etc/effects.conf')).toBe('original\nappended\n');
    expect(existsSync(join(dir, 'usr/share/effects/gone'))).toBe(false);
    const mode = lstatSync(join(dir, 'usr/share/effects/mode'));
    expect({ mode: mode.mode & 0o7777, uid: mode.uid, gid: mode.gid }).toEqual({ mode: 0o600, uid: 123, gid: 456 });
    expect(read('var/lib/effects/new/file')).toBe('new\n');
    expect(readlinkSync(join(dir, 'etc/effects-link'))).toBe('effects.conf');
    expect(readdirSync(join(dir, 'usr/share/effects/dir'))).toEqual(['fresh']);
    expect(read('usr/share/effects/becomes-file')).toBe('file\n');
    expect(read('var/lib/effects/args')).toBe('1\n');
    expect(lstatSync(join(dir, 'var/lib/effects/big')).size).toBe(5 * 1024 * 1024);
    expect(lstatSync(join(dir, 'var/lib/effects/fifo')).isFIFO()).toBe(true);
    expect(read('var/lib/effects/posttrans')).toBe('posttrans 1\n');
    // The tree's own shell ran, saw nothing of the host, and had no network but loopback.
    expect(read('var/lib/effects/shell')).toBe('/bin/busybox\n');
    expect(read('var/lib/effects/host')).toBe('hidden\n');
    expect(
      read('var/lib/effects/net')
        .split('\n')
        .filter((l) => l.includes(':'))
        .map((l) => l.split(':')[0]!.trim()),
    ).toEqual(['lo']);
    // Writes to / went into the tree, not the host; /tmp was a tmpfs; no mount point was left behind.
    expect(read('arbor-sandbox-probe')).toBe('probe\n');
    expect(existsSync('/arbor-sandbox-probe')).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['arbor-sandbox-probe', 'bin', 'etc', 'usr', 'var']);
    expect(readdirSync(join(dir, 'var/tmp'))).toEqual([]);
    // The hardlinked objects the scripts wrote through are unchanged (content and metadata).
    expect(repo.loadFile(originalConf.checksum).content.toString()).toBe('original\n');
    const object = lstatSync(repo.objectPath(originalMode.checksum, 'file'));
    expect({ mode: object.mode & 0o7777, uid: object.uid }).toEqual({ mode: 0o644, uid: 0 });
    expect(fsckRepo(repo)).toMatchObject({ corrupt: [], missing: [] });
  });

  it('with noScripts runs nothing and lists every scriptlet as skipped', async () => {
    const { result, dir } = await compose(['shell', 'effects'], (tx, edit, packages) =>
      runScriptlets(tx, edit, packages, { noScripts: true }),
    );
    expect(result.ran).toEqual([]);
    expect(result.skipped.map((s) => s.scriptlet)).toEqual(['%pre', '%post', '%posttrans']);
    expect(readFileSync(join(dir, 'etc/effects.conf'), 'utf8')).toBe('original\n');
  });

  it('fails on a broken %post naming the package, the scriptlet, the status and the output', async () => {
    const error = await compose(['shell', 'broken'], (tx, edit, packages) => runScriptlets(tx, edit, packages)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SandboxStepError);
    expect(error).toMatchObject({ code: 'E_SCRIPTLET_FAILED' });
    const message = (error as Error).message;
    expect(message).toMatch(/^%post of 'broken-1-1\.noarch' failed with exit status 3; its output:\n/);
    expect(message).toContain('  | about to fail\n  | on stderr');
  });

  it.each([
    ['luapost', 'E_SCRIPTLET_UNSUPPORTED', /%post of 'luapost-1-1\.noarch' is a Lua scriptlet/],
    [
      'nointerp',
      'E_SANDBOX_INTERPRETER',
      /%post of 'nointerp-1-1\.noarch' runs '\/usr\/bin\/python3-absent', which is not in the tree/,
    ],
  ])('refuses %s before running anything (%s)', async (name, code, message) => {
    const error = await compose(['shell', 'effects', name], (tx, edit, packages) =>
      runScriptlets(tx, edit, packages),
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code, message: expect.stringMatching(message) });
  });

  it('runs scriptlets and triggers in the order, and with the arguments and input, that rpm does', async () => {
    const names = ['shell', ...ORDER.map((d) => d.name)];
    const { dir } = await compose(names, (tx, edit, packages) => runScriptlets(tx, edit, packages));
    // The same packages installed by rpm into a root that has busybox as /bin/sh beforehand.
    const root = join(tmp.path, 'rpmroot');
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
    symlinkSync('busybox', join(root, 'bin/sh'));
    const rpm = (...args: string[]): void => {
      const r = spawnSync('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', ...args], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`rpm ${args.join(' ')}: ${r.stderr}`);
    };
    rpm('--initdb');
    rpm('-i', '--nodeps', '--nosignature', '--noorder', ...names.map((n) => built.get(n)!.path));
    const theirs = readFileSync(join(root, 'order'), 'utf8');
    expect(readFileSync(join(dir, 'order'), 'utf8')).toBe(theirs);
    expect(theirs).toContain('c filetriggerin /usr/lib\n  /usr/lib/bb.txt\n  /usr/lib/a.so\n  /usr/lib/b.so\n');
    expect(theirs).toContain('c triggerin ord-a or ord-b 1 1\n');
    expect(theirs).not.toContain('old ord-b');
  });

  it('runs inline postprocess scripts, then the postprocess-script file, each by its #! line', async () => {
    const scriptFile = join(tmp.path, 'post.sh');
    writeFileSync(
      scriptFile,
      '#!/bin/sh\necho "from the file" > /usr/share/pp-file\ncat /usr/share/pp-inline >> /usr/share/pp-file\n',
    );
    const { result, dir } = await compose(['shell'], (tx, edit) =>
      runPostprocessScripts(tx, edit, {
        postprocess: [
          '#!/bin/sh\nmkdir -p /usr/share && echo inline > /usr/share/pp-inline',
          'echo "no #! line" > /usr/share/pp-plain',
        ],
        postprocessScript: scriptFile,
      }),
    );
    expect(result).toEqual(['postprocess script 1', 'postprocess script 2', "postprocess-script 'post.sh'"]);
    expect(readFileSync(join(dir, 'usr/share/pp-file'), 'utf8')).toBe('from the file\ninline\n');
    expect(readFileSync(join(dir, 'usr/share/pp-plain'), 'utf8')).toBe('no #! line\n');
  });

  it('fails a postprocess script that exits non-zero with E_POSTPROCESS_FAILED', async () => {
    const error = await compose(['shell'], (tx, edit) =>
      runPostprocessScripts(tx, edit, { postprocess: ['echo nope; exit 4'], postprocessScript: null }),
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'E_POSTPROCESS_FAILED',
      message: expect.stringMatching(/^postprocess script 1 failed with exit status 4; its output:\n {2}\| nope$/),
    });
  });

  it('kills a step that outlives its timeout', async () => {
    const step = { label: 'sleeper', argv: ['/bin/sh', '-c', 'sleep 30'], failureCode: 'E_TEST_FAILED' } as const;
    const started = Date.now();
    const error = await compose(['shell'], (tx, edit) => runInTree(tx, edit, [step], { timeoutMs: 300 })).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'E_TEST_FAILED',
      message: expect.stringMatching(/^sleeper did not finish within 300 ms and was killed/),
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
