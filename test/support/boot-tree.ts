// Bootable OS trees for QEMU tests: static busybox in /usr, the test kernel and initramfs in
// /usr/lib/modules/KVER, and a /sbin/init that prints what the booted system sees as ARBOR-*
// markers on the console (which deployment, is /usr read-only, what /etc and /var hold), then powers off.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestKernel } from './kernel.js';
import { hasCommand, runTool } from './tool.js';

/** Where the test reads what an admin wrote into /etc (an ARBOR-ETC marker) and /var (ARBOR-VAR). */
export const ETC_MARKER_FILE = 'etc/arbor-test-marker';
export const VAR_MARKER_FILE = 'var/arbor-test-marker';

/** The static busybox of busybox-static (ARBOR_BUSYBOX overrides); throws if it is dynamically linked. */
export function staticBusybox(): string {
  const path = process.env.ARBOR_BUSYBOX ?? '/usr/bin/busybox';
  // A dynamic ELF names its loader (PT_INTERP) in the first page; the guests have no libc.
  if (readFileSync(path).subarray(0, 4096).includes('/lib64/ld-linux')) {
    throw new Error(`${path} is dynamically linked; install busybox-static`);
  }
  return path;
}

/** True when a static busybox is available (see staticBusybox). */
function hasStaticBusybox(): boolean {
  try {
    staticBusybox();
    return true;
  } catch {
    return false; // missing or dynamic: either way no boot test can run
  }
}

