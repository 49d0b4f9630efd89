// Boot entries and kernels mirrored onto the EFI System Partition (`[sysroot] esp=/efi`) through
// the CLI, on a loop-mounted FAT file system where the kernel has vfat (this machine's does not:
// there, a directory stands in): after deploy, upgrade to a new kernel, a trial, rollback and cleanup the ESP
// shows the sysroot's boot set (same entries, same order, counters) and holds exactly the kernels
// it names; a missing ESP is refused before anything is written; and a deploy killed at random
// moments leaves an ESP whose visible entries name kernels and deployments that exist, brought
// up to the sysroot's set by the next command.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BootEntry, readBootEntries, readBootEntriesEsp } from '../../src/bootloader/index.js';
import { ARBOR, IS_ROOT, sh } from '../support/cli.js';
import { type Commit, STATEROOT, TestSysroot } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand } from '../support/tool.js';
import { filledInBeforeAll } from '../support/filled-later.js';

const HEALTH = { 'usr/lib/arbor/arbor-health': { data: '#!/bin/sh\nexit 0\n', mode: 0o755 } };
const SEED = Number(process.env.SEED ?? Date.now() % 1_000_000_007);
const KILLS = Number(process.env.ARBOR_ESP_KILLS ?? 10);
const HAVE_VFAT = existsSync('/proc/filesystems') && /\svfat$/m.test(readFileSync('/proc/filesystems', 'utf8'));

/** What the ESP must repeat of an entry, and its counter. */
const shape = (e: BootEntry): unknown => ({
  title: e.title,
  version: e.version,
  sortKey: e.sortKey,
  linux: e.linux,
  initrd: e.initrd,
  options: e.options,
  tries: e.tries ?? null,
});

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

