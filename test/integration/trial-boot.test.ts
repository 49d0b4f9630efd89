// Boot-proven upgrades in QEMU. With the real CLI, a sysroot gets A, then `arbor upgrade`
// to B on trial (`[sysroot] trial-tries=2`); the disk image boots under OVMF + systemd-boot and
// again under SeaBIOS + GRUB, the trees' /sbin/init running data/health/arbor-health as
// arbor-health.service would. B passes its health check and is blessed, and the next boot is B
// without a counter. Then, on the disk itself (its root partition mounted on the host between two
// boots, as an admin's `arbor upgrade` on B would change it), an upgrade to C1 whose health check
// fails: C1 boots once, records the failure, reboots, and the machine boots B by itself; then an
// upgrade to C2 whose init dies before any check (a kernel panic; panic=-1 and qemu -no-reboot end
// the boot): after its 2 tries the machine boots B by itself; then an upgrade to C3 whose init
// hangs before any check with a watchdog armed (qemu's i6300esb powers the hung guest off): after
// its 2 tries, again B by itself. Between boots the test reads the ESP
// (mtools) or grubenv (the root partition mounted read-only) and each boot's serial console, and
// `arbor status` on the final disk, with B's command line, must report the failed trial and why.
// Power cuts (qemu killed) during the bless and during the fallback must leave a machine that
// boots the right deployment by itself. arbor-health's decisions are checked on the host, without
// QEMU, in arbor-health.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { grubTrialToken, parseGrubenv } from '../../src/bootloader/grub2.js';
import { parseBlsEntry } from '../../src/bootloader/bls.js';
import {
  buildBiosGrubDisk,
  buildUefiDisk,
  entryFiles,
  imageToolingMissing,
  listEsp,
  readBootEntries,
} from '../support/boot-image.js';
import { hasBootTreeTooling } from '../support/boot-tree.js';
import { IS_ROOT, arbor, runCli } from '../support/cli.js';
import { TEST_CACHE_DIR, type TestKernel, buildBusyboxInitramfs, fetchTestKernel } from '../support/kernel.js';
import { type BootResult, bootBios, bootUefi, hasQemuTooling } from '../support/qemu.js';
import { Random, seedFromEnv } from '../support/random.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand, runTool } from '../support/tool.js';
import {
  FAILING_CHECK_OUTPUT,
  HEALTH_CHECK_PATH,
  type TrialBehaviour,
  type TrialBootMarkers,
  TRIAL_END_MARKER,
  fetchFatModules,
  parseTrialMarkers,
  partitionOf,
  withPartitionMounted,
  writeTrialTree,
} from '../support/trial-tree.js';

const STATEROOT = 'os';
const REF = 'os/x86_64/test';
const KARGS = ['root=LABEL=sysroot', 'rw', 'console=ttyS0', 'quiet', 'panic=-1'];
const TRIES = 2;
const BOOT_TIMEOUT_MS = 300_000;
/** One boot plus what surrounds it (an image, a mount, an upgrade) on a busy machine. */
const STEP_TIMEOUT_MS = 420_000;
/** Steps of several boots. */
const MULTI_BOOT_TIMEOUT_MS = 4 * BOOT_TIMEOUT_MS;
const SETUP_TIMEOUT_MS = 900_000;
/** Draws the moments of the random power cuts; replay a failure with SEED=<seed>. */
const SEED = seedFromEnv();

const CAN_GET_KERNEL = existsSync(join(TEST_CACHE_DIR, 'kernel/current')) || hasCommand('apt-get');
// Root: bare repositories with root-owned checkouts, and loop mounts of the root partition.
const HAVE_BOOT_TOOLING =
  IS_ROOT &&
  hasQemuTooling() &&
  imageToolingMissing().length === 0 &&
  hasBootTreeTooling() &&
  CAN_GET_KERNEL &&
  hasCommand('mount');

// The entry file names arbor writes for two deployments (docs/deploy.md "Boot entries"): the
// default has the highest index and, on trial, the counter.
const DEFAULT_ENTRY = `arbor-${STATEROOT}-1`;
const OTHER_ENTRY = `arbor-${STATEROOT}-0.conf`;
const entryNames = (counter: string | null): string[] => [
  OTHER_ENTRY,
  `${DEFAULT_ENTRY}${counter === null ? '' : `+${counter}`}.conf`,
];

// ---------------------------------------------------------------------------------------------
// In QEMU

type Kind = 'uefi' | 'grub';

interface Commit {
  version: string;
  checksum: string;
}

interface Boot {
  result: BootResult;
  markers: TrialBootMarkers;
}

