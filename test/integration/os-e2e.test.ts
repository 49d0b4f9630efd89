// The whole product on one machine: the reference OS (examples/os) composed in three releases,
// made into disk images by `arbor image build` (systemd-boot under OVMF, and GRUB under SeaBIOS)
// with a first-boot configuration and a signed remote, booted under QEMU (TCG) with real systemd.
// The guest then updates itself over HTTP from nginx on the host (a signed summary and static
// deltas): v2 boots on trial and arbor-health blesses it; v3's health check fails, so the machine
// falls back to v2 by itself and `arbor status` in the guest names the failed check; `arbor
// rollback` in the guest then boots v1. Everything the guest says is read from its serial console.
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { present } from '../../src/common/errors.js';
import { imageToolingMissing } from '../support/boot-image.js';
import { IS_ROOT, arbor } from '../support/cli.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { type Firmware, QemuSession, hasQemuTooling } from '../support/qemu.js';
import { REFERENCE_OS_REF, REFERENCE_OS_STATEROOT, composedReferenceOs } from '../support/reference-os.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand } from '../support/tool.js';

const HAVE_TOOLING =
  IS_ROOT &&
  HAVE_NGINX &&
  hasQemuTooling() &&
  imageToolingMissing().length === 0 &&
  ['dracut', 'rpmbuild', 'createrepo_c', 'bwrap', 'apt-get', 'depmod', 'grub-mkimage'].every(hasCommand);
/** systemd under TCG on a shared two-core machine: 1–3 minutes measured; never gate on speed. */
const BOOT_TIMEOUT_MS = 600_000;
/** A guest-side `arbor upgrade` or `rollback` under TCG (Node starting, a delta pull, a deploy). */
const COMMAND_TIMEOUT_MS = 600_000;
/** Building the RPMs and composing three releases, when the cache has none of them. */
const COMPOSE_TIMEOUT_MS = 2_400_000;
const REMOTE = 'e2e';
/** The guest's view of the host's 127.0.0.1 under QEMU's user networking. */
const HOST_FROM_GUEST = '10.0.2.2';
const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFg/p/HmI8rfgbBnsLBbkEVEc7t6k4cnQSsfZ3GKQcrS e2e@arbor-test';
const FIRSTBOOT = `hostname: arbor-e2e
users:
  - name: e2e
    shell: /bin/bash
    ssh_authorized_keys:
      - ${SSH_KEY}
files:
  - path: /etc/e2e/greeting
    contents: |
      written at first boot
systemd:
  units:
    - name: e2e-marker.service
      enabled: true
      contents: |
        [Unit]
        Description=Arbor end-to-end test: proves a first-boot unit runs
        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/bin/sh -c 'echo first-boot-unit-ran >/run/e2e-marker'
        [Install]
        WantedBy=multi-user.target
`;

interface Release {
  checksum: string;
  repo: string;
}

/** The ARBOR-OS report a boot prints once multi-user.target is reached (examples/os). */
interface Report {
  uptime: number;
  target: string;
  hello: string;
  status: string;
  statusRc: number;
  failedUnits: string;
  /** Output index just after the report. */
  end: number;
}

