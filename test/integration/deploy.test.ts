// The deployment commands through the built CLI on real sysroots (issue 6): deploy, status, upgrade
// (local ref and a remote served by nginx), rebase, rollback, undeploy, pin, kargs, config-diff,
// staging, cleanup and retention, kernels in /boot once per content, the /etc 3-way merge, the
// grub2/syslinux/u-boot backends, and bad input that must fail clearly and change nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  type Stats,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statfsSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staticGrubCfg } from '../../src/bootloader/index.js';
import { IS_ROOT, arbor, runCli, sh } from '../support/cli.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { expectArborError } from '../support/repo-surgery.js';
import {
  type Commit,
  type EtcSpec,
  STATEROOT,
  TestSysroot,
  commitRootOwned,
  fileObjectPath,
  writeOsTree,
} from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand } from '../support/tool.js';
import { filledInBeforeAll } from '../support/filled-later.js';

/** /usr/etc of v1: one path per kind of change the merge tests make (ETC_V2, and the admin's edits there). */
const ETC_V1: Record<string, EtcSpec> = {
  hostname: 'host-v1\n', // admin modifies, defaults keep
  motd: 'motd v1\n', // admin keeps, defaults change
  issue: 'issue v1\n', // admin deletes, defaults keep
  'both.conf': 'both v1\n', // both change: conflict
  'gone.conf': 'gone v1\n', // defaults remove
  file2dir: 'a file in v1\n', // defaults: file → directory
  dir2file: { dir: true }, // defaults: directory → file
  'dir2file/a.conf': 'in a directory in v1\n',
  link2file: { link: 'motd' }, // defaults: symlink → file
  file2link: 'a file in v1\n', // defaults: file → symlink
  retyped: 'the admin makes this a symlink\n', // admin: file → symlink
  'app.d': { dir: true }, // admin edits inside, defaults make it a file: conflict at app.d
  'app.d/a.conf': 'a v1\n',
  'app.d/b.conf': 'b v1\n',
  'os-release': { link: '../lib/os-release' },
};
const ETC_V2: Record<string, EtcSpec> = {
  hostname: 'host-v1\n',
  motd: 'motd v2\n',
  issue: 'issue v1\n',
  'both.conf': 'both v2\n',
  file2dir: { dir: true },
  'file2dir/inner.conf': 'inside v2\n',
  dir2file: 'a file in v2\n',
  link2file: 'a file in v2\n',
  file2link: { link: 'hostname' },
  retyped: 'the admin makes this a symlink\n',
  'app.d': 'app.d is a file in v2\n',
  'os-release': { link: '../lib/os-release' },
  'new-in-v2.conf': 'a new default\n',
};

interface Commits {
  v1: Commit; // os/main: kernel K1, ETC_V1
  v2: Commit; // os/next: kernel K1, ETC_V2
  v3: Commit; // os/other: kernel K2, ETC_V2
  v4: Commit; // os/four: kernel K3, ETC_V2
  nokernel: Commit; // os/nokernel
}

const short = (c: Commit, serial = 0): string => `${c.checksum}.${serial}`;

/** Inodes of every regular file object of a bare repository. */
function objectInodes(repo: string): Set<number> {
  const out = new Set<number>();
  for (const prefix of readdirSync(join(repo, 'objects'))) {
    for (const name of readdirSync(join(repo, 'objects', prefix)))
      if (name.endsWith('.file')) out.add(lstatSync(join(repo, 'objects', prefix, name)).ino);
  }
  return out;
}

/** Regular files below `dir` (relative path → lstat). */
function regularFiles(dir: string, rel = ''): Map<string, Stats> {
  const out = new Map<string, Stats>();
  for (const name of readdirSync(join(dir, rel))) {
    const path = rel === '' ? name : `${rel}/${name}`;
    const st = lstatSync(join(dir, path));
    if (st.isDirectory()) for (const [k, v] of regularFiles(dir, path)) out.set(k, v);
    else if (st.isFile()) out.set(path, st);
  }
  return out;
}

/** Every symlink below `dir` whose target is absolute (none may be, in boot/ and arbor/boot.N). */
function absoluteSymlinks(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isSymbolicLink() && readlinkSync(path).startsWith('/')) out.push(path);
    else if (st.isDirectory()) out.push(...absoluteSymlinks(path));
  }
  return out;
}

/** Entry file texts of the current boot set, by file name. */
function entryTexts(s: TestSysroot): Record<string, string> {
  const dir = join(s.bootDir, 'loader', 'entries');
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((name) => [name, readFileSync(join(dir, name), 'utf8')]),
  );
}

const deploymentInodes = (s: TestSysroot): Record<string, number> =>
  Object.fromEntries(
    s
      .deployNames()
      .filter((n) => !n.includes('.origin') && !n.includes('.etc-'))
      .map((n) => [n, lstatSync(join(s.deployDir, n)).ino]),
  );