/** Applet names the static busybox provides (`busybox --list`). */
export function busyboxApplets(): string[] {
  return runTool(staticBusybox(), ['--list'])
    .split('\n')
    .filter((name) => /^[A-Za-z0-9_.[-]+$/.test(name));
}

export interface BootTreeOptions {
  kernel: TestKernel;
  /** The initramfs installed as /usr/lib/modules/KVER/initramfs.img (buildBusyboxInitramfs). */
  initramfsPath: string;
  /** Baked into /sbin/init (ARBOR-VERSION=…) and os-release, so trees of two versions differ. */
  version: string;
}

/** The test /sbin/init: markers in a fixed order, ending with ARBOR-DONE, then poweroff. */
function renderInit(version: string): string {
  return `#!/bin/sh
# Arbor boot-test init (test/support/boot-tree.ts): reports what the booted deployment sees.
export PATH=/usr/bin:/usr/sbin
[ -e /proc/cmdline ] || mount -t proc proc /proc
echo "ARBOR-VERSION=${version}"
echo "ARBOR-CMDLINE $(cat /proc/cmdline)"
arg=
set -f
for word in $(cat /proc/cmdline); do
  case $word in arbor=*) arg=\${word#arbor=} ;; esac
done
set +f
deployment=$(readlink -f "/sysroot$arg")
name=\${deployment##*/}
echo "ARBOR-BOOTED commit=\${name%.*} serial=\${name##*.}"
# The root mount's source path within its filesystem: the deployment dir, whatever the cmdline says.
echo "ARBOR-ROOT-MOUNT $(awk '$5 == "/" { print $4 }' /proc/self/mountinfo | tail -n 1)"
if touch /usr/.arbor-rw-probe 2>/dev/null; then
  rm -f /usr/.arbor-rw-probe
  echo "ARBOR-USR-RO=no"
else
  echo "ARBOR-USR-RO=yes"
fi
if echo probe >/etc/.arbor-rw-probe 2>/dev/null; then rm -f /etc/.arbor-rw-probe; echo "ARBOR-ETC-RW=yes"; else echo "ARBOR-ETC-RW=no"; fi
echo "ARBOR-ETC marker=$(cat /${ETC_MARKER_FILE} 2>/dev/null || echo none)"
echo "ARBOR-VAR marker=$(cat /${VAR_MARKER_FILE} 2>/dev/null || echo none)"
echo "ARBOR-DONE"
sync
poweroff -f
`;
}

/**
 * Writes a bootable OS tree into DIR (which must exist, empty) as a commit would hold it: merged
 * /usr (bin, sbin, lib are symlinks into it), defaults in /usr/etc and no /etc, empty /var,
 * /sysroot, /dev, /proc, /sys, /run, /tmp, /boot, and the kernel and initramfs in
 * /usr/lib/modules/KVER/{vmlinuz,initramfs.img}.
 */
export function writeBootTree(dir: string, options: BootTreeOptions): void {
  const { kernel, version } = options;
  if (!/^[A-Za-z0-9._+~-]+$/.test(version)) throw new Error(`boot tree version '${version}' must be a plain word`);
  for (const sub of [
    'usr/bin',
    'usr/sbin',
    'usr/etc',
    `usr/lib/modules/${kernel.kver}`,
    'var',
    'sysroot',
    'dev',
    'proc',
    'sys',
    'run',
    'tmp',
    'boot',
  ]) {
    mkdirSync(join(dir, sub), { recursive: true });
  }
  chmodSync(join(dir, 'tmp'), 0o1777);
  for (const [link, target] of [
    ['bin', 'usr/bin'],
    ['sbin', 'usr/sbin'],
    ['lib', 'usr/lib'],
  ] as const)
    symlinkSync(target, join(dir, link));

  copyFileSync(staticBusybox(), join(dir, 'usr/bin/busybox'));
  chmodSync(join(dir, 'usr/bin/busybox'), 0o755);
  // The booted /usr is read-only: every applet link must exist beforehand.
  for (const applet of busyboxApplets()) if (applet !== 'busybox') symlinkSync('busybox', join(dir, 'usr/bin', applet));
  writeFileSync(join(dir, 'usr/sbin/init'), renderInit(version), { mode: 0o755 });

  copyFileSync(kernel.vmlinuzPath, join(dir, 'usr/lib/modules', kernel.kver, 'vmlinuz'));
  copyFileSync(options.initramfsPath, join(dir, 'usr/lib/modules', kernel.kver, 'initramfs.img'));
  writeFileSync(
    join(dir, 'usr/lib/os-release'),
    `NAME="Arbor Test OS"\nID=arbor-test\nVERSION_ID=${version}\nPRETTY_NAME="Arbor Test OS ${version}"\n`,
  );
  symlinkSync('../lib/os-release', join(dir, 'usr/etc/os-release'));
  writeFileSync(join(dir, 'usr/etc/hostname'), 'arbor-test\n');
}

/** True when `busybox` tooling for boot trees is present (static busybox and GNU cpio). */
export function hasBootTreeTooling(): boolean {
  return hasStaticBusybox() && hasCommand('cpio');
}

/** What a booted boot tree reported (see renderInit); fields are null when their marker is absent. */
export interface BootMarkers {
  version: string | null;
  /** The kernel command line the guest got (bootloaders add to it: systemd-boot `initrd=`, GRUB `BOOT_IMAGE=`). */
  cmdline: string | null;
  /** The CHECKSUM of the deployment directory arbor= resolved to, and its SERIAL. */
  commit: string | null;
  serial: string | null;
  /** The root mount's path within the physical root, e.g. `/arbor/deploy/os/deploy/CHECKSUM.0`. */
  rootMount: string | null;
  usrReadOnly: boolean | null;
  etcWritable: boolean | null;
  etcMarker: string | null;
  varMarker: string | null;
  /** The init got to its last marker. */
  done: boolean;
  /** The first ARBOR-FAIL line (initramfs or arbor-prepare-root), if any. */
  failure: string | null;
}

/** Reads the ARBOR-* markers from a serial console transcript (CRLF or LF). */
export function parseBootMarkers(output: string): BootMarkers {
  const text = output.replaceAll('\r', '');
  const one = (re: RegExp): string | null => re.exec(text)?.[1] ?? null;
  const flag = (re: RegExp): boolean | null => {
    const v = one(re);
    return v === null ? null : v === 'yes';
  };
  return {
    version: one(/^ARBOR-VERSION=(\S+)$/m),
    cmdline: one(/^ARBOR-CMDLINE (.*)$/m),
    commit: one(/^ARBOR-BOOTED commit=(\S*) /m),
    serial: one(/^ARBOR-BOOTED commit=\S* serial=(\S*)$/m),
    rootMount: one(/^ARBOR-ROOT-MOUNT (\S+)$/m),
    usrReadOnly: flag(/^ARBOR-USR-RO=(yes|no)$/m),
    etcWritable: flag(/^ARBOR-ETC-RW=(yes|no)$/m),
    etcMarker: one(/^ARBOR-ETC marker=(.*)$/m),
    varMarker: one(/^ARBOR-VAR marker=(.*)$/m),
    done: /^ARBOR-DONE$/m.test(text),
    failure: one(/(ARBOR-FAIL.*)$/m),
  };
}

/** Matches once the boot tree's init finished or the initramfs gave up: what BootOptions.marker wants. */
export const BOOT_END_MARKER = /^ARBOR-DONE\r?$|ARBOR-FAIL.*\n/m;
