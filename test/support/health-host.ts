// data/health/arbor-health run on the host under busybox sh (seconds, no QEMU): a sysroot laid out
// just enough for it (deployments, boot.1 links, var), ESP-like and sysroot entry directories, a
// health.d and a reboot stand-in, each case in its own directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll } from 'vitest';
import { busyboxApplets, staticBusybox } from './boot-tree.js';
import { useTempDir } from './temp.js';
import { ARBOR_HEALTH_SCRIPT, FAILING_CHECK_OUTPUT } from './trial-tree.js';

/** The stateroot of every case. */
export const HEALTH_STATEROOT = 'os';

interface MiniSysroot {
  root: string;
  /** arbor= argument of each deployment, by name. */
  args: Map<string, string>;
  deployments: Map<string, string>;
  failures: string;
}

export interface HealthCase {
  dir: string;
  s: MiniSysroot;
  /** The bootloader's entries (DIR/esp/loader/entries) and the sysroot's copies. */
  esp: string;
  copies: string;
  checks: string;
  grubenv: string;
}

export interface HealthRun {
  status: number | null;
  stdout: string;
  stderr: string;
  rebooted: boolean;
}

const fakeChecksum = (name: string): string => name.charCodeAt(0).toString(16).padStart(2, '0').repeat(32);

function miniSysroot(dir: string, names: readonly string[]): MiniSysroot {
  const root = join(dir, 'sysroot');
  const args = new Map<string, string>();
  const deployments = new Map<string, string>();
  mkdirSync(join(root, 'arbor/deploy', HEALTH_STATEROOT, 'var'), { recursive: true });
  mkdirSync(join(root, 'arbor/boot.1', HEALTH_STATEROOT, 'bootcsum'), { recursive: true });
  names.forEach((name, i) => {
    const deployment = `${fakeChecksum(name)}.0`;
    mkdirSync(join(root, 'arbor/deploy', HEALTH_STATEROOT, 'deploy', deployment), { recursive: true });
    symlinkSync(
      `../../../deploy/${HEALTH_STATEROOT}/deploy/${deployment}`,
      join(root, 'arbor/boot.1', HEALTH_STATEROOT, 'bootcsum', String(i)),
    );
    args.set(name, `/arbor/boot.1/${HEALTH_STATEROOT}/bootcsum/${i}`);
    deployments.set(name, deployment);
  });
  return {
    root,
    args,
    deployments,
    failures: join(root, 'arbor/deploy', HEALTH_STATEROOT, 'var/lib/arbor/trial-failures'),
  };
}

/** The text of a BLS entry for deployment NAME booted with arbor=ARG. */
export const entryText = (name: string, arg: string, extraOption = ''): string =>
  `title Test ${name}\nversion 1\nsort-key arbor-${HEALTH_STATEROOT}\nlinux /arbor/${HEALTH_STATEROOT}-k/vmlinuz\ninitrd /arbor/${HEALTH_STATEROOT}-k/initramfs.img\noptions root=LABEL=sysroot rw${extraOption} ${'arbor='}${arg}\n`;

export const putFile = (dir: string, file: string, text: string): void => writeFileSync(join(dir, file), text);
export const fileNames = (dir: string): string[] => readdirSync(dir).sort();

/** Registers the hooks of a describe block running arbor-health; the returned helpers work in its tests. */
export function useHealthHost(prefix = 'arbor-health-'): {
  /** The directory holding busybox and its applets: the PATH arbor-health runs with. */
  readonly bin: string;
  setup(names: readonly string[]): HealthCase;
  run(c: HealthCase, booted: string, entryDirs: readonly string[]): HealthRun;
  /** Writes health.d/10-check, passing or failing with FAILING_CHECK_OUTPUT. */
  check(c: HealthCase, passes: boolean): void;
  /** The failure record of deployment NAME. */
  record(c: HealthCase, name: string): string;
} {
  const tmp = useTempDir(prefix);
  let n = 0;
  beforeAll(() => {
    // Only busybox's applets on PATH, as in the guest.
    const bin = join(tmp.path, 'bin');
    mkdirSync(bin);
    symlinkSync(staticBusybox(), join(bin, 'busybox'));
    for (const applet of busyboxApplets()) if (applet !== 'busybox') symlinkSync('busybox', join(bin, applet));
  });
  return {
    get bin() {
      return join(tmp.path, 'bin');
    },
    setup(names) {
      const dir = join(tmp.path, `case-${n++}`);
      mkdirSync(dir);
      const s = miniSysroot(dir, names);
      const esp = join(dir, 'esp/loader/entries');
      const copies = join(s.root, 'boot/loader/entries');
      const checks = join(dir, 'health.d');
      for (const d of [esp, copies, checks]) mkdirSync(d, { recursive: true });
      return { dir, s, esp, copies, checks, grubenv: join(s.root, 'boot/grub/grubenv') };
    },
    run(c, booted, entryDirs) {
      const bin = join(tmp.path, 'bin');
      const cmdline = join(c.dir, 'cmdline');
      writeFileSync(cmdline, `BOOT_IMAGE=/vmlinuz root=LABEL=sysroot rw arbor=${c.s.args.get(booted)}\n`);
      const marker = join(c.dir, 'rebooted');
      rmSync(marker, { force: true });
      writeFileSync(join(c.dir, 'reboot'), `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
      const r = spawnSync(join(bin, 'sh'), [ARBOR_HEALTH_SCRIPT], {
        encoding: 'utf8',
        timeout: 60_000, // a hung run ends as status null
        env: {
          PATH: bin,
          ARBOR_CMDLINE_FILE: cmdline,
          ARBOR_SYSROOT: c.s.root,
          ARBOR_ENTRY_DIRS: entryDirs.join(' '),
          ARBOR_GRUBENV: c.grubenv,
          ARBOR_HEALTH_DIRS: c.checks,
          ARBOR_HEALTH_TIMEOUT: '5',
          ARBOR_REBOOT: join(c.dir, 'reboot'),
        },
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, rebooted: existsSync(marker) };
    },
    check(c, passes) {
      writeFileSync(
        join(c.checks, '10-check'),
        passes ? '#!/bin/sh\necho fine\n' : `#!/bin/sh\necho "${FAILING_CHECK_OUTPUT}"\nexit 3\n`,
        { mode: 0o755 },
      );
    },
    record(c, name) {
      return readFileSync(join(c.s.failures, c.s.deployments.get(name) as string), 'utf8');
    },
  };
}