// Root: the sysroot's repository is bare (root-owned checkouts hardlinked from it), as on a host.
describe.skipIf(!IS_ROOT)('deployment commands on a sysroot', () => {
  const tmp = useTempDir('arbor-deploy-');
  let template: TestSysroot;
  const c = filledInBeforeAll<Commits>();
  let copies = 0;
  /** A copy of the template sysroot (init-fs, os-init and the commits of Commits; nothing deployed). */
  const freshSysroot = (): TestSysroot => {
    const path = join(tmp.path, `sysroot-${copies++}`);
    sh(`cp -a '${template.path}' '${path}'`);
    return new TestSysroot(path);
  };
  const scratch = (): string => mkdtempSync(join(tmp.path, 'scratch-'));

  beforeAll(() => {
    template = TestSysroot.create(join(tmp.path, 'template'));
    const trees = join(tmp.path, 'trees');
    c.v1 = template.commit('os/main', { version: '1', etc: ETC_V1 }, trees);
    c.v2 = template.commit('os/next', { version: '2', etc: ETC_V2 }, trees);
    c.v3 = template.commit('os/other', { version: '3', kernel: 'kernel two\n', etc: ETC_V2 }, trees);
    c.v4 = template.commit(
      'os/four',
      { version: '4', kernel: 'kernel three\n', initramfs: 'initramfs three\n', etc: ETC_V2 },
      trees,
    );
    c.nokernel = template.commit('os/nokernel', { version: '5', kernel: null, etc: ETC_V2 }, trees);
  });

  describe('deploy, status, upgrade, rollback, kargs, rebase and undeploy', () => {
    let s: TestSysroot;
    let bootcsumK1: string;
    beforeAll(() => {
      s = freshSysroot();
    });

    it('deploys the first commit: one entry, kernel in boot/arbor, relative links, /etc copied and /usr hardlinked into the repository', () => {
      const r = s.cli(['admin', 'deploy', '--stateroot', STATEROOT, 'os/main']);
      expect(r).toMatchObject({ exitCode: 0, stderr: '', stdout: `deployed os ${short(c.v1)} (version 1)\n` });
      expect(s.bootSetProblems()).toEqual([]);
      const set = s.readBootSet();
      expect(set.bootversion).toBe(0);
      expect(set.entries).toHaveLength(1);
      const [entry] = set.entries;
      bootcsumK1 = /\/arbor\/boot\.0\/os\/([0-9a-f]{64})\/0$/.exec(entry?.arborArg ?? '')?.[1] ?? '';
      expect(entry).toMatchObject({ fileName: 'arbor-os-0.conf', name: short(c.v1), kargs: [] });
      expect(entry?.entry).toMatchObject({
        title: 'Arbor Test 1 (arbor:0)',
        version: '1',
        sortKey: 'arbor-os',
        linux: `/arbor/os-${bootcsumK1}/vmlinuz`,
        initrd: `/arbor/os-${bootcsumK1}/initramfs.img`,
      });
      expect(s.kernelDirs()).toEqual([`os-${bootcsumK1}`]);
      expect(readFileSync(join(s.bootDir, 'arbor', `os-${bootcsumK1}`, 'vmlinuz'), 'utf8')).toBe(
        'kernel 6.1.0-arbor\n',
      );
      expect(s.deployNames()).toEqual([short(c.v1), `${short(c.v1)}.origin`]);
      expect(readFileSync(join(s.deployDir, `${short(c.v1)}.origin`), 'utf8')).toBe('[origin]\nrefspec=os/main\n');

      // Every link is relative, so the initramfs resolves it below any mount point.
      expect(readlinkSync(join(s.bootDir, 'loader'))).toBe('loader.0');
      expect(readlinkSync(join(s.path, entry?.arborArg ?? ''))).toBe(`../../../deploy/os/deploy/${short(c.v1)}`);
      expect([...absoluteSymlinks(s.bootDir), ...absoluteSymlinks(join(s.path, 'arbor/boot.0'))]).toEqual([]);

      // /etc is a copy (editing it must not rewrite the store); /usr is hardlinks into the store.
      const dir = s.deploymentDir(c.v1.checksum);
      const etc = regularFiles(join(dir, 'etc'));
      expect([...etc.keys()].sort()).toEqual([
        'app.d/a.conf',
        'app.d/b.conf',
        'both.conf',
        'dir2file/a.conf',
        'file2dir',
        'file2link',
        'gone.conf',
        'hostname',
        'issue',
        'motd',
        'retyped',
      ]);
      expect([...etc].filter(([, st]) => st.nlink !== 1).map(([p]) => p)).toEqual([]);
      expect(readlinkSync(join(dir, 'etc/os-release'))).toBe('../lib/os-release');
      const objects = objectInodes(s.repo);
      const usr = regularFiles(join(dir, 'usr'));
      expect(usr.size).toBeGreaterThan(10);
      expect([...usr].filter(([, st]) => !objects.has(st.ino) || st.nlink < 2).map(([p]) => p)).toEqual([]);
      expect(lstatSync(join(dir, 'usr/etc/hostname')).ino).not.toBe(lstatSync(join(dir, 'etc/hostname')).ino);
    });

    it('reports the deployment with `status` as text and JSON', () => {
      const text = s.cli(['status']);
      expect(text).toMatchObject({ exitCode: 0, stderr: '' });
      expect(
        text.stdout
          .trimEnd()
          .split('\n')
          .map((l) => l.replace(/\(\d{4}-[^)]+\)/, '(TIME)')),
      ).toEqual([` 0 default os ${short(c.v1)}`, '      Version: 1 (TIME)', '      Origin: os/main']);
      expect(s.status()).toMatchObject({
        bootversion: 0,
        staged: null,
        deployments: [
          {
            index: 0,
            role: 'default',
            stateroot: 'os',
            checksum: c.v1.checksum,
            serial: 0,
            version: '1',
            origin: 'os/main',
            pinned: false,
            kargs: [],
            bootcsum: bootcsumK1,
            etcConflicts: [],
          },
        ],
      });
    });

    it('upgrades from a local ref to its new commit, copying an unchanged kernel to /boot only once', () => {
      const kernelInode = lstatSync(join(s.bootDir, 'arbor', `os-${bootcsumK1}`, 'vmlinuz')).ino;
      s.repoCli('reset', 'os/main', c.v2.checksum);
      const r = s.cli(['upgrade']);
      expect(r).toMatchObject({ exitCode: 0, stdout: `deployed ${short(c.v2)} (version 2); reboot to use it\n` });
      expect(s.bootSetProblems()).toEqual([]);
      expect(s.bootOrder()).toEqual([short(c.v2), short(c.v1)]);
      expect(s.status().deployments.map((d) => [d.role, d.checksum, d.origin, d.bootcsum])).toEqual([
        ['default', c.v2.checksum, 'os/main', bootcsumK1],
        ['rollback', c.v1.checksum, 'os/main', bootcsumK1],
      ]);
      expect(s.kernelDirs()).toEqual([`os-${bootcsumK1}`]);
      expect(lstatSync(join(s.bootDir, 'arbor', `os-${bootcsumK1}`, 'vmlinuz')).ino).toBe(kernelInode);
      expect(readlinkSync(join(s.bootDir, 'loader'))).toBe('loader.1');
    });

    it('says "no upgrade available" when the origin ref is at the deployed commit, and changes nothing', () => {
      const before = s.listing();
      expect(s.cli(['upgrade'])).toMatchObject({
        exitCode: 0,
        stdout: `no upgrade available: os/main is at the deployed commit ${c.v2.checksum.slice(0, 12)}\n`,
      });
      expect(s.listing()).toEqual(before);
    });

    it('names the booted deployment (ARBOR_CMDLINE_FILE) and the pending one in `status`', () => {
      const bootedOld = s.bootedEnv(1, scratch());
      expect(s.status(bootedOld).deployments.map((d) => [d.index, d.role, d.checksum])).toEqual([
        [0, 'pending', c.v2.checksum],
        [1, 'booted', c.v1.checksum],
      ]);
      const text = s
        .cli(['status'], bootedOld)
        .stdout.split('\n')
        .filter((l) => /^\S? ?\d /.test(l) || l.startsWith('● '));
      expect(text).toEqual([` 0 pending os ${short(c.v2)}`, `● 1 booted os ${short(c.v1)}`]);
      expect(s.status(s.bootedEnv(0, scratch())).deployments.map((d) => d.role)).toEqual(['booted', 'rollback']);
    });

    it('rolls back by reordering the entries only (no checkout, same directories), and twice is the identity', () => {
      const inodes = deploymentInodes(s);
      const names = s.deployNames();
      const texts = entryTexts(s);
      const kernels = s.kernelDirs();
      const r = s.cli(['rollback']);
      expect(r).toMatchObject({
        exitCode: 0,
        stdout: `default is now os ${short(c.v1)} (version 1); reboot to use it\n`,
      });
      expect(s.bootSetProblems()).toEqual([]);
      expect(s.bootOrder()).toEqual([short(c.v1), short(c.v2)]);
      expect({ inodes: deploymentInodes(s), names: s.deployNames(), kernels: s.kernelDirs() }).toEqual({
        inodes,
        names,
        kernels,
      });
      expect(s.status().deployments.map((d) => d.role)).toEqual(['default', 'rollback']);

      expect(s.cli(['rollback'])).toMatchObject({
        exitCode: 0,
        stdout: `default is now os ${short(c.v2)} (version 2); reboot to use it\n`,
      });
      expect(entryTexts(s)).toEqual(texts);
      expect({ inodes: deploymentInodes(s), names: s.deployNames(), kernels: s.kernelDirs() }).toEqual({
        inodes,
        names,
        kernels,
      });
    });

    it('edits kernel arguments with --append, --replace and --delete: a new boot set, no new deployment directory', () => {
      const inodes = deploymentInodes(s);
      const other = s.readBootSet().entries[1]?.entry.options.replace(/boot\.\d/, 'boot.N');
      expect(s.cli(['kargs', '--append', 'console=ttyS0', '--append', 'quiet'])).toMatchObject({
        exitCode: 0,
        stdout: 'console=ttyS0 quiet\n',
      });
      expect(s.ok('kargs')).toBe('console=ttyS0 quiet');
      const set = s.readBootSet();
      expect(set.entries[0]?.entry.options).toBe(
        `console=ttyS0 quiet arbor=/arbor/boot.${set.bootversion}/os/${bootcsumK1}/0`,
      );
      expect(set.entries[1]?.entry.options.replace(/boot\.\d/, 'boot.N')).toBe(other);
      expect(s.ok('kargs', '--replace', 'console=ttyS1')).toBe('console=ttyS1 quiet');
      expect(
        s.ok(
          'kargs',
          '--delete',
          'quiet',
          '--append',
          'rd.break=pre-mount',
          '--delete',
          'console=ttyS1',
          '--append',
          'console=ttyS1',
        ),
      ).toBe('rd.break=pre-mount console=ttyS1');
      expect(s.ok('kargs', '--delete', 'rd.break')).toBe('console=ttyS1');
      expect(s.ok('kargs', '--deploy-index', '1')).toBe('');
      // --editor: one line of arguments in $VISUAL (else $EDITOR), # lines ignored.
      const editor = "sed -i -e '1s/$/ splash/' -e '$a# a comment'";
      expect(s.cli(['kargs', '--editor'], { VISUAL: editor, EDITOR: editor })).toMatchObject({
        exitCode: 0,
        stdout: 'console=ttyS1 splash\n',
      });
      expect(s.ok('kargs', '--delete', 'splash')).toBe('console=ttyS1');
      expect(s.readBootSet().entries.map((e) => e.kargs)).toEqual([['console=ttyS1'], []]);
      expect(s.status().deployments.map((d) => d.kargs)).toEqual([['console=ttyS1'], []]);
      expect(deploymentInodes(s)).toEqual(inodes);
      expect(s.bootSetProblems()).toEqual([]);
    });

    it('rebases onto another ref: the new deployment has that origin and inherits the kernel arguments', () => {
      const r = s.cli(['rebase', 'os/other']);
      expect(r).toMatchObject({ exitCode: 0, stdout: `deployed ${short(c.v3)} (version 3); reboot to use it\n` });
      // v1 was neither booted, pinned nor the previous default: removed with its directory.
      expect(s.bootOrder()).toEqual([short(c.v3), short(c.v2)]);
      expect(existsSync(s.deploymentDir(c.v1.checksum))).toBe(false);
      expect(s.status().deployments.map((d) => [d.origin, d.kargs])).toEqual([
        ['os/other', ['console=ttyS1']],
        ['os/main', ['console=ttyS1']],
      ]);
      expect(s.kernelDirs()).toHaveLength(2);
      expect(s.bootSetProblems()).toEqual([]);
      expect(s.ok('upgrade')).toBe(
        `no upgrade available: os/other is at the deployed commit ${c.v3.checksum.slice(0, 12)}`,
      );
    });

    it('undeploys by index, removing the directory and the kernel nobody else uses', () => {
      expect(s.cli(['admin', 'undeploy', '1'])).toMatchObject({ exitCode: 0, stdout: `removed os ${short(c.v2)}\n` });
      expect(s.bootOrder()).toEqual([short(c.v3)]);
      expect(s.deployNames()).toEqual([short(c.v3), `${short(c.v3)}.origin`]);
      expect(s.kernelDirs()).toEqual([`os-${s.status().deployments[0]?.bootcsum}`]);
      expect(s.kernelDirs()).not.toContain(`os-${bootcsumK1}`);
      expect(s.bootSetProblems()).toEqual([]);
    });
  });

  describe('the /etc 3-way merge through real deployments', () => {
    let s: TestSysroot;
    let etc1: string;
    let etc2: string;
    let deployV2: ReturnType<TestSysroot['cli']>;
    beforeAll(() => {
      s = freshSysroot();
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      etc1 = join(s.deploymentDir(c.v1.checksum), 'etc');
      etc2 = join(s.deploymentDir(c.v2.checksum), 'etc');
      // The admin's changes in the deployed /etc.
      writeFileSync(join(etc1, 'hostname'), 'admin-host\n');
      unlinkSync(join(etc1, 'issue'));
      writeFileSync(join(etc1, 'both.conf'), 'both admin\n');
      writeFileSync(join(etc1, 'admin-added.conf'), 'mine\n');
      unlinkSync(join(etc1, 'retyped'));
      symlinkSync('hostname', join(etc1, 'retyped'));
      writeFileSync(join(etc1, 'app.d/a.conf'), 'a admin\n');
    });

    it('lists the admin changes with `admin config-diff` (M, A and D lines)', () => {
      const lines = s.ok('admin', 'config-diff').split('\n');
      expect([...lines].sort()).toEqual([
        'A admin-added.conf',
        'D issue',
        'M app.d/a.conf',
        'M both.conf',
        'M hostname',
        'M retyped',
      ]);
      const json = JSON.parse(s.ok('admin', 'config-diff', '--json')) as { path: string; change: string }[];
      expect(json.map((j) => `${j.change} ${j.path}`).sort()).toEqual([
        'added admin-added.conf',
        'deleted issue',
        'modified app.d/a.conf',
        'modified both.conf',
        'modified hostname',
        'modified retyped',
      ]);
    });

    it('refuses a deploy whose /etc merge has conflicts, naming each, and changes nothing (the preflight)', () => {
      const before = s.listing();
      const r = s.cli(['admin', 'deploy', 'os/next']);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toBe('');
      const lines = r.stderr.split('\n');
      expect(lines[0]).toBe(`error[E_PREFLIGHT_FAILED]: preflight refused deployment os ${short(c.v2)}: 1 problem`);
      expect(lines[1]).toBe('  etc-conflicts: 2 files in /etc changed by the admin and by the new defaults');
      expect(lines.slice(2, 4).sort()).toEqual([
        "    /etc/app.d: kept the admin's version (changed entries below); new defaults: replaced directory with file",
        "    /etc/both.conf: kept the admin's version (changed content); new defaults: changed content",
      ]);
      expect(r.stderr).toContain(
        'hint: review them with `arbor admin config-diff`, then deploy with --accept-etc-conflicts',
      );
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(s.listing()).toEqual(before);
    });

    it('keeps admin changes, follows untouched defaults and reports both-changed paths on deploy', () => {
      deployV2 = s.cli(['admin', 'deploy', '--accept-etc-conflicts', 'os/next']);
      expect(deployV2.exitCode, deployV2.stderr).toBe(0);
      expect(deployV2.stdout).toBe(`deployed os ${short(c.v2)} (version 2)\n`);
      // The ref given is what the new deployment follows, not the merge deployment's.
      expect(readFileSync(join(s.deployDir, `${short(c.v2)}.origin`), 'utf8')).toBe('[origin]\nrefspec=os/next\n');
      expect(
        deployV2.stderr
          .split('\n')
          .filter((l) => l !== '')
          .sort(),
      ).toEqual([
        expect.stringMatching(
          /^warning: \/etc\/app\.d: changed by the admin and by the new defaults; kept the admin's version \(changed entries below; new defaults: replaced directory with file\)$/,
        ),
        expect.stringMatching(
          /^warning: \/etc\/both\.conf: changed by the admin and by the new defaults; kept the admin's version \(changed content; new defaults: changed content\)$/,
        ),
      ]);
      const read = (p: string): string => readFileSync(join(etc2, p), 'utf8');
      const kind = (p: string): string => {
        const st = lstatSync(join(etc2, p), { throwIfNoEntry: false });
        return st === undefined
          ? 'absent'
          : st.isDirectory()
            ? 'dir'
            : st.isSymbolicLink()
              ? `link ${readlinkSync(join(etc2, p))}`
              : 'file';
      };
      expect({
        hostname: read('hostname'), // admin modified, defaults kept: admin's
        motd: read('motd'), // untouched: new default
        issue: kind('issue'), // admin deleted: stays deleted
        both: read('both.conf'), // both changed: admin's
        gone: kind('gone.conf'), // removed by the defaults
        added: read('admin-added.conf'),
        newDefault: read('new-in-v2.conf'),
        file2dir: [kind('file2dir'), read('file2dir/inner.conf')],
        dir2file: [kind('dir2file'), read('dir2file')],
        link2file: [kind('link2file'), read('link2file')],
        file2link: kind('file2link'),
        retyped: kind('retyped'),
        appD: [kind('app.d'), read('app.d/a.conf'), read('app.d/b.conf')],
      }).toEqual({
        hostname: 'admin-host\n',
        motd: 'motd v2\n',
        issue: 'absent',
        both: 'both admin\n',
        gone: 'absent',
        added: 'mine\n',
        newDefault: 'a new default\n',
        file2dir: ['dir', 'inside v2\n'],
        dir2file: ['file', 'a file in v2\n'],
        link2file: ['file', 'a file in v2\n'],
        file2link: 'link hostname',
        retyped: 'link hostname',
        appD: ['dir', 'a admin\n', 'b v1\n'],
      });
      expect([...regularFiles(etc2)].filter(([, st]) => st.nlink !== 1).map(([p]) => p)).toEqual([]);
      // The old deployment's /etc is untouched.
      expect(readFileSync(join(etc1, 'both.conf'), 'utf8')).toBe('both admin\n');
    });

    it('shows the conflicts in `status` and `status --json`', () => {
      const status = s.status();
      expect(status.deployments.map((d) => d.etcConflicts.map((x) => x.path).sort())).toEqual([
        ['app.d', 'both.conf'],
        [],
      ]);
      expect(status.deployments[0]?.etcConflicts.find((x) => x.path === 'both.conf')).toEqual({
        path: 'both.conf',
        admin: 'changed content',
        defaults: 'changed content',
      });
      const text = s.ok('status');
      expect(text).toContain(
        "      /etc conflicts (the admin's version was kept; the new defaults changed these too):",
      );
      expect(text).toContain('        /etc/both.conf: admin changed content; defaults changed content');
      expect(text).toContain('        /etc/app.d: admin changed entries below; defaults replaced directory with file');
    });

    it('reports the conflicts of an upgrade the same way as those of a deploy (docs/deploy.md)', () => {
      const u = freshSysroot();
      u.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      writeFileSync(join(u.deploymentDir(c.v1.checksum), 'etc/both.conf'), 'both admin\n');
      u.repoCli('reset', 'os/main', c.v2.checksum);
      const refused = u.cli(['upgrade']);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain(
        '  etc-conflicts: 1 file in /etc changed by the admin and by the new defaults\n',
      );
      expect(u.bootOrder()).toEqual([short(c.v1)]);
      const r = u.cli(['upgrade', '--accept-etc-conflicts']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toBe(
        "warning: /etc/both.conf: changed by the admin and by the new defaults; kept the admin's version (changed content; new defaults: changed content)\n",
      );
    });

    it('reports nothing when the next defaults do not change what the admin changed', () => {
      const r = s.cli(['admin', 'deploy', 'os/other']);
      expect(r).toMatchObject({ exitCode: 0, stderr: '' });
      const etc3 = join(s.deploymentDir(c.v3.checksum), 'etc');
      expect(readFileSync(join(etc3, 'both.conf'), 'utf8')).toBe('both admin\n');
      expect(readFileSync(join(etc3, 'app.d/a.conf'), 'utf8')).toBe('a admin\n');
      expect(s.status().deployments.map((d) => d.etcConflicts.length)).toEqual([0, 2]);
    });
  });

  describe('staged deployments', () => {
    let s: TestSysroot;
    beforeAll(() => {
      s = freshSysroot();
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
    });

    it('prepares a staged deployment without touching the boot set; finalize-staged carries later /etc changes into it', () => {
      const etc1 = join(s.deploymentDir(c.v1.checksum), 'etc');
      writeFileSync(join(etc1, 'hostname'), 'before staging\n');
      const bootBefore = s.listing().filter((l) => l.startsWith('boot/'));
      expect(s.cli(['deploy', '--stage', 'os/next'])).toMatchObject({
        exitCode: 0,
        stderr: '',
        stdout: `staged os ${short(c.v2)} (version 2)\n`,
      });
      expect(s.listing().filter((l) => l.startsWith('boot/'))).toEqual(bootBefore);
      expect(s.bootOrder()).toEqual([short(c.v1)]);
      expect(s.status().staged).toMatchObject({ checksum: c.v2.checksum, serial: 0, version: '2' });
      expect(s.ok('status').split('\n')[0]).toBe(
        `staged    os ${short(c.v2)}  version 2 (becomes the default at shutdown)`,
      );
      expect(readFileSync(join(s.deploymentDir(c.v2.checksum), 'etc/hostname'), 'utf8')).toBe('before staging\n');

      // Changes after staging, before the shutdown that finalizes it.
      writeFileSync(join(etc1, 'hostname'), 'after staging\n');
      writeFileSync(join(etc1, 'late.conf'), 'written after staging\n');
      const r = s.cli(['admin', 'finalize-staged']);
      expect(r).toMatchObject({ exitCode: 0, stdout: `deployed os ${short(c.v2)} (version 2)\n` });
      expect(s.bootOrder()).toEqual([short(c.v2), short(c.v1)]);
      const etc2 = join(s.deploymentDir(c.v2.checksum), 'etc');
      expect(readFileSync(join(etc2, 'hostname'), 'utf8')).toBe('after staging\n');
      expect(readFileSync(join(etc2, 'late.conf'), 'utf8')).toBe('written after staging\n');
      expect(readFileSync(join(etc2, 'motd'), 'utf8')).toBe('motd v2\n');
      expect(readdirSync(s.deploymentDir(c.v2.checksum)).filter((n) => n.startsWith('.etc'))).toEqual([]);
      expect(s.status().staged).toBeNull();
      expect(s.bootSetProblems()).toEqual([]);
      expect(s.ok('admin', 'finalize-staged')).toBe('no staged deployment');
    });

    it('discards a staged deployment with `cleanup --pending`', () => {
      s.ok('deploy', '--stage', 'os/other');
      expect(existsSync(s.deploymentDir(c.v3.checksum))).toBe(true);
      const lines = s.ok('cleanup', '--pending').split('\n');
      expect(lines).toContain('discarded the staged deployment');
      expect(existsSync(s.deploymentDir(c.v3.checksum))).toBe(false);
      expect(s.status().staged).toBeNull();
      expect(s.bootOrder()).toEqual([short(c.v2), short(c.v1)]);
      expect(s.kernelDirs()).toHaveLength(1);
    });

    it("keeps a staged deployment's commit through `cleanup` when no other ref names it", () => {
      const u = freshSysroot();
      u.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      const only = u.commit(
        'tmp/staged',
        { version: 'staged-only', etc: ETC_V2, files: { 'usr/share/staged-only': 'only in the staged commit\n' } },
        join(tmp.path, 'staged-only'),
      );
      u.ok('deploy', '--stage', 'tmp/staged');
      u.repoCli('refs', '--delete', 'tmp/staged');
      expect(u.repoCli('refs', 'arbor/deploy/').split('\n')).toContain(`arbor/deploy/${STATEROOT}/${only.checksum}.0`);
      const r = u.cli(['cleanup']);
      expect(r.exitCode, r.stderr).toBe(0);
      // Its deployment ref kept the commit from the prune: fsck finds it whole, finalize deploys it.
      expect(runCli(['fsck', '--repo', u.repo]).exitCode).toBe(0);
      expect(u.repoCli('rev-parse', only.checksum)).toBe(only.checksum);
      u.ok('admin', 'finalize-staged');
      expect(u.bootOrder()[0]).toBe(`${only.checksum}.0`);
    });

    it('puts back a deployment ref removed by hand on `cleanup`, and drops refs no deployment has', () => {
      const u = freshSysroot();
      u.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      const ref = `arbor/deploy/${STATEROOT}/${short(c.v1)}`;
      u.repoCli('refs', '--delete', ref);
      u.repoCli('refs', '--create', `arbor/deploy/${STATEROOT}/${c.v2.checksum}.7`, c.v2.checksum);
      u.ok('cleanup');
      expect(u.repoCli('refs', 'arbor/deploy/')).toBe(ref);
    });

    it('rolls back without opening the repository index while the refs stamp matches', () => {
      const u = freshSysroot();
      u.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      u.ok('admin', 'deploy', 'os/next');
      const db = join(u.repo, 'repo.db');
      const aside = join(tmp.path, 'repo.db-aside');
      mkdirSync(aside);
      const names = readdirSync(u.repo).filter((n) => n.startsWith('repo.db'));
      for (const n of names) renameSync(join(u.repo, n), join(aside, n));
      mkdirSync(db); // SQLite cannot open a directory: any use of the index fails
      try {
        const r = u.cli(['rollback']);
        expect(r.exitCode, r.stderr).toBe(0);
        expect(u.bootOrder()).toEqual([short(c.v1), short(c.v2)]);
      } finally {
        rmSync(db, { recursive: true });
        for (const n of names) renameSync(join(aside, n), join(u.repo, n));
      }
      // A deploy changes the set: the stamp no longer matches, and the index is checked and updated.
      writeFileSync(join(u.path, 'arbor/deploy-refs'), 'garbage\n');
      u.ok('admin', 'deploy', 'os/other');
      expect(u.repoCli('refs', 'arbor/deploy/').split('\n').sort()).toEqual(
        [short(c.v3), short(c.v1)].map((n) => `arbor/deploy/${STATEROOT}/${n}`).sort(),
      );
    });

    it('stages an upgrade with `upgrade --stage`: the boot set changes only at finalize-staged', () => {
      const u = freshSysroot();
      u.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      u.repoCli('reset', 'os/main', c.v2.checksum);
      const bootBefore = u.listing().filter((l) => l.startsWith('boot/'));
      const r = u.cli(['upgrade', '--stage', '--accept-etc-conflicts']);
      expect(r).toMatchObject({
        exitCode: 0,
        stdout: `staged ${short(c.v2)} (version 2); it becomes the default at shutdown\n`,
      });
      expect(u.listing().filter((l) => l.startsWith('boot/'))).toEqual(bootBefore);
      expect(u.status().staged).toMatchObject({ checksum: c.v2.checksum });
      u.ok('admin', 'finalize-staged');
      expect(u.bootOrder()).toEqual([short(c.v2), short(c.v1)]);
    });
  });

  describe('retention, pinning and cleanup', () => {
    let s: TestSysroot;
    const bootcsums = new Map<string, string>();
    beforeAll(() => {
      s = freshSysroot();
    });
    const kernelOf = (commit: Commit): string => `os-${bootcsums.get(commit.checksum)}`;

    it('keeps a pinned deployment across deploys', () => {
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      expect(s.ok('admin', 'pin', '0')).toBe(`pinned os ${short(c.v1)}`);
      expect(readFileSync(join(s.deployDir, `${short(c.v1)}.origin`), 'utf8')).toBe(
        '[origin]\nrefspec=os/main\n\n[arbor-transient]\npinned=true\n',
      );
      s.ok('admin', 'deploy', 'os/other');
      s.ok('admin', 'deploy', 'os/four');
      // v3 stays as the previous default, v1 as pinned.
      expect(s.bootOrder()).toEqual([short(c.v4), short(c.v3), short(c.v1)]);
      const status = s.status();
      for (const d of status.deployments) bootcsums.set(d.checksum, d.bootcsum);
      expect(status.deployments.map((d) => d.pinned)).toEqual([false, false, true]);
    });

    it('keeps the booted, the previous default and the pinned deployment, and removes a fourth with its unused kernel', () => {
      // Booted into v3 (index 1): deploying v2 keeps all four.
      const r = s.cli(['admin', 'deploy', 'os/next'], s.bootedEnv(1, scratch()));
      expect(r).toMatchObject({ exitCode: 0, stdout: `deployed os ${short(c.v2)} (version 2)\n` });
      expect(s.bootOrder()).toEqual([short(c.v2), short(c.v4), short(c.v3), short(c.v1)]);
      const booted = s.bootedEnv(2, scratch());
      expect(s.status(booted).deployments.map((d) => d.role)).toEqual(['pending', 'other', 'booted', 'rollback']);
      // Deploying v1 again (serial 1): v4 is neither booted, pinned nor the previous default.
      const again = s.cli(['admin', 'deploy', 'os/main'], booted);
      expect(again).toMatchObject({
        exitCode: 0,
        stdout: `deployed os ${short(c.v1, 1)} (version 1)\nremoved os ${short(c.v4)}\n`,
      });
      expect(s.bootOrder()).toEqual([short(c.v1, 1), short(c.v2), short(c.v3), short(c.v1)]);
      expect(existsSync(s.deploymentDir(c.v4.checksum))).toBe(false);
      expect(s.kernelDirs()).toEqual([kernelOf(c.v1), kernelOf(c.v3)].sort());
      // v1 and v2 share one kernel directory.
      expect(s.status().deployments.map((d) => d.bootcsum)).toEqual([
        bootcsums.get(c.v1.checksum),
        bootcsums.get(c.v1.checksum),
        bootcsums.get(c.v3.checksum),
        bootcsums.get(c.v1.checksum),
      ]);
      expect(s.bootSetProblems()).toEqual([]);
    });

    it('keeps a pinned deployment on `cleanup --rollback`, and removes it once unpinned', () => {
      const booted = s.bootedEnv(2, scratch());
      const r = s.cli(['cleanup', '--rollback'], booted);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^pruned \d+ objects \([\d.]+ [KM]?i?B\)\n$/);
      expect(s.bootOrder()).toEqual([short(c.v1, 1), short(c.v2), short(c.v3), short(c.v1)]);
      expect(s.cli(['admin', 'pin', '--unpin', '3'])).toMatchObject({
        exitCode: 0,
        stdout: `unpinned os ${short(c.v1)}\n`,
      });
      const removed = s.cli(['cleanup', '--rollback'], booted);
      expect(removed.stdout.split('\n')[0]).toBe(`removed os ${short(c.v1)}`);
      expect(s.bootOrder()).toEqual([short(c.v1, 1), short(c.v2), short(c.v3)]);
      expect(s.deployNames().filter((n) => !n.endsWith('.origin'))).toEqual(
        [short(c.v1, 1), short(c.v2), short(c.v3)].sort(),
      );
      expect(s.bootSetProblems()).toEqual([]);
    });

    it('removes the pending deployment with `cleanup --pending`', () => {
      const booted = s.bootedEnv(2, scratch());
      expect(s.cli(['cleanup', '--pending'], booted).stdout.split('\n')[0]).toBe(`removed os ${short(c.v1, 1)}`);
      expect(s.bootOrder()).toEqual([short(c.v2), short(c.v3)]);
      expect(s.status(s.bootedEnv(1, scratch())).deployments.map((d) => d.role)).toEqual(['pending', 'booted']);
      expect(s.kernelDirs()).toEqual([kernelOf(c.v1), kernelOf(c.v3)].sort());
    });

    it('removes what killed commands left and prunes objects no ref or deployment keeps', () => {
      const orphanTree = join(tmp.path, 'orphan-tree');
      writeOsTree(orphanTree, {
        version: 'orphan',
        etc: ETC_V2,
        files: { 'usr/share/orphan': 'only in the orphan commit\n' },
      });
      const orphan = s.repoCli(
        'commit',
        '-b',
        'tmp/orphan',
        '--tree',
        `dir=${orphanTree}`,
        '--owner-uid',
        '0',
        '--owner-gid',
        '0',
      );
      const [listed] = JSON.parse(s.repoCli('ls', '--json', orphan, '/usr/share/orphan')) as { checksum: string }[];
      const orphanFile = fileObjectPath(s.repo, listed?.checksum ?? '');
      expect(existsSync(orphanFile)).toBe(true);
      s.ok('admin', 'deploy', orphan);
      s.repoCli('refs', '--delete', 'tmp/orphan');

      // Leftovers of killed commands: half-made deployments, link trees and kernel copies.
      const bogus = 'ab'.repeat(32);
      mkdirSync(join(s.deployDir, `.tmp-${bogus}.0/usr`), { recursive: true });
      mkdirSync(join(s.deployDir, `${bogus}.3/etc`), { recursive: true });
      writeFileSync(join(s.deployDir, `${bogus}.3.origin`), '[origin]\nrefspec=os/main\n');
      mkdirSync(join(s.path, 'arbor/boot.1.tmp/os'), { recursive: true });
      mkdirSync(join(s.bootDir, `arbor/os-${bogus}`));
      writeFileSync(join(s.bootDir, `arbor/os-${bogus}/vmlinuz`), 'stale');
      mkdirSync(join(s.bootDir, `arbor/os-${'cd'.repeat(32)}.tmp`));
      const staging = join(s.bootDir, `loader.${1 - s.readBootSet().bootversion}.tmp`);
      mkdirSync(join(staging, 'entries'), { recursive: true });
      writeFileSync(join(staging, 'entries/arbor-os-0.conf'), 'title half-written\n');
      symlinkSync(staging.split('/').at(-1) as string, join(s.bootDir, 'loader.tmp'));
      const r = s.cli(['cleanup']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(s.deployNames().filter((n) => n.includes(bogus))).toEqual([]);
      expect(existsSync(join(s.path, 'arbor/boot.1.tmp'))).toBe(false);
      expect(s.kernelDirs().filter((n) => n.includes(bogus) || n.endsWith('.tmp'))).toEqual([]);
      expect(readdirSync(s.bootDir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      // The orphan is deployed: its deployment ref keeps its objects.
      expect(existsSync(orphanFile)).toBe(true);
      expect(s.bootSetProblems()).toEqual([]);

      // Not booted: deploying the orphan kept only the previous default.
      expect(s.bootOrder()).toEqual([`${orphan}.0`, short(c.v2)]);
      s.ok('admin', 'undeploy', '0');
      const pruned = s.cli(['cleanup']);
      expect(pruned.stdout).toMatch(/^pruned [1-9]\d* objects/m);
      expect(existsSync(orphanFile)).toBe(false);
      expect(s.bootOrder()).toEqual([short(c.v2)]);
      expect(runCli(['fsck', '--repo', s.repo]).exitCode).toBe(0);
    });
  });

  describe.each([
    ['grub2', 'loader/grub.cfg'],
    ['syslinux', 'loader/syslinux.cfg'],
    ['uboot', 'loader/uEnv.txt'],
  ])('the %s backend selected in the sysroot config', (name, file) => {
    let s: TestSysroot;
    beforeAll(() => {
      s = freshSysroot();
      writeFileSync(
        join(s.repo, 'config'),
        `${readFileSync(join(s.repo, 'config'), 'utf8')}\n[sysroot]\nbootloader=${name}\n`,
      );
    });

    it(`writes ${file} beside the entries on every change of the boot set`, () => {
      const check = (): string => {
        const text = readFileSync(join(s.bootDir, file), 'utf8');
        const set = s.readBootSet();
        for (const e of set.entries) {
          expect(text).toContain(`/boot${e.entry.linux}`);
          expect(text).toContain(`/boot${e.entry.initrd}`);
          expect(text).toContain(`arbor=${e.arborArg}`);
        }
        if (name === 'grub2' && hasCommand('grub-script-check')) {
          const r = spawnSync('grub-script-check', [join(s.bootDir, file)], { encoding: 'utf8' });
          expect(r.status, `grub-script-check: ${r.stdout}${r.stderr}`).toBe(0);
        }
        return text;
      };
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      const one = check();
      s.ok('admin', 'deploy', 'os/other');
      const two = check();
      expect(two).not.toBe(one);
      s.ok('kargs', '--append', 'console=ttyS0,115200');
      const three = check();
      expect(three).toContain('console=ttyS0,115200');
      if (name === 'grub2') {
        // What GRUB reads first: the static grub.cfg (into loader/grub.cfg) and a full-size grubenv.
        expect(readFileSync(join(s.bootDir, 'grub/grub.cfg'), 'utf8')).toBe(staticGrubCfg('/boot'));
        expect(lstatSync(join(s.bootDir, 'grub/grubenv')).size).toBe(1024);
        expect(three.match(/^menuentry /gm)).toHaveLength(2);
        expect(three).toMatch(/^set default=0$/m);
        expect(three).toMatch(/^set fallback=1$/m);
        expect(three.indexOf('Arbor Test 3')).toBeLessThan(three.indexOf('Arbor Test 1'));
      }
      if (name === 'syslinux') expect(three).toMatch(/^DEFAULT arbor0$/m);
      if (name === 'uboot') expect(three).toMatch(/^bootargs=console=ttyS0,115200 arbor=/m);
      s.ok('rollback');
      const four = check();
      expect(four).not.toBe(three);
      // The previous boot set keeps its own copy until the next switch.
      const set = s.readBootSet();
      expect(existsSync(join(s.bootDir, `loader.${1 - set.bootversion}`, file.split('/')[1] as string))).toBe(true);
      expect(s.bootSetProblems()).toEqual([]);
    });
  });

  describe('the grub2 backend detected from boot/grub/grub.cfg', () => {
    it('writes loader/grub.cfg that grub-script-check accepts, and leaves the static boot/grub/grub.cfg alone', () => {
      const s = freshSysroot();
      mkdirSync(join(s.bootDir, 'grub'));
      const staticCfg = staticGrubCfg('/boot');
      writeFileSync(join(s.bootDir, 'grub/grub.cfg'), staticCfg);
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, '--karg', 'root=LABEL=root', '--karg', 'rw', 'os/main');
      s.ok('admin', 'deploy', 'os/next');
      const cfg = readFileSync(join(s.bootDir, 'loader/grub.cfg'), 'utf8');
      const set = s.readBootSet();
      const menu = [...cfg.matchAll(/^menuentry '([^']*)' \{\n {2}linux (\S+) (.*)\n {2}initrd (\S+)\n\}$/gm)].map(
        (m) => m.slice(1),
      );
      expect(menu).toEqual(
        set.entries.map((e) => [e.entry.title, `/boot${e.entry.linux}`, e.entry.options, `/boot${e.entry.initrd}`]),
      );
      expect(readFileSync(join(s.bootDir, 'grub/grub.cfg'), 'utf8')).toBe(staticCfg);
      if (hasCommand('grub-script-check')) {
        for (const path of [join(s.bootDir, 'loader/grub.cfg'), join(s.bootDir, 'grub/grub.cfg')]) {
          const r = spawnSync('grub-script-check', [path], { encoding: 'utf8' });
          expect(r.status, `grub-script-check ${path}: ${r.stdout}${r.stderr}`).toBe(0);
        }
      }
    });
  });

  describe('bad input: a clear error, and the boot set and deployments unchanged', () => {
    let s: TestSysroot;
    let booted: NodeJS.ProcessEnv;
    beforeAll(() => {
      s = freshSysroot();
      // Its origin names a remote that does not exist.
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, '--origin-ref', 'gone:os/main', 'os/main');
      booted = s.bootedEnv(0, scratch());
    });

    it.each<[string, () => string[], number, string, string[], boolean?]>([
      [
        'deploying a commit without a kernel',
        () => ['admin', 'deploy', 'os/nokernel'],
        1,
        'E_DEPLOY_NO_KERNEL',
        ['has no kernel'],
      ],
      ['deploying an unknown rev', () => ['admin', 'deploy', 'os/absent'], 1, 'E_REF_NOT_FOUND', ["'os/absent'"]],
      [
        'deploying into an unknown stateroot',
        () => ['admin', 'deploy', '--stateroot', 'nope', 'os/next'],
        2,
        'E_STATEROOT_UNKNOWN',
        ["'nope'"],
      ],
      [
        'deploying into an invalid stateroot name',
        () => ['admin', 'deploy', '--stateroot', '../x', 'os/next'],
        2,
        'E_STATEROOT_INVALID',
        ["'../x'"],
      ],
      [
        '--karg with --karg-proc-cmdline',
        () => ['admin', 'deploy', '--karg', 'quiet', '--karg-proc-cmdline', 'os/next'],
        2,
        'E_USAGE',
        ['--karg-proc-cmdline'],
      ],
      ['upgrading from an origin whose remote is missing', () => ['upgrade'], 1, 'E_REMOTE_NOT_FOUND', ["'gone'"]],
      ['rebasing onto a missing remote', () => ['rebase', 'nosuch:os/main'], 1, 'E_REMOTE_NOT_FOUND', ["'nosuch'"]],
      ['rebasing onto a malformed refspec', () => ['rebase', 'nosuch:'], 2, 'E_REFSPEC_INVALID', ["'nosuch:'"]],
      ['rolling back with one deployment', () => ['rollback'], 2, 'E_ROLLBACK_NONE', []],
      [
        'undeploying the booted deployment',
        () => ['admin', 'undeploy', '0'],
        2,
        'E_DEPLOYMENT_BOOTED',
        ['deployment 0'],
        true,
      ],
      [
        'undeploying an index that does not exist',
        () => ['admin', 'undeploy', '4'],
        2,
        'E_DEPLOYMENT_INDEX',
        ['deployment 4'],
      ],
      ['pinning an index that does not exist', () => ['admin', 'pin', '1'], 2, 'E_DEPLOYMENT_INDEX', ['deployment 1']],
      ['kargs --editor with --append', () => ['kargs', '--editor', '--append', 'quiet'], 2, 'E_USAGE', ['--editor']],
      [
        'kargs --delete of an argument that is not set',
        () => ['kargs', '--delete', 'quiet'],
        2,
        'E_KARG_MISSING',
        ["'quiet'"],
      ],
      ['kargs --append of arbor=', () => ['kargs', '--append', 'arbor=/x'], 2, 'E_KARG_INVALID', ["'arbor='"]],
      [
        'a path that is not a sysroot',
        () => ['status', '--sysroot', '/proc'],
        2,
        'E_SYSROOT_INVALID',
        ["'/proc' is not an arbor sysroot"],
      ],
    ])('refuses %s with its exit and error codes, changing nothing', (_, args, exitCode, code, mentions, asBooted) => {
      const before = s.listing();
      const deployNames = s.deployNames();
      const env = asBooted ? booted : {};
      const argv = args();
      const r = argv.includes('--sysroot') ? runCli(argv) : s.cli(argv, env);
      expectArborError(r, exitCode, code, ...mentions);
      expect(s.listing()).toEqual(before);
      expect(s.deployNames()).toEqual(deployNames);
      expect(s.bootOrder()).toEqual([short(c.v1)]);
    });

    it('refuses an unknown bootloader setting before anything is written (deploy and kargs)', () => {
      const config = readFileSync(join(s.repo, 'config'), 'utf8');
      writeFileSync(join(s.repo, 'config'), `${config}\n[sysroot]\nbootloader=lilo\n`);
      try {
        const before = s.listing();
        expectArborError(s.cli(['admin', 'deploy', 'os/other']), 2, 'E_BOOTLOADER_UNKNOWN', "'lilo'");
        expect(s.listing()).toEqual(before);
        expectArborError(s.cli(['kargs', '--append', 'quiet']), 2, 'E_BOOTLOADER_UNKNOWN', "'lilo'");
        expect(s.listing()).toEqual(before);
      } finally {
        writeFileSync(join(s.repo, 'config'), config);
      }
    });
  });

  describe.skipIf(!HAVE_NGINX)('upgrades from a remote served by nginx', () => {
    let s: TestSysroot;
    let nginx: NginxServer;
    let server: string;
    const remote: Record<string, Commit> = {};
    let trees: string;
    const serverCommit = (ref: string, version: string, kernel?: string): Commit => {
      const dir = join(trees, `server-${version}`);
      writeOsTree(dir, {
        version,
        etc: ETC_V2,
        ...(kernel ? { kernel } : {}),
        files: { [`usr/share/v${version}`]: `only in ${version}\n`.repeat(200) },
      });
      const { checksum } = commitRootOwned(server, ref, dir, version);
      arbor('summary', '--repo', server, '--update');
      return { checksum, version };
    };
    const hasCommitObject = (checksum: string): boolean =>
      existsSync(join(s.repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.commit`));

    beforeAll(async () => {
      trees = join(tmp.path, 'server-trees');
      server = join(tmp.path, 'srv', 'repo');
      arbor('init', '--repo', server, '--mode', 'archive');
      remote.r1 = serverCommit('os/stable', 'r1');
      nginx = await startNginx(join(tmp.path, 'srv'));
      s = freshSysroot();
      s.repoCli('remote', 'add', 'srv', `${nginx.url}/repo`, '--no-sign-verify');
      s.repoCli('pull', 'srv', 'os/stable');
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, '--origin-ref', 'srv:os/stable', 'srv:os/stable');
    });
    afterAll(() => nginx?.stop());

    it('deploys with the origin REMOTE:REF, and `upgrade --check` finds nothing new', () => {
      expect(s.status().deployments.map((d) => [d.checksum, d.origin])).toEqual([
        [remote.r1?.checksum, 'srv:os/stable'],
      ]);
      expect(s.ok('upgrade', '--check')).toBe(
        `no upgrade available: srv:os/stable is at the deployed commit ${remote.r1?.checksum.slice(0, 12)}`,
      );
    });

    it('`upgrade --check` names the new commit and the download size without fetching it; `--preview` fetches only its metadata', () => {
      remote.r2 = serverCommit('os/stable', 'r2');
      const r2 = remote.r2.checksum;
      const before = s.listing();
      const check = s.cli(['upgrade', '--check']);
      expect(check.exitCode, check.stderr).toBe(0);
      expect(check.stdout).toMatch(
        new RegExp(`^upgrade available: srv:os/stable ${r2} \\(version r2\\)\\n {2}download: [\\d.]+ (B|KiB|MiB)\\n$`),
      );
      expect(hasCommitObject(r2)).toBe(false);
      const preview = s.cli(['upgrade', '--preview']);
      expect(preview.exitCode, preview.stderr).toBe(0);
      expect(preview.stdout).toBe(`upgrade available: srv:os/stable ${r2} (version r2)\n`);
      expect(hasCommitObject(r2)).toBe(true);
      // Metadata only: the remote ref stays at the complete commit.
      expect(s.repoCli('rev-parse', 'srv:os/stable')).toBe(remote.r1?.checksum);
      expect(s.listing()).toEqual(before);
      expect(s.bootOrder()).toEqual([`${remote.r1?.checksum}.0`]);
    });

    it('`upgrade` pulls and deploys the new commit; `rebase` switches to another remote ref', () => {
      const r = s.cli(['upgrade']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toBe(`deployed ${remote.r2?.checksum}.0 (version r2); reboot to use it\n`);
      expect(s.bootOrder()).toEqual([`${remote.r2?.checksum}.0`, `${remote.r1?.checksum}.0`]);
      expect(s.bootSetProblems()).toEqual([]);
      expect(s.ok('upgrade', '--check')).toMatch(/^no upgrade available/);

      remote.b1 = serverCommit('os/beta', 'b1', 'a beta kernel\n');
      const rebase = s.cli(['rebase', 'srv:os/beta']);
      expect(rebase.exitCode, rebase.stderr).toBe(0);
      expect(rebase.stdout).toBe(`deployed ${remote.b1.checksum}.0 (version b1); reboot to use it\n`);
      expect(s.status().deployments.map((d) => [d.checksum, d.origin])).toEqual([
        [remote.b1.checksum, 'srv:os/beta'],
        [remote.r2?.checksum, 'srv:os/stable'],
      ]);
      expect(s.kernelDirs()).toHaveLength(2);
      expect(s.bootSetProblems()).toEqual([]);
    });
  });
});

/** Whether a loop-mounted ext4 image can be mounted here (root in a container may lack it). */
function canMountLoop(): boolean {
  if (!IS_ROOT || !hasCommand('mkfs.ext4')) return false;
  const dir = mkdtempSync(join(tmpdir(), 'arbor-loop-probe-'));
  try {
    execFileSync('truncate', ['-s', '1M', join(dir, 'img')]);
    execFileSync('mkfs.ext4', ['-q', join(dir, 'img')], {
      stdio: 'ignore',
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
    });
    mkdirSync(join(dir, 'mnt'));
    execFileSync('mount', ['-o', 'loop', join(dir, 'img'), join(dir, 'mnt')], { stdio: 'ignore' });
    execFileSync('umount', [join(dir, 'mnt')], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!canMountLoop())('a full /boot (a 2 MiB ext4 image)', () => {
  const tmp = useTempDir('arbor-deploy-full-boot-');
  let s: TestSysroot;
  let mounted = false;
  let big: Commit;
  let filler: string;
  beforeAll(() => {
    const path = join(tmp.path, 'sysroot');
    mkdirSync(join(path, 'boot'), { recursive: true });
    const image = join(tmp.path, 'boot.img');
    execFileSync('truncate', ['-s', '2M', image]);
    execFileSync('mkfs.ext4', ['-q', image], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    execFileSync('mount', ['-o', 'loop', image, join(path, 'boot')]);
    mounted = true;
    s = TestSysroot.create(path);
    const trees = join(tmp.path, 'trees');
    s.commit('os/main', { version: '1', etc: ETC_V1 }, trees);
    s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
    // A kernel and initramfs of 600 KiB together, then /boot filled to leave about 200 KiB.
    big = s.commit(
      'os/big',
      { version: '2', kernel: Buffer.alloc(400 * 1024, 0x4b), initramfs: Buffer.alloc(200 * 1024, 0x49), etc: ETC_V2 },
      trees,
    );
    filler = join(s.bootDir, 'filler');
    const freeBytes = (): number => Number(statfsSync(s.bootDir).bfree) * Number(statfsSync(s.bootDir).bsize);
    writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes() - 200 * 1024)));
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', [join(tmp.path, 'sysroot', 'boot')]);
  });

  it('exits 1 with E_NO_SPACE naming free and needed sizes, changes nothing, and deploys once there is room', () => {
    const before = s.listing();
    const st = statfsSync(s.bootDir);
    const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;
    const need = 600 * 1024 + 64 * 1024;
    const r = s.cli(['admin', 'deploy', 'os/big']);
    expectArborError(
      r,
      1,
      'E_NO_SPACE',
      `/boot has ${mib(Number(st.bfree) * Number(st.bsize))} free, the new kernel and initramfs need ${mib(need)}`,
    );
    expect(s.listing()).toEqual(before);
    expect(s.bootSetProblems()).toEqual([]);
    unlinkSync(filler);
    const ok = s.cli(['admin', 'deploy', 'os/big']);
    expect(ok).toMatchObject({ exitCode: 0, stdout: `deployed os ${big.checksum}.0 (version 2)\n` });
    expect(s.kernelDirs()).toHaveLength(2);
    expect(s.bootSetProblems()).toEqual([]);
  });
});