interface StatusJson {
  deployments: {
    index: number;
    role: string;
    checksum: string;
    serial: number;
    version: string | null;
    trial?: { left: number; done: number };
  }[];
  trialFailed: {
    stateroot: string;
    checksum: string;
    serial: number;
    version: string | null;
    when: number;
    reason: string;
    check?: string;
    output?: string;
    triesUsed: number;
  } | null;
  trialFailures: { checksum: string; reason: string }[];
}

const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' };

describe.skipIf(!HAVE_BOOT_TOOLING)(
  'trial boots in QEMU (TCG): bless, fallback after a failed check or a panic, power cuts',
  () => {
    const tmp = useTempDir('arbor-trial-boot-');
    let kernel: TestKernel;
    const trees = new Map<string, string>();

    beforeAll(async () => {
      kernel = await fetchTestKernel();
      const fat = fetchFatModules(kernel);
      const initrd = join(tmp.path, 'initramfs.img');
      buildBusyboxInitramfs(kernel, initrd);
      const behaviours: [string, TrialBehaviour][] = [
        ['A', 'healthy'],
        ['B', 'healthy'],
        ['C1', 'failing-check'],
        ['C2', 'panic'],
        ['C3', 'hang'],
      ];
      for (const [version, behaviour] of behaviours) {
        const dir = join(tmp.path, `tree-${version}`);
        mkdirSync(dir);
        writeTrialTree(dir, { kernel, initramfsPath: initrd, version, behaviour, fat });
        trees.set(version, dir);
      }
    }, SETUP_TIMEOUT_MS);

    describe.each([
      { kind: 'uefi' as Kind, title: 'OVMF + systemd-boot: trial counter in the ESP entry name' },
      { kind: 'grub' as Kind, title: 'SeaBIOS + GRUB: trial counter in grubenv' },
    ])('$title', ({ kind }) => {
      const commits = new Map<string, Commit>();
      let work = '';
      let disk = '';
      let bootCount = 0;
      /** B's command line as the last boot of B saw it: what status needs to know B is booted. */
      let bootedCmdline = '';
      /** Disk images saved at points of the sequence, for the power-cut tests. */
      const saved = new Map<string, string>();
      const timings: string[] = [];
      /** Per boot label: when the tree's init started (ms from qemu's start) and how long the boot took. */
      const bootTimes = new Map<string, { initAt: number; elapsed: number }>();

      const commit = (version: string, repo: string): Commit => {
        const checksum = arbor(
          'commit',
          '--repo',
          repo,
          '-b',
          REF,
          '-s',
          `Test OS ${version}`,
          '--tree',
          `dir=${trees.get(version)}`,
          '--owner-uid',
          '0',
          '--owner-gid',
          '0',
          '--add-metadata',
          `version=${version}`,
        );
        expect(checksum).toMatch(/^[0-9a-f]{64}$/);
        const c: Commit = { version, checksum };
        commits.set(version, c);
        return c;
      };
      const get = (version: string): Commit => commits.get(version) as Commit;
      const deploymentName = (version: string): string => `${get(version).checksum}.0`;

      /** One boot of DISK (default: the scenario's), its console kept in WORK/boot-N-LABEL.log. */
      async function boot(
        label: string,
        options: { disk?: string; marker?: RegExp; exitGraceMs?: number; timeoutMs?: number } = {},
      ): Promise<Boot> {
        const run = kind === 'uefi' ? bootUefi : bootBios;
        const start = Date.now();
        let initAt = -1;
        let seen = '';
        const onOutput = (chunk: string): void => {
          if (initAt >= 0) return;
          seen += chunk;
          if (/ARBOR-VERSION=/.test(seen)) initAt = Date.now() - start;
        };
        const result = await run(options.disk ?? disk, {
          marker: options.marker ?? TRIAL_END_MARKER,
          timeoutMs: options.timeoutMs ?? BOOT_TIMEOUT_MS,
          onOutput,
          watchdog: true, // armed only by a hanging init (C3)
          ...(options.exitGraceMs !== undefined ? { exitGraceMs: options.exitGraceMs } : {}),
        });
        if (!bootTimes.has(label) && initAt >= 0) bootTimes.set(label, { initAt, elapsed: result.elapsedMs });
        bootCount++;
        const log = `${kind}-boot-${String(bootCount).padStart(2, '0')}-${label}.log`;
        writeFileSync(join(work, log), result.output);
        // ARBOR_TRIAL_BOOT_LOGS=DIR keeps every console transcript after the run.
        if (process.env.ARBOR_TRIAL_BOOT_LOGS)
          writeFileSync(join(process.env.ARBOR_TRIAL_BOOT_LOGS, log), result.output);
        timings.push(`${label}: ${(result.elapsedMs / 1000).toFixed(1)} s`);
        console.log(
          `[${kind}] boot ${bootCount} ${label}: ${(result.elapsedMs / 1000).toFixed(1)} s${result.timedOut ? ' (killed by its timeout)' : ''}`,
        );
        return { result, markers: parseTrialMarkers(result.output) };
      }

      const context = (b: Boot): string =>
        `serial console (${b.result.elapsedMs} ms):\n${b.result.output.slice(-5000)}`;

      /** A boot that ran VERSION's init to the end (no reboot by arbor-health). */
      function expectBooted(b: Boot, version: string): void {
        const ctx = context(b);
        expect(b.result.timedOut, ctx).toBe(false);
        expect(b.markers.failure, ctx).toBeNull();
        expect(b.markers.version, ctx).toBe(version);
        expect(b.markers.commit, ctx).toBe(get(version).checksum);
        if (kind === 'uefi') {
          expect(b.markers.esp, ctx).toBe('/dev/vda1');
          expect(b.markers.cmdline, ctx).toMatch(/(^| )initrd=\\arbor\\/); // systemd-boot started it
        } else {
          expect(b.markers.esp, ctx).toBe('none');
          expect(b.markers.cmdline, ctx).toMatch(/^BOOT_IMAGE=\/boot\/arbor\//); // GRUB started it
        }
      }

      /** The entries the bootloader reads: the ESP's (uefi) or the sysroot's boot set (grub). */
      async function bootloaderEntries(d = disk): Promise<string[]> {
        if (kind === 'uefi') return listEsp(d, '/loader/entries');
        return withPartitionMounted(d, (mnt) => readdirSync(join(mnt, 'boot/loader/entries')).sort());
      }
      /** The sysroot's boot set entries (what `arbor status` reads). */
      const sysrootEntries = (d = disk): Promise<string[]> =>
        withPartitionMounted(d, (mnt) => readdirSync(join(mnt, 'boot/loader/entries')).sort());
      const grubenv = (d = disk): Promise<Map<string, string>> =>
        withPartitionMounted(d, (mnt) => parseGrubenv(readFileSync(join(mnt, 'boot/grub/grubenv'))));
      /** GRUB's token for the default entry of the sysroot's boot set (its deployment from its arbor= link). */
      const defaultToken = (d = disk): Promise<string> =>
        withPartitionMounted(d, (mnt) => {
          const dir = join(mnt, 'boot/loader/entries');
          const name = readdirSync(dir).find((f) => f.startsWith(`${DEFAULT_ENTRY}`)) as string;
          const entry = parseBlsEntry(readFileSync(join(dir, name), 'utf8'), name);
          const target = realpathSync(join(mnt, /(?:^| )arbor=(\S+)/.exec(entry.options)?.[1] as string));
          const m = /\/arbor\/deploy\/([^/]+)\/deploy\/([^/]+)$/.exec(target);
          expect(m, target).not.toBeNull();
          return grubTrialToken({ ...entry, deployment: `${m?.[1]}/${m?.[2]}` });
        });

      function saveDisk(name: string): void {
        const copy = join(work, `saved-${name}.img`);
        runTool('cp', ['--sparse=always', disk, copy]);
        saved.set(name, copy);
      }
      function diskCopy(name: string, as: string): string {
        const copy = join(work, `${as}.img`);
        runTool('cp', ['--sparse=always', saved.get(name) as string, copy]);
        return copy;
      }

      /**
       * `arbor status --json` of the disk's sysroot as the deployment with CMDLINE sees it. Mounted
       * writable: the repository's SQLite database does not open on a read-only mount.
       */
      const statusOn = (d: string, cmdline: string): Promise<{ json: StatusJson; text: string }> =>
        withPartitionMounted(
          d,
          (mnt) => {
            const file = join(work, 'cmdline');
            writeFileSync(file, `${cmdline}\n`);
            const env = { ARBOR_CMDLINE_FILE: file };
            const json = runCli(['status', '--sysroot', mnt, '--json'], { env });
            expect(json.exitCode, json.stderr).toBe(0);
            const text = runCli(['status', '--sysroot', mnt], { env });
            expect(text.exitCode, text.stderr).toBe(0);
            return { json: JSON.parse(json.stdout) as StatusJson, text: text.stdout };
          },
          { writable: true },
        );

      /**
       * `arbor upgrade` run on the disk's sysroot as the booted B would run it (its command line):
       * VERSION committed to the ref first. For systemd-boot the new boot set is then put on the ESP
       * with its kernels, as buildUefiDisk did at first: arbor's own `[sysroot] esp` mirroring would
       * need the image's FAT partition mounted on the host, and this machine's kernel has no vfat
       * (boot-e2e.test.ts boots entries arbor wrote to an ESP directory).
       */
      async function upgradeOnDisk(version: string): Promise<void> {
        await withPartitionMounted(
          disk,
          (mnt) => {
            commit(version, join(mnt, 'arbor/repo'));
            const file = join(work, 'cmdline');
            writeFileSync(file, `${bootedCmdline}\n`);
            const r = runCli(['upgrade', '--sysroot', mnt], { env: { ARBOR_CMDLINE_FILE: file } });
            expect(r.exitCode, r.stderr).toBe(0);
            expect(r.stdout).toContain(`deployed ${deploymentName(version)}`);
            if (kind === 'uefi') syncEsp(mnt);
          },
          { writable: true },
        );
      }

      function syncEsp(sysroot: string): void {
        const { offset } = partitionOf(disk, 'EFI System');
        const target = `${disk}@@${offset}`;
        const entriesDir = join(sysroot, 'boot/loader/entries');
        for (const entry of readBootEntries(entriesDir)) {
          const files = entryFiles(entry, join(sysroot, 'boot'));
          const pairs: [string, string][] = [
            [files.linux, entry.linux as string],
            ...files.initrd.map((f, i) => [f, entry.initrd[i] as string] as [string, string]),
          ];
          for (const [host, path] of pairs) {
            const parts = path.split('/').filter((p) => p !== '');
            for (let i = 1; i < parts.length; i++)
              spawnSync('mmd', ['-i', target, `::/${parts.slice(0, i).join('/')}`], {
                env: { ...process.env, ...MTOOLS_ENV },
              });
            runTool('mcopy', ['-o', '-i', target, host, `::${path}`], { env: MTOOLS_ENV });
          }
        }
        for (const name of listEsp(disk, '/loader/entries'))
          runTool('mdel', ['-i', target, `::/loader/entries/${name}`], { env: MTOOLS_ENV });
        for (const name of readdirSync(entriesDir))
          runTool('mcopy', ['-o', '-i', target, join(entriesDir, name), `::/loader/entries/${name}`], {
            env: MTOOLS_ENV,
          });
      }

      /** Boots until VERSION comes up and finishes (at most MAX boots); returns the boots. */
      async function bootUntil(version: string, max: number, label: string, d?: string): Promise<Boot[]> {
        const boots: Boot[] = [];
        for (let i = 0; i < max; i++) {
          const b = await boot(`${label}-${i + 1}`, d ? { disk: d } : {});
          boots.push(b);
          if (b.markers.version === version && b.markers.done) return boots;
        }
        throw new Error(
          `${version} did not come up in ${max} boots:\n${boots.map((b) => context(b)).join('\n----\n')}`,
        );
      }

      beforeAll(() => {
        work = join(tmp.path, kind);
        mkdirSync(work);
        const sysroot = join(work, 'sysroot');
        arbor('admin', 'init-fs', sysroot);
        arbor('admin', 'os-init', '--sysroot', sysroot, STATEROOT);
        const config = join(sysroot, 'arbor/repo/config');
        writeFileSync(
          config,
          `${readFileSync(config, 'utf8')}\n[sysroot]\ntrial-tries=${TRIES}\n${kind === 'grub' ? 'bootloader=grub2\n' : ''}`,
        );
        const repo = join(sysroot, 'arbor/repo');
        commit('A', repo);
        arbor(
          'admin',
          'deploy',
          '--sysroot',
          sysroot,
          '--stateroot',
          STATEROOT,
          '--trial-tries',
          '0',
          ...KARGS.flatMap((k) => ['--karg', k]),
          REF,
        );
        commit('B', repo);
        expect(arbor('upgrade', '--sysroot', sysroot)).toContain(`deployed ${deploymentName('B')}`);
        expect(readdirSync(join(sysroot, 'boot/loader/entries')).sort()).toEqual(entryNames(`${TRIES}`));
        if (kind === 'grub') {
          // What the grub2 backend installed when missing: the static grub.cfg and an empty grubenv.
          expect(readFileSync(join(sysroot, 'boot/grub/grub.cfg'), 'utf8')).toContain(
            'configfile /boot/loader/grub.cfg',
          );
          expect(readFileSync(join(sysroot, 'boot/grub/grubenv')).length).toBe(1024);
          expect(readFileSync(join(sysroot, 'boot/loader/grub.cfg'), 'utf8')).toContain('save_env');
        }
        disk = join(work, 'disk.img');
        // A journaled root, as real ones are: the power-cut tests kill guests in the middle of writes.
        if (kind === 'uefi') buildUefiDisk(sysroot, disk, { journal: true });
        else buildBiosGrubDisk(sysroot, disk, { journal: true });
        rmSync(sysroot, { recursive: true, force: true });
        saveDisk('before-B');
      }, SETUP_TIMEOUT_MS);

      it('status before the first boot: B is the default, on trial with 2 tries', async () => {
        const { json } = await statusOn(disk, `root=LABEL=sysroot arbor=/nonexistent`);
        expect(json.deployments.map((d) => [d.version, d.trial ?? null])).toEqual([
          ['B', { left: TRIES, done: 0 }],
          ['A', null],
        ]);
        expect(json.trialFailed).toBeNull();
        expect(await bootloaderEntries()).toEqual(entryNames(`${TRIES}`));
      });

      it(
        'B boots on trial, passes its health check and is blessed',
        async () => {
          const b = await boot('B-trial');
          expectBooted(b, 'B');
          const ctx = context(b);
          if (kind === 'uefi') {
            expect(b.markers.espEntries, ctx).toEqual(entryNames('1-1')); // systemd-boot counted the attempt
            expect(b.markers.sysrootEntries, ctx).toEqual(entryNames(`${TRIES}`));
          } else {
            expect(Object.fromEntries(b.markers.grubenv ?? []), ctx).toEqual({
              arbor_trial: await defaultToken(saved.get('before-B')),
              arbor_tries_left: '1',
              arbor_tries_done: '1',
            });
          }
          expect(b.markers.health, ctx).toEqual({ verb: 'blessed', rest: deploymentName('B') });
          expect(b.markers.healthExit, ctx).toBe(0);
          expect(b.markers.done, ctx).toBe(true);
          bootedCmdline = b.markers.cmdline as string;
          // Read from the host: the bootloader's entries and the sysroot's copy lost the counter.
          expect(await bootloaderEntries()).toEqual(entryNames(null));
          expect(await sysrootEntries()).toEqual(entryNames(null));
          if (kind === 'grub') {
            const env = await grubenv();
            expect(env.get('arbor_blessed')).toBe(env.get('arbor_trial'));
          }
        },
        STEP_TIMEOUT_MS,
      );

      it(
        'the next boot is B without a counter (nothing counted, health says not on trial)',
        async () => {
          const envBefore = kind === 'grub' ? await grubenv() : null;
          const b = await boot('B-blessed');
          expectBooted(b, 'B');
          const ctx = context(b);
          if (kind === 'uefi') expect(b.markers.espEntries, ctx).toEqual(entryNames(null));
          expect(b.markers.health, ctx).toEqual({ verb: 'not-on-trial', rest: deploymentName('B') });
          expect(b.markers.fallbacks, ctx).toEqual([]);
          expect(await bootloaderEntries()).toEqual(entryNames(null));
          if (kind === 'grub') expect(await grubenv()).toEqual(envBefore); // GRUB did not count
          bootedCmdline = b.markers.cmdline as string;
          const { json } = await statusOn(disk, bootedCmdline);
          expect(json.deployments.map((d) => [d.role, d.version, d.trial ?? null])).toEqual([
            ['booted', 'B', null],
            ['rollback', 'A', null],
          ]);
        },
        STEP_TIMEOUT_MS,
      );

      /** `upgradeOnDisk(VERSION)` on B: VERSION first, on trial with every try left, B behind it. Returns status --json. */
      async function upgradeToTrial(version: string): Promise<Awaited<ReturnType<typeof statusOn>>['json']> {
        await upgradeOnDisk(version);
        expect(await bootloaderEntries()).toEqual(entryNames(`${TRIES}`));
        const { json } = await statusOn(disk, bootedCmdline);
        expect(json.deployments.map((d) => [d.version, d.trial ?? null])).toEqual([
          [version, { left: TRIES, done: 0 }],
          ['B', null],
        ]);
        return json;
      }

      it(
        'upgrade B → C1 (its health check fails), run on the disk as B',
        async () => {
          // B, the booted and blessed deployment, is what a failed C1 falls back to; A is gone.
          await upgradeToTrial('C1');
          saveDisk('before-C1');
        },
        STEP_TIMEOUT_MS,
      );

      it(
        'C1 boots, fails its check, reboots; then the machine boots B by itself and status says why',
        async () => {
          const c = await boot('C1-trial');
          let ctx = context(c);
          expect(c.result.timedOut, ctx).toBe(false);
          expect(c.markers.version, ctx).toBe('C1');
          if (kind === 'uefi') expect(c.markers.espEntries, ctx).toEqual(entryNames('1-1'));
          else expect(c.markers.grubenv?.get('arbor_tries_left'), ctx).toBe('1');
          expect(c.markers.health, ctx).toEqual({
            verb: 'failed',
            rest: `${deploymentName('C1')} check=10-service tries-used=1`,
          });
          expect(c.markers.done, ctx).toBe(false); // arbor-health rebooted the machine
          expect(c.result.output, ctx).toMatch(/reboot: Restarting system/);
          // Between the boots, read only: the trial is used up where the bootloader looks.
          expect(await bootloaderEntries()).toEqual(entryNames('0-1'));
          if (kind === 'grub') expect((await grubenv()).get('arbor_tries_left')).toBe('0');

          const b = await boot('C1-fallback');
          expectBooted(b, 'B');
          ctx = context(b);
          expect(b.markers.health, ctx).toEqual({ verb: 'not-on-trial', rest: deploymentName('B') });
          expect(b.markers.fallbacks, ctx).toEqual([`${deploymentName('C1')} tries-used=1`]);
          expect(await bootloaderEntries()).toEqual(entryNames('0-1'));
          bootedCmdline = b.markers.cmdline as string;

          const { json, text } = await statusOn(disk, bootedCmdline);
          expect(json.trialFailed).toMatchObject({
            stateroot: STATEROOT,
            checksum: get('C1').checksum,
            serial: 0,
            version: 'C1',
            reason: 'health-check',
            check: HEALTH_CHECK_PATH,
            triesUsed: 1,
          });
          expect(json.trialFailed?.output).toContain(FAILING_CHECK_OUTPUT);
          expect(Math.abs((json.trialFailed?.when ?? 0) - Date.now() / 1000)).toBeLessThan(3600);
          expect(json.deployments.map((d) => [d.role, d.version])).toEqual([
            ['failed-trial', 'C1'],
            ['booted', 'B'],
          ]);
          expect(text).toContain(
            `TRIAL FAILED: ${STATEROOT} ${deploymentName('C1')} (version C1): its health check ${HEALTH_CHECK_PATH} failed; 1 tries used`,
          );
          expect(text).toContain(FAILING_CHECK_OUTPUT);
        },
        MULTI_BOOT_TIMEOUT_MS,
      );

      it(
        'arbor upgrade on B refuses C1 again',
        async () => {
          await withPartitionMounted(
            disk,
            (mnt) => {
              const file = join(work, 'cmdline');
              writeFileSync(file, `${bootedCmdline}\n`);
              const r = runCli(['upgrade', '--sysroot', mnt], { env: { ARBOR_CMDLINE_FILE: file } });
              expect(r.exitCode).toBe(1);
              expect(r.stderr).toContain('E_UPGRADE_FAILED_BEFORE');
            },
            { writable: true },
          );
          expect(await bootloaderEntries()).toEqual(entryNames('0-1'));
        },
        STEP_TIMEOUT_MS,
      );

      it(
        'upgrade B → C2 (its init panics before any check), run on the disk as B',
        async () => {
          expect((await upgradeToTrial('C2')).trialFailed).toBeNull();
        },
        STEP_TIMEOUT_MS,
      );

      it(
        'C2 panics on each of its 2 tries; then the machine boots B by itself and status says C2 ran out of tries',
        async () => {
          for (let i = 1; i <= TRIES; i++) {
            const c = await boot(`C2-try-${i}`);
            const ctx = context(c);
            expect(c.result.timedOut, ctx).toBe(false);
            expect(c.markers.version, ctx).toBe('C2');
            expect(c.markers.panicked, ctx).toBe(true);
            expect(c.markers.health, ctx).toBeNull();
            expect(await bootloaderEntries()).toEqual(entryNames(kind === 'uefi' ? `${TRIES - i}-${i}` : `${TRIES}`));
            if (kind === 'grub') {
              const env = await grubenv();
              expect([env.get('arbor_trial'), env.get('arbor_tries_left'), env.get('arbor_tries_done')]).toEqual([
                await defaultToken(),
                `${TRIES - i}`,
                `${i}`,
              ]);
            }
          }
          saveDisk('before-C2-fallback');

          const b = await boot('C2-fallback');
          expectBooted(b, 'B');
          const ctx = context(b);
          expect(b.markers.health, ctx).toEqual({ verb: 'not-on-trial', rest: deploymentName('B') });
          expect(b.markers.fallbacks, ctx).toEqual([`${deploymentName('C2')} tries-used=${TRIES}`]);
          expect(await sysrootEntries()).toEqual(entryNames(`0-${TRIES}`));
          bootedCmdline = b.markers.cmdline as string;

          const { json, text } = await statusOn(disk, bootedCmdline);
          expect(json.trialFailed).toMatchObject({
            checksum: get('C2').checksum,
            serial: 0,
            version: 'C2',
            reason: 'tries-exhausted',
            triesUsed: TRIES,
          });
          expect(json.trialFailed?.check).toBeUndefined();
          expect(json.deployments.map((d) => [d.role, d.version])).toEqual([
            ['failed-trial', 'C2'],
            ['booted', 'B'],
          ]);
          expect(text).toContain(
            `TRIAL FAILED: ${STATEROOT} ${deploymentName('C2')} (version C2): its ${TRIES} tries ran out before a health check passed`,
          );
          // Both failures stay on record.
          expect(json.trialFailures.map((f) => [f.checksum, f.reason]).sort()).toEqual(
            [
              [get('C1').checksum, 'health-check'],
              [get('C2').checksum, 'tries-exhausted'],
            ].sort(),
          );
        },
        MULTI_BOOT_TIMEOUT_MS,
      );

      it(
        'upgrade B → C3 (its init hangs before any check), run on the disk as B',
        async () => {
          await upgradeToTrial('C3');
        },
        STEP_TIMEOUT_MS,
      );

      it(
        'C3 hangs on each of its 2 tries until the watchdog ends the boot; then the machine boots B by itself',
        async () => {
          for (let i = 1; i <= TRIES; i++) {
            const c = await boot(`C3-try-${i}`);
            const ctx = context(c);
            expect(c.result.timedOut, ctx).toBe(false); // the watchdog, not the test's time limit, ended it
            expect(c.markers.version, ctx).toBe('C3');
            expect(c.markers.hung, ctx).toBe(true);
            expect(c.markers.health, ctx).toBeNull();
            expect(c.markers.done, ctx).toBe(false);
            expect(await bootloaderEntries()).toEqual(entryNames(kind === 'uefi' ? `${TRIES - i}-${i}` : `${TRIES}`));
          }
          const b = await boot('C3-fallback');
          expectBooted(b, 'B');
          const ctx = context(b);
          expect(b.markers.fallbacks, ctx).toEqual([`${deploymentName('C3')} tries-used=${TRIES}`]);
          bootedCmdline = b.markers.cmdline as string;
          const { json, text } = await statusOn(disk, bootedCmdline);
          expect(json.trialFailed).toMatchObject({
            checksum: get('C3').checksum,
            version: 'C3',
            reason: 'tries-exhausted',
            triesUsed: TRIES,
          });
          expect(json.deployments.map((d) => [d.role, d.version])).toEqual([
            ['failed-trial', 'C3'],
            ['booted', 'B'],
          ]);
          expect(text).toContain(
            `TRIAL FAILED: ${STATEROOT} ${deploymentName('C3')} (version C3): its ${TRIES} tries ran out before a health check passed`,
          );
        },
        MULTI_BOOT_TIMEOUT_MS,
      );

      describe(`power cuts (qemu killed at once, no shutdown; seed ${SEED})`, () => {
        /**
         * Where to cut a boot: as a console line appears, or at a random moment of the boot (from
         * qemu's start) or of its last part (from the kernel handing over to the tree's init: the
         * bless, the failure record and the fallback all happen there), measured on REFERENCE.
         */
        type Cut = { name: string; marker: RegExp } | { name: string; random: 'whole' | 'init'; reference: string };

        /** Boots a copy of the disk saved at FROM with the cut; returns the copy. */
        async function cutBoot(from: string, cut: Cut): Promise<string> {
          const d = diskCopy(from, `cut-${from}`);
          if ('marker' in cut) {
            const b = await boot(`cut-${from}-marker`, { disk: d, marker: cut.marker, exitGraceMs: 0 });
            expect(b.result.matched, context(b)).toBe(true);
            return d;
          }
          const ref = bootTimes.get(cut.reference);
          expect(ref, `no timing of boot ${cut.reference}`).toBeDefined();
          const { initAt, elapsed } = ref as { initAt: number; elapsed: number };
          // Derived per cut, so a filtered run draws the same moment as the whole suite.
          const random = new Random(SEED).derive(`${kind} ${from} ${cut.name}`);
          onTestFailed(() =>
            console.error(
              `[${kind}] the power cut was drawn with SEED=${SEED}: run again with SEED=${SEED} to replay it`,
            ),
          );
          if (cut.random === 'whole') {
            const at = Math.floor(500 + random.next() * elapsed);
            console.log(`[${kind}] power cut ${at} ms into a boot like ${cut.reference} (${elapsed} ms)`);
            await boot(`cut-${from}-at-${at}ms`, {
              disk: d,
              timeoutMs: at,
              marker: /^ARBOR-DONE\r?$/m,
              exitGraceMs: 0,
            });
          } else {
            const after = Math.floor(random.next() * Math.max(elapsed - initAt, 100));
            console.log(
              `[${kind}] power cut ${after} ms after ARBOR-VERSION (that part of ${cut.reference} took ${elapsed - initAt} ms)`,
            );
            await boot(`cut-${from}-${after}ms-after-init`, {
              disk: d,
              marker: /^ARBOR-VERSION=/m,
              exitGraceMs: Math.max(after, 1),
            });
          }
          return d;
        }

        /** The entries where the bootloader looks and in the sysroot: OTHER, and the default with COUNTER (a RegExp source) or none. */
        async function expectEntries(d: string, counter: string | null): Promise<void> {
          const re = new RegExp(`^${DEFAULT_ENTRY}${counter === null ? '' : `\\+${counter}`}\\.conf$`);
          for (const list of [await bootloaderEntries(d), await sysrootEntries(d)]) {
            expect(list, list.join(' ')).toHaveLength(2);
            expect(list[0]).toBe(OTHER_ENTRY);
            expect(list[1]).toMatch(re);
          }
        }

        const blessCuts: Cut[] = [
          { name: 'as its checks pass (the bless starts)', marker: /arbor-health: passed: / },
          {
            name: "as the bootloader's entry is blessed, before the sysroot's copy",
            marker: /arbor-health: blessed: /,
          },
          { name: 'at a random moment after the kernel started its init', random: 'init', reference: 'B-trial' },
          {
            name: 'at a random moment of the whole boot (firmware and bootloader counting included)',
            random: 'whole',
            reference: 'B-trial',
          },
        ];
        it.each(blessCuts)(
          'during the trial boot of B, $name: B comes up blessed by itself',
          async (cut) => {
            const d = await cutBoot('before-B', cut);
            const boots = await bootUntil('B', TRIES, 'after-cut', d);
            const last = boots.at(-1) as Boot;
            expectBooted(last, 'B');
            expect(['blessed', 'not-on-trial'], context(last)).toContain(last.markers.health?.verb);
            await expectEntries(d, null);
            if (kind === 'grub') {
              const env = await grubenv(d);
              expect(env.get('arbor_blessed')).toBe(env.get('arbor_trial'));
            }
            rmSync(d);
          },
          MULTI_BOOT_TIMEOUT_MS,
        );

        const failureCuts: Cut[] = [
          { name: 'as its check fails (the record and the exhaustion start)', marker: /^ARBOR-HEALTH failed /m },
          { name: 'at a random moment after the kernel started its init', random: 'init', reference: 'C1-trial' },
        ];
        it.each(failureCuts)(
          'during the trial boot of C1, $name: the machine ends up on B by itself, C1 reported failed',
          async (cut) => {
            const d = await cutBoot('before-C1', cut);
            // C1 may come up again (its exhaustion was cut off, or its attempt was) and fail again; then B.
            const boots = await bootUntil('B', TRIES, 'after-cut', d);
            for (const b of boots.slice(0, -1)) {
              expect(b.markers.version, context(b)).toBe('C1');
              expect(b.markers.health?.verb, context(b)).toBe('failed');
            }
            const last = boots.at(-1) as Boot;
            expectBooted(last, 'B');
            await expectEntries(d, '0-[12]');
            const { json } = await statusOn(d, last.markers.cmdline as string);
            // Every console after the cut: what each boot did with the record, the entry and grubenv.
            expect(json.trialFailed, boots.map((b) => context(b)).join('\n----\n')).toMatchObject({
              checksum: get('C1').checksum,
              reason: 'health-check',
              check: HEALTH_CHECK_PATH,
            });
            expect(json.trialFailed?.output).toContain(FAILING_CHECK_OUTPUT);
            expect(json.deployments.map((x) => [x.role, x.version])).toEqual([
              ['failed-trial', 'C1'],
              ['booted', 'B'],
            ]);
            rmSync(d);
          },
          MULTI_BOOT_TIMEOUT_MS,
        );

        const fallbackCuts: Cut[] = [
          { name: "as B's init starts arbor-health (nothing recorded yet)", marker: /^ARBOR-GRUBENV/m },
          { name: 'at a random moment after the kernel started its init', random: 'init', reference: 'C2-fallback' },
        ];
        it.each(fallbackCuts)(
          'during the fallback boot after C2 ran out of tries, $name: B comes up again and C2 is reported',
          async (cut) => {
            const d = await cutBoot('before-C2-fallback', cut);
            const boots = await bootUntil('B', 1, 'after-cut', d);
            const b = boots.at(-1) as Boot;
            expect(b.markers.fallbacks, context(b)).toEqual([`${deploymentName('C2')} tries-used=${TRIES}`]);
            await expectEntries(d, `0-${TRIES}`);
            const { json } = await statusOn(d, b.markers.cmdline as string);
            expect(json.trialFailed).toMatchObject({
              checksum: get('C2').checksum,
              reason: 'tries-exhausted',
              triesUsed: TRIES,
            });
            rmSync(d);
          },
          MULTI_BOOT_TIMEOUT_MS,
        );
      });

      afterAll(() => {
        console.log(`[${kind}] ${bootCount} boots:\n  ${timings.join('\n  ')}`);
      });
    });
  },
);
