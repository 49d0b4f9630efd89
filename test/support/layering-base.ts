// The base OS the package layering tests layer onto: a few packages built by rpmbuild (user
// database, a busybox shell to run scriptlets, a kernel, a library), composed and deployed into a
// template sysroot that each test copies; and `rpm -qa` of a deployment as the real rpm reads it.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli } from './cli.js';
import { HAVE_CREATEREPO, HAVE_RPMBUILD, type PackageDef, makeRepo } from './rpmgen.js';
import { TestSysroot } from './sysroot.js';

const KVER = '6.1.0-1.test';
const BUSYBOX = '/bin/busybox';

/** Whether the base can be built here: rpmbuild, createrepo_c and a static busybox. */
export const HAVE_LAYERING_TOOLS = HAVE_RPMBUILD && HAVE_CREATEREPO && existsSync(BUSYBOX);

/** The base OS: user database, a shell to run scriptlets, a kernel, a library. */
/** A shell (busybox) as the base's /bin/sh and /sbin/init: shared by the layering tests' bases. */
export const SHELL_PACKAGE: PackageDef = {
  name: 'shell',
  version: '5.2',
  requires: ['setup'],
  files: {
    '/usr/bin/busybox': { copyOf: BUSYBOX, mode: 0o755 },
    '/bin/sh': { symlink: '../usr/bin/busybox' },
    '/sbin/init': { symlink: '../usr/bin/busybox' },
  },
};

/** A stand-in kernel and initramfs, so a base can be deployed. */
export const KERNEL_PACKAGE: PackageDef = {
  name: 'kernel',
  version: '6.1.0',
  release: '1.test',
  files: {
    [`/usr/lib/modules/${KVER}/vmlinuz`]: 'kernel image\n',
    [`/usr/lib/modules/${KVER}/initramfs.img`]: 'initramfs\n',
  },
};

export const BASE: PackageDef[] = [
  {
    name: 'setup',
    version: '2.14',
    files: {
      '/etc': { dir: true },
      '/etc/passwd': { content: 'root:x:0:0:root:/root:/bin/sh\n', config: true },
      '/etc/group': { content: 'root:x:0:\n', config: true },
      '/opt': { dir: true },
      '/var': { dir: true },
      '/var/lib': { dir: true },
    },
  },
  SHELL_PACKAGE,
  KERNEL_PACKAGE,
  { name: 'libcore', version: '2.0', provides: ['libcore.so.2'], files: { '/usr/lib64/libcore.so.2': 'library\n' } },
  { name: 'vim-minimal', version: '9.0', files: { '/usr/bin/vi': { content: '#!/bin/sh\n', mode: 0o755 } } },
];

/** `rpm -qa` of BASE, as NAME-VERSION-RELEASE. */
export const BASE_NEVRS = ['kernel-6.1.0-1.test', 'libcore-2.0-1', 'setup-2.14-1', 'shell-5.2-1', 'vim-minimal-9.0-1'];

/**
 * Builds BASE into the repository `dir/base`, composes it as `os/base` into a sysroot at
 * `dir/template` and deploys it; returns the sysroot and the base commit.
 */
export function makeBaseSysroot(dir: string): { template: TestSysroot; baseCommit: string } {
  makeRepo(join(dir, 'base'), BASE);
  const template = TestSysroot.create(join(dir, 'template'));
  const treefile = join(dir, 'os.yaml');
  writeFileSync(
    treefile,
    JSON.stringify({ ref: 'os/base', repos: [join(dir, 'base')], packages: BASE.map((p) => p.name) }),
  );
  const composed = runCli(['compose', 'tree', '--repo', template.repo, treefile]);
  expect(composed.exitCode, composed.stderr).toBe(0);
  template.ok('admin', 'deploy', '--stateroot', 'os', 'os/base');
  return { template, baseCommit: template.status().deployments[0]?.checksum as string };
}

/**
 * Composes `os/base` again into the sysroot's repository with `defs` (built into `dir/NAME`) over
 * the BASE packages; returns the new base commit.
 */
export function recomposeBase(s: TestSysroot, dir: string, name: string, defs: readonly PackageDef[]): string {
  makeRepo(join(dir, name), defs);
  const treefile = join(dir, `${name}.yaml`);
  writeFileSync(
    treefile,
    JSON.stringify({ ref: 'os/base', repos: [join(dir, name), join(dir, 'base')], packages: BASE.map((p) => p.name) }),
  );
  const composed = runCli(['compose', 'tree', '--repo', s.repo, treefile]);
  expect(composed.exitCode, composed.stderr).toBe(0);
  return s.repoCli('rev-parse', 'os/base');
}

/** The packages of the tree at `root` as the real rpm lists them (NAME-VERSION-RELEASE, sorted). */
export function rpmQa(root: string): string[] {
  const r = spawnSync(
    'rpm',
    ['--root', root, '--dbpath', '/usr/share/rpm', '-qa', '--qf', '%{NAME}-%{VERSION}-%{RELEASE}\n'],
    { encoding: 'utf8' },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').sort();
}
