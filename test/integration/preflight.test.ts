// The preflight a new deployment passes before it becomes the default (issue 7), and trial boots
// by default, through the built CLI on real sysroots: a broken init (dangling or looping link,
// not executable, a script or ELF binary whose interpreter is missing, init=), a broken
// /usr/lib/systemd/systemd, an empty initramfs, kernel modules loaded now but missing from a tree
// with the same kernel, several problems in one report; each refusal changes nothing.
import { readFileSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../support/cli.js';
import { type Commit, KVER, type OsTreeSpec, STATEROOT, TestSysroot } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { filledInBeforeAll } from '../support/filled-later.js';

const MODULES = `usr/lib/modules/${KVER}`;
/** Modules of the trees: vfat (compressed), snd-hda-intel (dashes in the file name), ext4 built in. */
const WITH_MODULES: OsTreeSpec['files'] = {
  [`${MODULES}/kernel/fs/fat/vfat.ko.xz`]: 'vfat module\n',
  [`${MODULES}/kernel/sound/pci/hda/snd-hda-intel.ko.zst`]: 'snd module\n',
  [`${MODULES}/modules.builtin`]: 'kernel/fs/ext4/ext4.ko\n',
};
const { [`${MODULES}/kernel/fs/fat/vfat.ko.xz`]: _vfat, ...WITHOUT_VFAT } = WITH_MODULES ?? {};
/** /proc/modules of the running system: vfat and snd_hda_intel from the tree, ext4 built in, nvidia from elsewhere. */
const PROC_MODULES = [
  'vfat 24576 1 - Live 0x0000000000000000',
  'snd_hda_intel 61440 0 - Live 0x0000000000000000',
  'nvidia 56823808 0 - Live 0x0000000000000000 (POE)',
  '',
].join('\n');
const HEALTH = { 'usr/lib/arbor/arbor-health': { data: '#!/bin/sh\nexit 0\n', mode: 0o755 } };
const X86_64_LOADER = '/lib64/ld-linux-x86-64.so.2';

describe.skipIf(!IS_ROOT)('the preflight of a new deployment', () => {
  const tmp = useTempDir('arbor-preflight-');
  let template: TestSysroot;
  const c = filledInBeforeAll<Record<string, Commit>>();
  let copies = 0;
  const fresh = (): TestSysroot => template.copyTo(join(tmp.path, `sysroot-${copies++}`));

  beforeAll(() => {
    template = TestSysroot.create(join(tmp.path, 'template'));
    const trees = join(tmp.path, 'trees');
    const commit = (name: string, spec: Omit<OsTreeSpec, 'version'> = {}): void => {
      c[name] = template.commit(`os/${name}`, { version: name, ...spec }, trees);
    };
    commit('good1', { files: WITH_MODULES });
    commit('good2', { files: { ...WITH_MODULES, 'usr/lib/good2': 'two\n' } });
    commit('lacksVfat', { files: WITHOUT_VFAT });
    commit('danglingInit', { noInit: true, files: { 'usr/sbin/init': { link: '../lib/systemd/systemd' } } });
    commit('loopInit', { noInit: true, files: { 'usr/sbin/init': { link: '/sbin/init' } } });
    commit('plainInit', { noInit: true, files: { 'usr/sbin/init': { data: '#!/bin/sh\n', mode: 0o644 } } });
    commit('noInterpreter', {
      noInit: true,
      files: { 'usr/sbin/init': { data: '#!/usr/bin/bash -e\nexec true\n', mode: 0o755 } },
    });
    commit('elfInit', {
      noInit: true,
      files: { 'usr/sbin/init': { data: readFileSync('/usr/bin/true'), mode: 0o755 } },
    });
    commit('elfInitOk', {
      noInit: true,
      files: {
        'usr/sbin/init': { data: readFileSync('/usr/bin/true'), mode: 0o755 },
        lib64: { link: 'usr/lib64' },
        [`usr${X86_64_LOADER}`]: { data: 'the loader\n', mode: 0o755 },
      },
    });
    commit('systemdInit', {
      noInit: true,
      files: {
        'usr/sbin/init': { link: '../lib/systemd/systemd' },
        'usr/lib/systemd/systemd': { data: '#!/bin/sh\n', mode: 0o755 },
      },
    });
    commit('systemdDangling', { files: { 'usr/lib/systemd/systemd': { link: 'systemd-252' } } });
    commit('emptyInitramfs', { initramfs: '' });
    commit('twoProblems', { initramfs: '', noInit: true, files: { 'usr/sbin/init': { link: 'nowhere' } } });
    commit('health1', { files: HEALTH });
    commit('health2', { files: { ...HEALTH, 'usr/lib/two': '2\n' } });
    commit('health3', { files: { ...HEALTH, 'usr/lib/three': '3\n' } });
  });

  /** A sysroot with good1 deployed. */
  const withGood1 = (): TestSysroot => {
    const s = fresh();
    s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/good1');
    return s;
  };

  /** Deploys REV expecting the preflight to refuse it; returns stderr after checking nothing changed. */
  const refused = (s: TestSysroot, rev: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): string => {
    const before = s.listing();
    const names = s.deployNames();
    const r = s.cli(['admin', 'deploy', ...extra, rev], env);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^error\[E_PREFLIGHT_FAILED\]: preflight refused deployment os [0-9a-f]{64}\.0: \d problems?\n/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(s.listing()).toEqual(before);
    expect(s.deployNames()).toEqual(names);
    return r.stderr;
  };

  it.each([
    [
      'danglingInit',
      '  init: /sbin/init cannot be started: /usr/lib/systemd does not exist\n    link /sbin -> usr/sbin\n    link /usr/sbin/init -> ../lib/systemd/systemd\n',
    ],
    ['loopInit', '  init: /sbin/init cannot be started: more than 40 links (a loop)\n'],
    ['plainInit', '  init: /sbin/init cannot be started: /sbin/init is not executable (mode 0644)\n'],
    [
      'noInterpreter',
      '  init: /sbin/init cannot be started: its interpreter /usr/bin/bash cannot run: /usr/bin/bash does not exist\n',
    ],
    [
      'systemdDangling',
      '  init: /usr/lib/systemd/systemd cannot be started: /usr/lib/systemd/systemd-252 does not exist\n    link /usr/lib/systemd/systemd -> systemd-252\n',
    ],
    ['emptyInitramfs', `  kernel: the initramfs of kernel ${KVER} is empty\n`],
  ])('refuses %s with a report naming the problem, and changes nothing', (name, report) => {
    const s = withGood1();
    expect(refused(s, `os/${name}`)).toContain(report);
  });

  it.skipIf(arch() !== 'x64')(
    'refuses an ELF init whose dynamic loader is missing, and accepts it once the loader is there',
    () => {
      const s = withGood1();
      expect(refused(s, 'os/elfInit')).toContain(
        `  init: /sbin/init cannot be started: its interpreter ${X86_64_LOADER} cannot run: /lib64 does not exist\n`,
      );
      expect(s.cli(['admin', 'deploy', 'os/elfInitOk'])).toMatchObject({ exitCode: 0, stderr: '' });
    },
  );

  it('follows /sbin/init through absolute and relative links to systemd', () => {
    const s = withGood1();
    expect(s.cli(['admin', 'deploy', 'os/systemdInit'])).toMatchObject({ exitCode: 0, stderr: '' });
  });

  it('reports every problem of a tree at once', () => {
    const err = refused(withGood1(), 'os/twoProblems');
    expect(err.split('\n')[0]).toMatch(/: 2 problems$/);
    expect(err).toContain(`  kernel: the initramfs of kernel ${KVER} is empty\n`);
    expect(err).toContain('  init: /sbin/init cannot be started: /usr/sbin/nowhere does not exist\n');
    expect(err).toContain('hint: fix the tree and compose again; --no-preflight deploys it anyway\n');
  });

  it('checks the init named by init= instead of /sbin/init', () => {
    const s = withGood1();
    expect(s.cli(['admin', 'deploy', '--karg', 'init=/usr/bin/hello', 'os/danglingInit'])).toMatchObject({
      exitCode: 0,
      stderr: '',
    });
    expect(refused(s, 'os/good2', ['--karg', 'init=/usr/bin/missing'])).toContain(
      '  init: init=/usr/bin/missing cannot be started: /usr/bin/missing does not exist\n',
    );
  });

  it('deploys a refused tree with --no-preflight, and says in --json that it did not check', () => {
    const s = withGood1();
    const r = s.cli(['admin', 'deploy', '--no-preflight', '--json', 'os/danglingInit']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ preflight: null, deployment: { checksum: c.danglingInit?.checksum } });
  });

  describe('kernel modules the running system has loaded', () => {
    const running = (s: TestSysroot, release = KVER): NodeJS.ProcessEnv => {
      const file = join(tmp.path, `proc-modules-${copies++}`);
      writeFileSync(file, PROC_MODULES);
      return { ...s.bootedEnv(0, tmp.path), ARBOR_PROC_MODULES: file, ARBOR_KERNEL_RELEASE: release };
    };

    it('refuses a tree with the running kernel version that lacks a loaded module (names with - and _ match; built-in and foreign modules do not count)', () => {
      const s = withGood1();
      const err = refused(s, 'os/lacksVfat', [], running(s));
      expect(err).toContain(
        `  modules: 1 kernel module loaded now is missing from /usr/lib/modules/${KVER} of the new tree (same kernel ${KVER})\n    vfat\n`,
      );
    });

    it('passes a tree that keeps every loaded module', () => {
      const s = withGood1();
      const r = s.cli(['admin', 'deploy', '--json', 'os/good2'], running(s));
      expect(r.exitCode, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).preflight).toEqual({
        problems: [],
        passed: ['kernel', 'init', 'modules', 'etc-conflicts'],
        skipped: [],
      });
    });

    it('does not compare modules when the kernel changes, or when the sysroot is not the running system', () => {
      const s = withGood1();
      const other = s.cli(['admin', 'deploy', '--json', 'os/lacksVfat'], running(s, '6.2.0-other'));
      expect(other.exitCode, other.stderr).toBe(0);
      expect(JSON.parse(other.stdout).preflight.skipped).toEqual([
        { check: 'modules', why: `the kernel changes (6.2.0-other -> ${KVER})` },
      ]);
      const t = withGood1();
      const image = t.cli(['admin', 'deploy', '--json', 'os/lacksVfat']);
      expect(image.exitCode, image.stderr).toBe(0);
      expect(JSON.parse(image.stdout).preflight.skipped).toEqual([
        { check: 'modules', why: 'the sysroot is not the running system' },
      ]);
    });
  });

  describe('trial boots by default', () => {
    const entries = (s: TestSysroot): string[] => readdirSync(join(s.bootDir, 'loader', 'entries')).sort();

    it('puts a deployment whose tree ships arbor-health on trial with 3 tries; the first deployment of a sysroot is not', () => {
      const s = fresh();
      const first = s.cli(['admin', 'deploy', '--json', '--stateroot', STATEROOT, 'os/health1']);
      expect(first.exitCode, first.stderr).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({
        trialTries: null,
        trialNote: 'not on trial: there is no earlier deployment to fall back to',
      });
      const r = s.cli(['deploy', 'os/health2']);
      expect(r).toMatchObject({ exitCode: 0, stderr: '' });
      expect(r.stdout).toContain(
        'on trial: 3 tries; arbor-health blesses it when its checks pass, else the machine falls back\n',
      );
      expect(entries(s)).toEqual(['arbor-os-0.conf', 'arbor-os-1+3.conf']);
      expect(s.status().deployments.map((d) => (d as unknown as { trial?: unknown }).trial ?? null)).toEqual([
        { left: 3, done: 0 },
        null,
      ]);
    });

    it('upgrades on trial by default', () => {
      const s = fresh();
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/health1');
      // The deployment's origin is os/health1: move that ref to another commit and upgrade.
      s.repoCli('reset', 'os/health1', c.health3?.checksum as string);
      const r = s.cli(['upgrade']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain('on trial: 3 tries');
      expect(entries(s)).toEqual(['arbor-os-0.conf', 'arbor-os-1+3.conf']);
    });

    it('turns trials off with --trial-tries 0 and with [sysroot] trial-tries=0', () => {
      const s = fresh();
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/health1');
      expect(s.cli(['deploy', '--trial-tries', '0', 'os/health2'])).toMatchObject({
        exitCode: 0,
        stderr: '',
        stdout: expect.not.stringContaining('on trial'),
      });
      expect(entries(s)).toEqual(['arbor-os-0.conf', 'arbor-os-1.conf']);
      appendFileSync(join(s.repo, 'config'), '\n[sysroot]\ntrial-tries=0\n');
      expect(s.cli(['deploy', 'os/health3'])).toMatchObject({
        exitCode: 0,
        stdout: expect.not.stringContaining('on trial'),
      });
      expect(entries(s)).toEqual(['arbor-os-0.conf', 'arbor-os-1.conf']);
    });

    it('does not put a tree without arbor-health on trial by default, and warns when a trial is asked for anyway', () => {
      const s = withGood1();
      const plain = s.cli(['deploy', '--json', 'os/good2']);
      expect(plain.exitCode, plain.stderr).toBe(0);
      expect(JSON.parse(plain.stdout)).toMatchObject({
        trialTries: null,
        trialNote: 'not on trial: the new tree has no /usr/lib/arbor/arbor-health to bless it',
      });
      const asked = s.cli(['deploy', '--trial-tries', '2', 'os/lacksVfat']);
      expect(asked.exitCode, asked.stderr).toBe(0);
      expect(asked.stdout).toContain('on trial: 2 tries');
      expect(asked.stderr).toBe(
        'warning: the new tree has no /usr/lib/arbor/arbor-health: nothing will bless the trial, so it falls back after 2 boots unless another tool blesses it\n',
      );
      expect(entries(s)).toEqual(['arbor-os-0.conf', 'arbor-os-1+2.conf']);
    });
  });
});