async function waitForReport(guest: QemuSession, from: number): Promise<Report> {
  const { match, end } = await guest.waitFor(
    /ARBOR-OS-READY uptime=([\d.]+)s target=(\S+) hello=(\S+)[\s\S]*?ARBOR-OS-STATUS-BEGIN\r?\n([\s\S]*?)ARBOR-OS-STATUS-END rc=(\d+)[\s\S]*?ARBOR-OS-FAILED-UNITS ([^\r\n]*)[\s\S]*?ARBOR-OS-REPORT-END/,
    BOOT_TIMEOUT_MS,
    from,
  );
  const [, uptime, target, hello, status, rc, failed] = match;
  return {
    uptime: Number(uptime),
    target: target ?? '',
    hello: hello ?? '',
    status: (status ?? '').replace(/\r/g, ''),
    statusRc: Number(rc),
    failedUnits: (failed ?? '').trim(),
    end,
  };
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

describe.skipIf(!HAVE_TOOLING)(
  'the reference OS end to end: image, first boot, self-update, fallback, rollback',
  () => {
    const tmp = useTempDir('arbor-os-e2e-');
    const releases: Partial<Record<'v1' | 'v2' | 'v3', Release>> = {};
    let server = '';
    let nginx: NginxServer | null = null;
    let keyFile = '';
    let pubFile = '';
    const timings: string[] = [];
    let biosGuest: QemuSession | null = null;
    let uefiGuest: QemuSession | null = null;
    let uefiDisk = '';
    let biosBoot: Promise<{ report: Report; ms: number } | { error: unknown }> | null = null;

    /** Boots DISK under FIRMWARE, its console also written to FIRMWARE-console.log as it comes (to follow a hang). */
    function startGuest(firmware: Firmware, disk: string): QemuSession {
      // A reboot ends qemu (OVMF took 4 minutes to come back from a warm reset under TCG): the
      // test starts a new one on the same disk, as a power cycle would.
      return new QemuSession(disk, firmware, {
        memoryMb: 1536,
        timeoutMs: 2 * BOOT_TIMEOUT_MS,
        // The UEFI guest updates itself over the network.
        network: firmware === 'uefi',
        onOutput: (chunk) => appendFileSync(join(tmp.path, `${firmware}-console.log`), chunk),
      });
    }

    /** Makes RELEASE the remote's ref: its commit copied in and signed, a static delta from its parent, the summary re-signed. */
    function publish(name: 'v2' | 'v3'): void {
      const release = releases[name];
      if (!release) throw new Error(`${name} was not composed`);
      arbor('pull-local', '--repo', server, release.repo, REFERENCE_OS_REF);
      arbor('sign', '--repo', server, REFERENCE_OS_REF, '--keyfile', keyFile);
      arbor('static-delta', 'generate', '--repo', server, '--to', REFERENCE_OS_REF);
      arbor('summary', '--repo', server, '--update', '--sign', keyFile);
    }

    function buildImage(firmware: Firmware): string {
      const v1 = releases.v1;
      if (!v1 || !nginx) throw new Error('not set up');
      const disk = join(tmp.path, `${firmware}.img`);
      const config = join(tmp.path, 'firstboot.yaml');
      writeFileSync(config, FIRSTBOOT);
      const started = Date.now();
      const built = JSON.parse(
        arbor(
          'image',
          'build',
          '--repo',
          v1.repo,
          REFERENCE_OS_REF,
          '-o',
          disk,
          '--bootloader',
          firmware === 'uefi' ? 'systemd-boot' : 'grub-bios',
          '--remote',
          `${REMOTE}=http://${HOST_FROM_GUEST}:${nginx.port}/repo`,
          `--sign-verify=ed25519=${pubFile}`,
          '--config',
          config,
          '--karg',
          'console=ttyS0',
          '--karg',
          'quiet',
          '--json',
        ),
      ) as { size: number; deployment: { checksum: string } };
      expect(built.deployment.checksum).toBe(v1.checksum);
      timings.push(
        `image build (${firmware}): ${seconds(Date.now() - started)}, ${(built.size / 2 ** 20).toFixed(0)} MiB`,
      );
      return disk;
    }

    beforeAll(async () => {
      // Composed before any guest starts: the composes run the CLI synchronously, and a guest whose
      // console nobody reads meanwhile stalls once the pipe is full (GRUB's menu fills it fast).
      for (const name of ['v1', 'v2', 'v3'] as const) {
        const composed = await composedReferenceOs(name);
        releases[name] = { checksum: composed.checksum, repo: join(composed.sysroot, 'arbor/repo') };
      }
      const v1 = present(releases.v1, 'v1');
      const key = JSON.parse(arbor('keygen', '--json', '-o', join(tmp.path, 'release'))) as {
        keyFile: string;
        pubFile: string;
      };
      keyFile = key.keyFile;
      pubFile = key.pubFile;
      server = join(tmp.path, 'www/repo');
      arbor('init', '--repo', server, '--mode', 'archive');
      // The server starts at v1, as the image does; the guest sees v2 once it is published.
      arbor('pull-local', '--repo', server, v1.repo, REFERENCE_OS_REF);
      arbor('sign', '--repo', server, REFERENCE_OS_REF, '--keyfile', keyFile);
      arbor('summary', '--repo', server, '--update', '--sign', keyFile);
      nginx = await startNginx(join(tmp.path, 'www'));
      // Both guests boot at once: TCG runs each on one host thread.
      const bios = buildImage('bios');
      uefiDisk = buildImage('uefi');
      biosGuest = startGuest('bios', bios);
      uefiGuest = startGuest('uefi', uefiDisk);
      const biosStarted = Date.now();
      biosBoot = waitForReport(biosGuest, 0).then(
        (report) => ({ report, ms: Date.now() - biosStarted }),
        (error: unknown) => ({ error }),
      );
    }, COMPOSE_TIMEOUT_MS);

    afterAll(async () => {
      biosGuest?.kill();
      uefiGuest?.kill();
      await nginx?.stop();
      console.log(`[os-e2e]\n  ${timings.join('\n  ')}`);
    });

    it(
      'GRUB under SeaBIOS boots the image to multi-user.target with the first-boot configuration applied',
      async () => {
        const booted = await biosBoot;
        biosGuest?.kill();
        if (!booted) throw new Error('the BIOS guest was not started');
        if ('error' in booted) throw booted.error;
        const { report, ms } = booted;
        timings.push(
          `boot to multi-user.target, GRUB/SeaBIOS: ${seconds(ms)} wall, guest uptime ${report.uptime} s (beside the other guest)`,
        );
        expect(report.target).toBe('active');
        expect(report.hello).toBe('1.0');
        expect(report.status).toMatch(
          new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0[\\s\\S]*Version: v1\\b`),
        );
        expect(report.status).toMatch(/First boot: applied/i);
        expect(report.failedUnits).toBe('');
      },
      BOOT_TIMEOUT_MS,
    );
    it(
      'systemd-boot under OVMF: boots v1, upgrades itself to v2 and v3, falls back from v3, rolls back to v1',
      async () => {
        if (!uefiGuest) throw new Error('the UEFI guest was not started');
        let guest: QemuSession = uefiGuest;
        let started = 0;
        let consoles = '';
        const context = (): string => `serial console:\n${(consoles + guest.output).slice(-6000)}`;
        /** Reboots the guest: `systemctl reboot` (unless it reboots by itself) ends qemu, a new one boots the disk. */
        const powerCycle = async (command: string | null): Promise<void> => {
          if (command !== null) guest.send(`${command}\n`);
          await guest.exited();
          consoles += guest.output;
          guest = startGuest('uefi', uefiDisk);
          uefiGuest = guest;
        };
        try {
          // Boot 1: v1, configured by the first-boot configuration.
          let report = await waitForReport(guest, 0);
          timings.push(
            `boot to multi-user.target, systemd-boot/OVMF (v1): guest uptime ${report.uptime} s at the report (beside the other guest)`,
          );
          expect(report.hello, context()).toBe('1.0');
          expect(report.status, context()).toMatch(
            new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0`),
          );
          expect(report.status, context()).toMatch(/First boot: applied/i);
          expect(report.failedUnits, context()).toBe('');
          await guest.waitForShell(120_000, report.end);
          const configured = await guest.run(
            'hostname; id -un e2e; cat /home/e2e/.ssh/authorized_keys /etc/e2e/greeting /run/e2e-marker',
            60_000,
          );
          expect(configured.status, context()).toBe(0);
          expect(configured.output.split('\n').filter(Boolean)).toEqual([
            'arbor-e2e',
            'e2e',
            SSH_KEY,
            'written at first boot',
            'first-boot-unit-ran',
          ]);

          // v2 published: the guest upgrades itself over HTTP (a signed summary, a static delta).
          publish('v2');
          await guest.run('/lib/systemd/systemd-networkd-wait-online --timeout=120 --any', 180_000);
          started = Date.now();
          const upgraded = await guest.run('arbor upgrade', COMMAND_TIMEOUT_MS);
          timings.push(`guest arbor upgrade v1 -> v2 (delta pull + deploy): ${seconds(Date.now() - started)} wall`);
          expect(upgraded.status, `${upgraded.output}\n${context()}`).toBe(0);
          expect(upgraded.output).toMatch(/on trial/);

          // Boot 2: v2 on trial; arbor-health blesses it under systemd.
          started = Date.now();
          await powerCycle('systemctl reboot');
          report = await waitForReport(guest, 0);
          timings.push(`reboot into v2 on trial to multi-user.target: ${seconds(Date.now() - started)} wall`);
          expect(report.hello, context()).toBe('2.0');
          expect(report.status, context()).toMatch(
            new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v2?.checksum}\\.0[\\s\\S]*Version: v2\\b`),
          );
          expect(report.status, context()).toMatch(
            new RegExp(`rollback ${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0`),
          );
          expect(report.status, context()).not.toMatch(/Trial:|TRIAL FAILED/);
          expect(report.failedUnits, context()).toBe('');
          const health = await guest.run(
            'systemctl is-active arbor-health.service; journalctl -b -u arbor-health.service -o cat',
            60_000,
          );
          expect(health.output, context()).toMatch(new RegExp(`ARBOR-HEALTH blessed ${releases.v2?.checksum}\\.0`));

          // v3 published: its health check fails, so its trial falls back to v2 by itself. v1 is
          // pinned first, so the upgrade keeps it (the booted deployment and the new one are kept).
          publish('v3');
          await guest.waitForShell(120_000, report.end);
          const pinned = await guest.run('arbor admin pin 1', 120_000);
          expect(pinned.status, `${pinned.output}\n${context()}`).toBe(0);
          const toV3 = await guest.run('arbor upgrade', COMMAND_TIMEOUT_MS);
          expect(toV3.status, `${toV3.output}\n${context()}`).toBe(0);
          started = Date.now();
          await powerCycle('systemctl reboot');
          // v3's trial: its health check fails and arbor-health reboots the machine by itself.
          await guest.waitFor(new RegExp(`ARBOR-HEALTH failed ${releases.v3?.checksum}\\.0`), BOOT_TIMEOUT_MS);
          await powerCycle(null);
          report = await waitForReport(guest, 0);
          timings.push(
            `reboot into v3, failed trial, fallback to v2 at multi-user.target: ${seconds(Date.now() - started)} wall`,
          );
          expect(report.hello, context()).toBe('2.0');
          expect(report.status, context()).toMatch(
            new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v2?.checksum}\\.0`),
          );
          expect(report.status, context()).toMatch(
            new RegExp(
              `TRIAL FAILED: ${REFERENCE_OS_STATEROOT} ${releases.v3?.checksum}\\.0 \\(version v3\\): its health check \\S*60-hello-selftest failed`,
            ),
          );
          expect(report.status, context()).toMatch(/self-test: the greeting is broken in this release/);
          expect(report.status, context()).toMatch(
            new RegExp(`${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0[\\s\\S]*Pinned: yes`),
          );

          // `arbor rollback` in the guest: v1 boots (the failed v3 is passed over).
          await guest.waitForShell(120_000, report.end);
          const rolledBack = await guest.run('arbor rollback', COMMAND_TIMEOUT_MS);
          expect(rolledBack.status, `${rolledBack.output}\n${context()}`).toBe(0);
          started = Date.now();
          await powerCycle('systemctl reboot');
          report = await waitForReport(guest, 0);
          timings.push(`reboot into v1 after rollback: ${seconds(Date.now() - started)} wall`);
          expect(report.hello, context()).toBe('1.0');
          expect(report.status, context()).toMatch(
            new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0`),
          );
        } finally {
          guest.kill();
        }
      },
      7 * BOOT_TIMEOUT_MS,
    );
  },
);