describe.skipIf(!IS_ROOT)(
  `boot entries on the ESP (${HAVE_VFAT && hasCommand('mkfs.vfat') ? 'FAT' : 'a directory'}, SEED=${SEED})`,
  () => {
    const tmp = useTempDir('arbor-esp-');
    const mounts: string[] = [];
    let template: TestSysroot;
    const c = filledInBeforeAll<Record<string, Commit>>();
    let copies = 0;

    /** A copy of the template sysroot with a fresh ESP at SYSROOT/efi (FAT when possible) and `[sysroot] esp=/efi`. */
    const fresh = (): TestSysroot => {
      const s = template.copyTo(join(tmp.path, `sysroot-${copies++}`));
      const path = s.path;
      mkdirSync(join(path, 'efi'));
      if (HAVE_VFAT && hasCommand('mkfs.vfat')) {
        const image = `${path}.esp.img`;
        sh(
          `truncate -s 48M '${image}' && PATH=$PATH:/usr/sbin:/sbin mkfs.vfat -F 32 -n ESP '${image}' >/dev/null && mount -t vfat -o loop '${image}' '${join(path, 'efi')}'`,
        );
        mounts.push(join(path, 'efi'));
      }
      appendFileSync(join(path, 'arbor/repo/config'), '\n[sysroot]\nesp=/efi\n');
      return s;
    };
    const esp = (s: TestSysroot): string => join(s.path, 'efi');
    const espKernels = (s: TestSysroot): string[] => readdirSync(join(esp(s), 'arbor')).sort();
    const namedKernels = (entries: readonly BootEntry[]): string[] =>
      [...new Set(entries.map((e) => /^\/arbor\/([^/]+)\//.exec(e.linux)?.[1] as string))].sort();

    /** The ESP shows the sysroot's boot set, with exactly the kernels it names, byte-identical to /boot's. */
    function expectInStep(s: TestSysroot): void {
      const sysrootEntries = readBootEntries(s.bootDir);
      const espEntries = readBootEntriesEsp(esp(s));
      expect(espEntries.map(shape)).toEqual(sysrootEntries.map(shape));
      expect(espKernels(s)).toEqual(namedKernels(sysrootEntries));
      for (const dir of espKernels(s)) {
        for (const file of ['vmlinuz', 'initramfs.img'])
          expect(
            readFileSync(join(esp(s), 'arbor', dir, file)).equals(readFileSync(join(s.bootDir, 'arbor', dir, file))),
          ).toBe(true);
      }
    }

    beforeAll(() => {
      template = TestSysroot.create(join(tmp.path, 'template'));
      const trees = join(tmp.path, 'trees');
      c.v1 = template.commit('os/main', { version: '1' }, trees);
      c.v2 = template.commit('os/two', { version: '2', kernel: 'kernel two\n' }, trees);
      c.v3 = template.commit('os/three', { version: '3', kernel: 'kernel three\n', files: HEALTH }, trees);
    });
    afterAll(() => {
      for (const m of mounts.reverse()) sh(`umount '${m}' || umount -l '${m}'`);
    });

    it('mirrors deploy, an upgrade to a new kernel, a trial, rollback and cleanup onto the ESP', () => {
      const s = fresh();
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      expectInStep(s);
      expect(readdirSync(join(esp(s), 'loader/entries'))).toEqual(['arbor-os-g0-0.conf']);
      s.ok('deploy', 'os/two');
      expectInStep(s);
      expect(espKernels(s)).toHaveLength(2);
      s.ok('deploy', 'os/three'); // ships arbor-health: on trial by default
      expectInStep(s);
      // On trial first, the last good deployment second (v1, neither booted nor the previous default, went).
      expect(readdirSync(join(esp(s), 'loader/entries')).sort()).toEqual([
        'arbor-os-g2-0.conf',
        'arbor-os-g2-1+3.conf',
      ]);
      s.ok('rollback');
      expectInStep(s);
      s.ok('cleanup', '--rollback');
      expectInStep(s);
      expect(espKernels(s)).toHaveLength(1);
    });

    it('removes the kernels a deploy killed after the ESP switch left behind', () => {
      const s = fresh();
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      s.ok('deploy', 'os/two');
      // What a kill between the entries' switch and the removal of unused kernels leaves: a complete
      // kernel directory no entry names, and a half-made copy.
      const named = espKernels(s)[0] as string;
      sh(`cp -a '${join(esp(s), 'arbor', named)}' '${join(esp(s), 'arbor', 'os-left-behind')}'`);
      mkdirSync(join(esp(s), 'arbor', 'os-half-made.tmp'));
      s.ok('cleanup');
      expectInStep(s);
    });

    it('refuses when the ESP is not there, before writing anything', () => {
      const s = fresh();
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      if (mounts.includes(esp(s))) {
        sh(`umount '${esp(s)}'`);
        mounts.splice(mounts.indexOf(esp(s)), 1);
      }
      sh(`rm -rf '${esp(s)}'`);
      const before = s.listing();
      const r = s.cli(['deploy', 'os/two']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(
        /^error\[E_ESP_MISSING\]: \[sysroot\] esp names '\/efi', which is not a directory in the sysroot/,
      );
      expect(s.listing()).toEqual(before);
    });

    it(`keeps a bootable ESP when deploys are killed at random moments (${KILLS} kills)`, async () => {
      const s = fresh();
      s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
      const random = rng(SEED);
      const targets = ['os/two', 'os/three', 'os/main'];
      let killed = 0;
      for (let k = 0; k < KILLS; k++) {
        const target = targets[k % targets.length] as string;
        const delayMs = Math.floor(random() * 900);
        await new Promise<void>((resolve) => {
          const child = spawn(process.execPath, [ARBOR, 'deploy', '--trial-tries', '0', target, '--sysroot', s.path], {
            stdio: 'ignore',
          });
          const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
          child.on('exit', (_code, signal) => {
            clearTimeout(timer);
            if (signal === 'SIGKILL') killed++;
            resolve();
          });
        });
        // What systemd-boot would see now: a complete set whose kernels and deployments exist.
        const shown = readBootEntriesEsp(esp(s));
        expect(shown.length, `kill ${k} after ${delayMs} ms`).toBeGreaterThan(0);
        for (const e of shown) {
          for (const path of [e.linux, e.initrd as string])
            expect(existsSync(join(esp(s), path)), `kill ${k}: ${path}`).toBe(true);
          const arg = /(?:^| )arbor=(\S+)/.exec(e.options)?.[1] as string;
          expect(existsSync(realpathSync(join(s.path, arg))), `kill ${k}: ${arg}`).toBe(true);
        }
        // The next command brings the ESP up to the sysroot's set.
        s.ok('cleanup');
        expectInStep(s);
      }
      console.log(`ESP kills (SEED=${SEED}): ${killed} of ${KILLS} deploys killed before they finished`);
      expect(killed).toBeGreaterThan(0);
    }, 300_000);
  },
);
