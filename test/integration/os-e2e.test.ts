// The whole product on one machine: the reference OS (examples/os) composed in three releases,
// made into disk images by `arbor image build` (systemd-boot under OVMF on ext4, and GRUB under
// SeaBIOS on an xfs root filesystem) with a first-boot configuration and a signed remote, booted under QEMU (TCG) with real systemd.
// Both guests run the update agent against one FleetLock server (`arbor fleetlock serve`, etcd on
// the host) whose group has one slot. v2 is published over HTTP from nginx on the host (a signed
// summary and static deltas): the UEFI guest's agent stages it, takes the slot and reboots; the
// BIOS guest's agent stages it too but is refused the slot; the UEFI guest boots v2 on trial,
// arbor-health blesses it, and its agent's next run gives the slot back; only then does the BIOS
// guest's agent take it and reboot into v2, blessed in turn. An observer watching the slot's key
// in etcd sees every holder, never two at once. Then v3's health check fails on the UEFI guest
// (`arbor upgrade` there), so it falls back to v2 by itself and `arbor status` names the failed
// check; `arbor rollback` then boots v1. Last, the BIOS guest layers a package (`arbor install`) from
// a signed yum repository nginx serves (its .repo file and key from the first-boot configuration)
// and reboots into the layered deployment. Everything a guest says is read from its serial console;
// the agent's timer is masked, so each run is one the test starts, as the timer would
// (`systemctl start arbor-agent.service`).
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { present } from '../../src/common/errors.js';
import { imageToolingMissing } from '../support/boot-image.js';
import { IS_ROOT, arbor, runCliAsync } from '../support/cli.js';
import { type EtcdCluster, HAVE_ETCD, startEtcdCluster } from '../support/etcd.js';
import { type Served, serveFleetLock, stopFleetLock } from '../support/fleetlock.js';
import { HAVE_GPG_SIGNING, TestKeys } from '../support/gpg.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { type Firmware, QemuSession, hasQemuTooling } from '../support/qemu.js';
import { REFERENCE_OS_REF, REFERENCE_OS_STATEROOT, composedReferenceOs } from '../support/reference-os.js';
import { type PackageDef, buildPackages, createRepo } from '../support/rpmgen.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand } from '../support/tool.js';

const HAVE_TOOLING =
  IS_ROOT &&
  HAVE_NGINX &&
  HAVE_ETCD &&
  HAVE_GPG_SIGNING &&
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
/** The FleetLock group both guests are in, with one slot. */
const GROUP = 'e2e';
const LOCK_PREFIX = '/e2e';
/** Each guest's id for the FleetLock server (the images are alike, so machine ids are not relied on). */
const agentId = (firmware: Firmware): string => `e2e-${firmware}`;

/** What the tool's %post writes, in the derived tree: it ran in the guest's sandbox with the tree's own sh and coreutils. */
const POST_FILE = '/usr/lib/e2e-tool/post-ran';

/**
 * What the BIOS guest layers, as a vendor's yum repository publishes it: a tool that needs a data
 * package of the same repository and a file of the base (bash, found through the base's rpm
 * database), with a %post scriptlet (run by the guest's bubblewrap sandbox at install time).
 */
const LAYERED: PackageDef[] = [
  {
    name: 'e2e-tool',
    version: '1.0',
    requires: ['/bin/bash', 'e2e-tool-data'],
    files: {
      '/usr/bin/e2e-tool': {
        content: '#!/bin/bash\necho "e2e-tool: $(cat /usr/share/e2e-tool/greeting)"\n',
        mode: 0o755,
      },
    },
    scripts: {
      post: `mkdir -p ${POST_FILE.slice(0, POST_FILE.lastIndexOf('/'))}\necho "post ran: install $1, greeting $(cat /usr/share/e2e-tool/greeting)" > ${POST_FILE}`,
    },
  },
  { name: 'e2e-tool-data', version: '1.0', files: { '/usr/share/e2e-tool/greeting': 'layered by arbor install\n' } },
];
/** Where the guests keep the repository's key, named by `gpgkey=file://` as Fedora's .repo files do. */
const YUM_KEY_PATH = '/etc/pki/rpm-gpg/RPM-GPG-KEY-arbor-e2e';
/** The signed yum repository's directory below nginx's root. */
const YUM_DIR = 'yum';

/** TEXT as the lines of a YAML block scalar indented by SPACES. */
const blockScalar = (text: string, spaces: number): string =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => (line === '' ? '' : `${' '.repeat(spaces)}${line}`))
    .join('\n');

/** A guest's package sources: a .repo file naming the host's yum repository at YUMURL and the ARMORED key it is signed with. */
interface YumSource {
  yumUrl: string;
  armoredKey: string;
}

/**
 * The first-boot configuration of the FIRMWARE guest; its agent asks the FleetLock server at
 * LOCKURL, and layering reads the yum repository of YUM (as a fleet's provisioning would set it up).
 */
function firstBootConfig(firmware: Firmware, lockUrl: string, yum: YumSource): string {
  return `hostname: arbor-e2e
users:
  - name: e2e
    shell: /bin/bash
    ssh_authorized_keys:
      - ${SSH_KEY}
files:
  - path: /etc/e2e/greeting
    contents: |
      written at first boot
  - path: /etc/arbor/agent.yaml
    contents: |
      channel: ${REMOTE}:${REFERENCE_OS_REF}
      id: ${agentId(firmware)}
      policy: apply
      interval: 1d
      jitter: 0
      reboot:
        strategy: fleet-lock
        fleet_lock: {url: "${lockUrl}", group: ${GROUP}}
  - path: /etc/yum.repos.d/e2e.repo
    contents: |
      [e2e]
      name=Arbor end-to-end test packages
      baseurl=${yum.yumUrl}
      gpgcheck=1
      gpgkey=file://${YUM_KEY_PATH}
  - path: ${YUM_KEY_PATH}
    contents: |
${blockScalar(yum.armoredKey, 6)}
systemd:
  units:
    # The test starts each agent run itself (arbor-agent.service, what the timer starts).
    - name: arbor-agent.timer
      mask: true
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
}
/** One agent run as the timer starts it, then its journal and what it knows. Ends with the run's status. */
const AGENT_RUN =
  'systemctl start arbor-agent.service; rc=$?; journalctl -b -u arbor-agent.service -o cat --no-pager | tail -n 20; arbor agent status; (exit $rc)';
/**
 * An agent run expected to reboot the guest: unless a shutdown is under way once it ends, its journal
 * and a marker follow on the console.
 */
const AGENT_REBOOT_RUN =
  'systemctl start arbor-agent.service; [ "$(systemctl is-system-running)" = stopping ] || { journalctl -b -u arbor-agent.service -o cat --no-pager | tail -n 20; echo "@@NO""-REBOOT@@"; }';

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

/** A guest across power cycles: a reboot ends qemu (-no-reboot), and a new one boots the same disk. */
interface Machine {
  readonly firmware: Firmware;
  readonly disk: string;
  session: QemuSession;
  /** What the earlier boots printed. */
  earlier: string;
}

/** The second guest's reboot through the agent, as far as it got, for the last test to check. */
interface SecondUpdate {
  report: Report;
  bootMs: number;
  health: string;
  settled: { output: string; status: number };
}

/** PROMISE's value, or its error as a value: nobody awaits it for a while, and a rejection must not go unhandled. */
function captured<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describe.skipIf(!HAVE_TOOLING)(
  'the reference OS end to end: image, first boot, fleet updates under one reboot slot, fallback, rollback',
  () => {
    const tmp = useTempDir('arbor-os-e2e-');
    const releases: Partial<Record<'v1' | 'v2' | 'v3', Release>> = {};
    let server = '';
    let nginx: NginxServer | null = null;
    let etcd: EtcdCluster | null = null;
    let fleetLock: Served | null = null;
    let watcher: Etcd3 | null = null;
    /** Every holder list of the group's semaphore key in etcd, in order, as an observer watching it saw them. */
    const holders: { at: number; ids: string[] }[] = [];
    /** Woken at each put the observer sees. */
    const putWaiters = new Set<() => void>();
    let keyFile = '';
    let pubFile = '';
    /** The OpenPGP key the yum repository's packages are signed with (made by gpg). */
    let yumKeys: TestKeys | null = null;
    const timings: string[] = [];
    const machines: Partial<Record<Firmware, Machine>> = {};
    let biosBoot: Promise<{ value: { report: Report; ms: number } } | { error: unknown }> | null = null;
    /** The UEFI guest's last report (v2, blessed), where the v3 sequence starts. */
    let uefiOnV2: Report | undefined;
    let secondUpdate: Promise<{ value: SecondUpdate } | { error: unknown }> | null = null;

    /** Boots DISK under FIRMWARE, its console also written to FIRMWARE-console.log as it comes (to follow a hang). */
    function startGuest(firmware: Firmware, disk: string): QemuSession {
      // A reboot ends qemu (OVMF took 4 minutes to come back from a warm reset under TCG): the
      // test starts a new one on the same disk, as a power cycle would.
      return QemuSession.boot(disk, firmware, {
        memoryMb: 1536,
        timeoutMs: 2 * BOOT_TIMEOUT_MS,
        network: true, // both update themselves over HTTP and ask the FleetLock server
        onOutput: (chunk) => appendFileSync(join(tmp.path, `${firmware}-console.log`), chunk),
      });
    }

    const machine = (firmware: Firmware): Machine => {
      const m = machines[firmware];
      if (!m) throw new Error(`the ${firmware} guest was not started`);
      return m;
    };
    const context = (m: Machine): string =>
      `${m.firmware} serial console:\n${(m.earlier + m.session.output).slice(-6000)}`;

    /** Reboots M: COMMAND (unless it reboots by itself) ends qemu, a new one boots the disk. */
    async function powerCycle(m: Machine, command: string | null): Promise<void> {
      if (command !== null) m.session.send(`${command}\n`);
      await m.session.exited();
      m.earlier += m.session.output;
      m.session = startGuest(m.firmware, m.disk);
    }

    /** Starts M's agent run (as its timer would) and waits for the reboot it asks for; fails if qemu has not ended by then. */
    async function rebootThroughAgent(m: Machine): Promise<number> {
      const started = Date.now();
      const from = m.session.output.length;
      m.session.send(`${AGENT_REBOOT_RUN}\n`);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the agent did not reboot the ${m.firmware} guest\n${context(m)}`)),
          COMMAND_TIMEOUT_MS,
        );
      });
      const noReboot = m.session.waitFor(/@@NO-REBOOT@@/, COMMAND_TIMEOUT_MS, from).then(
        () => {
          throw new Error(`the agent run did not reboot the ${m.firmware} guest\n${context(m)}`);
        },
        () => m.session.exited(), // qemu exited first (the reboot), or the time ran out (`late` says so)
      );
      try {
        await Promise.race([m.session.exited(), late, noReboot]);
      } finally {
        clearTimeout(timer);
      }
      const ms = Date.now() - started;
      await powerCycle(m, null);
      return ms;
    }

    /** The holder lists seen so far, once at least COUNT were or 10 s passed (the watch delivers a put a moment after it). */
    async function observed(count: number): Promise<string[][]> {
      const deadline = Date.now() + 10_000;
      while (holders.length < count && Date.now() < deadline)
        await new Promise<void>((wake) => {
          const done = (): void => {
            clearTimeout(timer);
            putWaiters.delete(done);
            wake();
          };
          const timer = setTimeout(done, deadline - Date.now());
          putWaiters.add(done);
        });
      return holders.map((h) => h.ids);
    }

    /** The FleetLock server's answers to pre-reboot and steady-state, in order: [op, id, outcome or error kind]. */
    const lockRequests = (): string[][] =>
      (fleetLock?.log ?? [])
        .filter((e) => e.op === 'pre-reboot' || e.op === 'steady-state')
        .map((e) => [String(e.op), String(e.id), String(e.outcome ?? e.kind)]);

    /**
     * Makes RELEASE the remote's ref: its commit copied in and signed, a static delta from its parent, the
     * summary re-signed. Asynchronous: the guests' consoles are read meanwhile (a full pipe stalls a guest).
     */
    async function publish(name: 'v2' | 'v3'): Promise<void> {
      const release = present(releases[name], name);
      for (const args of [
        ['pull-local', '--repo', server, release.repo, REFERENCE_OS_REF],
        ['sign', '--repo', server, REFERENCE_OS_REF, '--keyfile', keyFile],
        ['static-delta', 'generate', '--repo', server, '--to', REFERENCE_OS_REF],
        ['summary', '--repo', server, '--update', '--sign', keyFile],
      ]) {
        const r = await runCliAsync(args);
        if (r.exitCode !== 0) throw new Error(`arbor ${args.join(' ')} exited ${r.exitCode}:\n${r.stderr}`);
      }
    }

    function buildImage(firmware: Firmware, lockUrl: string): string {
      const v1 = releases.v1;
      if (!v1 || !nginx || !yumKeys) throw new Error('not set up');
      const disk = join(tmp.path, `${firmware}.img`);
      const config = join(tmp.path, `firstboot-${firmware}.yaml`);
      const yum = {
        yumUrl: `http://${HOST_FROM_GUEST}:${nginx.port}/${YUM_DIR}/`,
        armoredKey: readFileSync(yumKeys.publicKey('e2e'), 'utf8'),
      };
      writeFileSync(config, firstBootConfig(firmware, lockUrl, yum));
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
          // The BIOS guest proves the xfs root: GRUB, the initramfs and every later deploy on it.
          '--root-fs',
          firmware === 'uefi' ? 'ext4' : 'xfs',
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
      ) as { size: number; rootFs: string; deployment: { checksum: string }; stepSeconds: Record<string, number> };
      expect(built.deployment.checksum).toBe(v1.checksum);
      const rootFsSeconds = (built.stepSeconds['root-fs'] ?? 0) + (built.stepSeconds.inodes ?? 0);
      timings.push(
        `image build (${firmware}, ${built.rootFs}): ${seconds(Date.now() - started)}, ${(built.size / 2 ** 20).toFixed(0)} MiB, root-fs and inodes ${rootFsSeconds.toFixed(1)} s`,
      );
      return disk;
    }

    /** The assertions of a boot into v2 on trial that arbor-health blessed: the report, then its journal. */
    function expectBlessedV2(m: Machine, report: Report, health: string): void {
      expect(report.hello, context(m)).toBe('2.0');
      expect(report.status, context(m)).toMatch(
        new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v2?.checksum}\\.0[\\s\\S]*Version: v2\\b`),
      );
      expect(report.status, context(m)).toMatch(
        new RegExp(`rollback ${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0`),
      );
      expect(report.status, context(m)).not.toMatch(/Trial:|TRIAL FAILED/);
      expect(report.failedUnits, context(m)).toBe('');
      expect(health, context(m)).toMatch(new RegExp(`ARBOR-HEALTH blessed ${releases.v2?.checksum}\\.0`));
    }
    const HEALTH_JOURNAL = 'systemctl is-active arbor-health.service; journalctl -b -u arbor-health.service -o cat';
    /** `arbor agent status` after the run that gave the slot back: v2 blessed, no slot, nothing to do. */
    function expectSettled(m: Machine, settled: { output: string; status: number }): void {
      const v2 = releases.v2?.checksum.slice(0, 12);
      expect(settled.status, `${settled.output}\n${context(m)}`).toBe(0);
      expect(settled.output).toContain(`Last update: ${v2} (version v2) blessed`);
      expect(settled.output).toMatch(new RegExp(`Reboot slot: none \\(group ${GROUP} at `));
      expect(settled.output).toMatch(/Last run: \S+: up to date/);
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
      // The yum repository the BIOS guest layers a package from: built by rpmbuild, signed by rpmsign.
      yumKeys = new TestKeys(join(tmp.path, 'yum-keys'));
      yumKeys.make('e2e');
      const yumDir = join(tmp.path, 'www', YUM_DIR);
      yumKeys.signRpms(buildPackages(yumDir, LAYERED), 'e2e');
      createRepo(yumDir);
      nginx = await startNginx(join(tmp.path, 'www'));
      // The FleetLock server on etcd, one slot; the observer watches the slot's key, not the server.
      etcd = await startEtcdCluster(join(tmp.path, 'etcd'), 1);
      fleetLock = await serveFleetLock(etcd.endpoints, LOCK_PREFIX, '--group', `${GROUP}=1`);
      watcher = new Etcd3({ hosts: [...etcd.endpoints] });
      const watch = await watcher.watch().key(`${LOCK_PREFIX}/groups/${GROUP}`).create();
      watch.on('put', (kv) => {
        const sem = JSON.parse(kv.value.toString()) as { holders: { id: string }[] };
        holders.push({ at: Date.now(), ids: sem.holders.map((h) => h.id) });
        for (const wake of putWaiters) wake();
      });
      const lockUrl = fleetLock.url.replace('127.0.0.1', HOST_FROM_GUEST);
      // Both images first (each build blocks this process, and a started guest's console must be read),
      // then both guests boot at once: TCG runs each on one host thread.
      const disks = { bios: buildImage('bios', lockUrl), uefi: buildImage('uefi', lockUrl) };
      for (const firmware of ['bios', 'uefi'] as const)
        machines[firmware] = {
          firmware,
          disk: disks[firmware],
          session: startGuest(firmware, disks[firmware]),
          earlier: '',
        };
      const biosStarted = Date.now();
      biosBoot = captured(
        waitForReport(machine('bios').session, 0).then((report) => ({ report, ms: Date.now() - biosStarted })),
      );
    }, COMPOSE_TIMEOUT_MS);

    afterAll(async () => {
      for (const m of Object.values(machines)) m?.session.kill();
      watcher?.close();
      if (fleetLock) await stopFleetLock(fleetLock);
      await etcd?.close();
      await nginx?.stop();
      yumKeys?.stop();
      console.log(`[os-e2e]\n  ${timings.join('\n  ')}`);
    });

    it(
      'GRUB under SeaBIOS boots the xfs-rooted image to multi-user.target with the first-boot configuration applied',
      async () => {
        const booted = await biosBoot;
        if (!booted) throw new Error('the BIOS guest was not started');
        if ('error' in booted) throw booted.error;
        const { report, ms } = booted.value;
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
        const bios = machine('bios');
        await bios.session.waitForShell(120_000, report.end);
        // GRUB read the kernel from it and the initramfs mounted it: the physical root is xfs.
        const fsType = await bios.session.run('stat -f -c %T /sysroot /', 60_000);
        expect(fsType.status, context(bios)).toBe(0);
        expect(fsType.output.match(/^xfs$/gm), context(bios)).toHaveLength(2);
      },
      BOOT_TIMEOUT_MS,
    );

    it(
      'two guests, one FleetLock slot: the first reboots into v2 and gives the slot back once blessed; only then does the second take it',
      async () => {
        const uefi = machine('uefi');
        const bios = machine('bios');
        const v2 = present(releases.v2, 'v2').checksum.slice(0, 12);
        let started = 0;
        // Boot 1 of the UEFI guest: v1, configured by the first-boot configuration.
        let report = await waitForReport(uefi.session, 0);
        timings.push(
          `boot to multi-user.target, systemd-boot/OVMF (v1): guest uptime ${report.uptime} s at the report (beside the other guest)`,
        );
        expect(report.hello, context(uefi)).toBe('1.0');
        expect(report.status, context(uefi)).toMatch(
          new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0`),
        );
        expect(report.status, context(uefi)).toMatch(/First boot: applied/i);
        expect(report.failedUnits, context(uefi)).toBe('');
        await uefi.session.waitForShell(120_000, report.end);
        const configured = await uefi.session.run(
          'hostname; id -un e2e; cat /home/e2e/.ssh/authorized_keys /etc/e2e/greeting /run/e2e-marker',
          60_000,
        );
        expect(configured.status, context(uefi)).toBe(0);
        expect(configured.output.split('\n').filter(Boolean)).toEqual([
          'arbor-e2e',
          'e2e',
          SSH_KEY,
          'written at first boot',
          'first-boot-unit-ran',
        ]);

        // v2 published. Both guests are online; neither agent runs unless the test starts it.
        await publish('v2');
        const online = await Promise.all(
          [uefi, bios].map((m) =>
            m.session.run(
              '/lib/systemd/systemd-networkd-wait-online --timeout=120 --any; systemctl is-enabled arbor-agent.timer',
              180_000,
            ),
          ),
        );
        for (const o of online) expect(o.output).toMatch(/^masked/m);

        // The UEFI guest's agent: checks, stages v2 (a delta pull), takes the slot, reboots.
        const rebootMs = await rebootThroughAgent(uefi);
        timings.push(
          `agent run on the UEFI guest (check, delta pull, stage, take the slot, reboot) until qemu exits: ${seconds(rebootMs)} wall`,
        );
        expect(await observed(1), context(uefi)).toEqual([[agentId('uefi')]]);

        // While it boots v2, the BIOS guest's agent stages v2 too but is refused the slot: no reboot.
        started = Date.now();
        const uefiBoot = captured(waitForReport(uefi.session, 0));
        const refused = await bios.session.run(AGENT_RUN, COMMAND_TIMEOUT_MS);
        timings.push(
          `agent run on the BIOS guest (check, delta pull, stage, refused the slot): ${seconds(Date.now() - started)} wall`,
        );
        expect(refused.status, `${refused.output}\n${context(bios)}`).toBe(0);
        expect(refused.output).toContain(`Staged: ${v2} (version v2)`);
        expect(refused.output).toMatch(
          new RegExp(
            `Last run: \\S+: ${v2} \\(version v2\\) is staged; waiting for a reboot slot \\(semaphore currently full: 1 of 1 slots of group '${GROUP}' are held\\)`,
          ),
        );
        // Still up on v1, v2 staged for its next reboot.
        const biosStatus = await bios.session.run('arbor status', 60_000);
        expect(biosStatus.output, context(bios)).toMatch(
          new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0`),
        );

        // Boot 2 of the UEFI guest: v2 on trial; arbor-health blesses it under systemd.
        const booted = await uefiBoot;
        if ('error' in booted) throw booted.error;
        report = booted.value;
        timings.push(
          `UEFI guest: reboot into v2 on trial to multi-user.target: ${seconds(Date.now() - started)} wall (beside the other guest's agent run)`,
        );
        await uefi.session.waitForShell(120_000, report.end);
        const health = await uefi.session.run(HEALTH_JOURNAL, 60_000);
        expectBlessedV2(uefi, report, health.output);
        expect(await observed(1)).toEqual([[agentId('uefi')]]);

        // Its agent's next run settles the reboot: blessed, so the slot is given back.
        started = Date.now();
        const settled = await uefi.session.run(AGENT_RUN, COMMAND_TIMEOUT_MS);
        timings.push(`agent run on the UEFI guest (blessed: steady-state): ${seconds(Date.now() - started)} wall`);
        expectSettled(uefi, settled);
        expect(await observed(2)).toEqual([[agentId('uefi')], []]);
        uefiOnV2 = report;

        // Now the BIOS guest's next run gets the slot and reboots into the v2 it staged.
        const biosRebootMs = await rebootThroughAgent(bios);
        timings.push(
          `agent run on the BIOS guest (take the slot, reboot) until qemu exits: ${seconds(biosRebootMs)} wall`,
        );
        expect(await observed(3), context(bios)).toEqual([[agentId('uefi')], [], [agentId('bios')]]);
        expect(lockRequests()).toEqual([
          ['pre-reboot', agentId('uefi'), 'acquired'],
          ['pre-reboot', agentId('bios'), 'failed_lock_semaphore_full'],
          ['steady-state', agentId('uefi'), 'released'],
          ['pre-reboot', agentId('bios'), 'acquired'],
        ]);
        // The BIOS guest boots v2 while the UEFI guest goes on to v3 (the next test).
        const biosStarted = Date.now();
        secondUpdate = captured(
          (async (): Promise<SecondUpdate> => {
            const second = await waitForReport(bios.session, 0);
            const bootMs = Date.now() - biosStarted;
            await bios.session.waitForShell(120_000, second.end);
            const biosHealth = await bios.session.run(HEALTH_JOURNAL, 60_000);
            const biosSettled = await bios.session.run(AGENT_RUN, COMMAND_TIMEOUT_MS);
            return { report: second, bootMs, health: biosHealth.output, settled: biosSettled };
          })(),
        );
      },
      4 * BOOT_TIMEOUT_MS,
    );

    it(
      'systemd-boot under OVMF: v3 fails its health check and falls back to v2 by itself; arbor rollback boots v1',
      async () => {
        const uefi = machine('uefi');
        let report = present(uefiOnV2, 'the UEFI guest on v2');
        let started = 0;
        // v3 published: its health check fails, so its trial falls back to v2 by itself. v1 is
        // pinned first, so the upgrade keeps it (the booted deployment and the new one are kept).
        await publish('v3');
        await uefi.session.waitForShell(120_000, report.end);
        const pinned = await uefi.session.run('arbor admin pin 1', 120_000);
        expect(pinned.status, `${pinned.output}\n${context(uefi)}`).toBe(0);
        started = Date.now();
        const toV3 = await uefi.session.run('arbor upgrade', COMMAND_TIMEOUT_MS);
        timings.push(
          `guest arbor upgrade v2 -> v3 (delta pull + deploy): ${seconds(Date.now() - started)} wall (beside the other guest)`,
        );
        expect(toV3.status, `${toV3.output}\n${context(uefi)}`).toBe(0);
        expect(toV3.output).toMatch(/on trial/);
        started = Date.now();
        await powerCycle(uefi, 'systemctl reboot');
        // v3's trial: its health check fails and arbor-health reboots the machine by itself.
        await uefi.session.waitFor(new RegExp(`ARBOR-HEALTH failed ${releases.v3?.checksum}\\.0`), BOOT_TIMEOUT_MS);
        await powerCycle(uefi, null);
        report = await waitForReport(uefi.session, 0);
        timings.push(
          `reboot into v3, failed trial, fallback to v2 at multi-user.target: ${seconds(Date.now() - started)} wall`,
        );
        expect(report.hello, context(uefi)).toBe('2.0');
        expect(report.status, context(uefi)).toMatch(
          new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v2?.checksum}\\.0`),
        );
        expect(report.status, context(uefi)).toMatch(
          new RegExp(
            `TRIAL FAILED: ${REFERENCE_OS_STATEROOT} ${releases.v3?.checksum}\\.0 \\(version v3\\): its health check \\S*60-hello-selftest failed`,
          ),
        );
        expect(report.status, context(uefi)).toMatch(/self-test: the greeting is broken in this release/);
        expect(report.status, context(uefi)).toMatch(
          new RegExp(`${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0[\\s\\S]*Pinned: yes`),
        );

        // `arbor rollback` in the guest: v1 boots (the failed v3 is passed over).
        await uefi.session.waitForShell(120_000, report.end);
        const rolledBack = await uefi.session.run('arbor rollback', COMMAND_TIMEOUT_MS);
        expect(rolledBack.status, `${rolledBack.output}\n${context(uefi)}`).toBe(0);
        started = Date.now();
        await powerCycle(uefi, 'systemctl reboot');
        report = await waitForReport(uefi.session, 0);
        timings.push(`reboot into v1 after rollback: ${seconds(Date.now() - started)} wall`);
        expect(report.hello, context(uefi)).toBe('1.0');
        expect(report.status, context(uefi)).toMatch(
          new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${releases.v1?.checksum}\\.0`),
        );
      },
      5 * BOOT_TIMEOUT_MS,
    );

    it(
      'the second guest boots v2 on trial, is blessed, and gives the slot back: never two holders at once',
      async () => {
        const bios = machine('bios');
        const second = await secondUpdate;
        if (!second) throw new Error('the second guest never took the slot');
        if ('error' in second) throw second.error;
        const { report, bootMs, health, settled } = second.value;
        timings.push(
          `BIOS guest: reboot into v2 on trial to multi-user.target: ${seconds(bootMs)} wall (beside the other guest)`,
        );
        expectBlessedV2(bios, report, health);
        expectSettled(bios, settled);
        expect(await observed(4)).toEqual([[agentId('uefi')], [], [agentId('bios')], []]);
        expect(Math.max(...holders.map((h) => h.ids.length))).toBe(1);
        expect(lockRequests()).toEqual([
          ['pre-reboot', agentId('uefi'), 'acquired'],
          ['pre-reboot', agentId('bios'), 'failed_lock_semaphore_full'],
          ['steady-state', agentId('uefi'), 'released'],
          ['pre-reboot', agentId('bios'), 'acquired'],
          ['steady-state', agentId('bios'), 'released'],
        ]);
        const [firstHeld, firstFree, secondHeld, secondFree] = holders.map((h) => h.at);
        timings.push(
          `slot held by the UEFI guest ${seconds(present(firstFree, 'release') - present(firstHeld, 'take'))}, then by the BIOS guest ${seconds(present(secondFree, 'release') - present(secondHeld, 'take'))}`,
        );
      },
      3 * BOOT_TIMEOUT_MS,
    );

    it(
      'the second guest layers a signed package from the host yum repository and boots the layered deployment',
      async () => {
        const bios = machine('bios');
        const v2 = present(releases.v2, 'v2').checksum;
        // The .repo file and the key came with the first-boot configuration; the metadata, both
        // packages and their signatures are fetched and checked in the guest.
        let started = Date.now();
        const installed = await bios.session.run('arbor install e2e-tool', COMMAND_TIMEOUT_MS);
        timings.push(
          `guest arbor install e2e-tool (yum metadata, two signed packages, derive, deploy): ${seconds(Date.now() - started)} wall`,
        );
        expect(installed.status, `${installed.output}\n${context(bios)}`).toBe(0);
        expect(installed.output).toMatch(
          /add e2e-tool-data-1\.0-1\.noarch \(required by e2e-tool-1\.0-1\.noarch \('e2e-tool-data'\); from e2e\)/,
        );
        expect(installed.output).toMatch(/add e2e-tool-1\.0-1\.noarch \(requested as 'e2e-tool'; from e2e\)/);
        expect(installed.output).toMatch(/on trial/);
        const layered = new RegExp(`deployed ${REFERENCE_OS_STATEROOT} ([0-9a-f]{64})\\.0 \\(version v2\\)`).exec(
          installed.output,
        )?.[1];
        if (layered === undefined) throw new Error(`arbor install named no deployment:\n${installed.output}`);
        expect(layered).not.toBe(v2);

        // The extra reboot: the layered deployment boots on trial and arbor-health blesses it.
        started = Date.now();
        await powerCycle(bios, 'systemctl reboot');
        const report = await waitForReport(bios.session, 0);
        timings.push(`BIOS guest: reboot into the layered deployment, blessed: ${seconds(Date.now() - started)} wall`);
        expect(report.hello, context(bios)).toBe('2.0');
        expect(report.status, context(bios)).toMatch(
          new RegExp(
            `booted ${REFERENCE_OS_STATEROOT} ${layered}\\.0[\\s\\S]*BaseCommit: ${v2}\\s+LayeredPackages: e2e-tool\\n`,
          ),
        );
        expect(report.status, context(bios)).toMatch(new RegExp(`rollback ${REFERENCE_OS_STATEROOT} ${v2}\\.0`));
        expect(report.failedUnits, context(bios)).toBe('');
        await bios.session.waitForShell(120_000, report.end);
        const health = await bios.session.run(HEALTH_JOURNAL, 60_000);
        expect(health.output, context(bios)).toMatch(new RegExp(`ARBOR-HEALTH blessed ${layered}\\.0`));

        // The package works, and the guest's own tools see it.
        const tool = await bios.session.run('e2e-tool', 60_000);
        expect(tool, context(bios)).toEqual({ status: 0, output: 'e2e-tool: layered by arbor install\n' });
        // Its %post ran at install time in the sandbox (after the data package it requires was laid down).
        const post = await bios.session.run(`cat ${POST_FILE}`, 60_000);
        expect(post, context(bios)).toEqual({
          status: 0,
          output: 'post ran: install 1, greeting layered by arbor install\n',
        });
        const status = await bios.session.run('arbor status --json', 120_000);
        expect(status.status, context(bios)).toBe(0);
        const booted = (
          JSON.parse(status.output) as {
            deployments: { role: string; checksum: string; layering: { baseCommit: string } | null }[];
          }
        ).deployments.find((d) => d.role === 'booted');
        expect(booted).toMatchObject({
          checksum: layered,
          layering: {
            baseCommit: v2,
            layeredPackages: ['e2e-tool'],
            localPackages: [],
            removedBasePackages: [],
            replacedBasePackages: [],
          },
        });
        // The tree's rpm database lists base and layers: `rpm -q` where the OS has rpm; the reference OS
        // has none, so `arbor db list` reads the same database (/usr/share/rpm) of the booted commit.
        const db = await bios.session.run(
          `if command -v rpm >/dev/null; then rpm -q e2e-tool e2e-tool-data bash; else arbor db list ${layered} | grep -e '^e2e-' -e '^bash-'; fi`,
          120_000,
        );
        expect(db.status, context(bios)).toBe(0);
        expect(db.output.split('\n').filter(Boolean).sort()).toEqual([
          expect.stringMatching(/^bash-\d/),
          'e2e-tool-1.0-1.noarch',
          'e2e-tool-data-1.0-1.noarch',
        ]);
      },
      2 * BOOT_TIMEOUT_MS,
    );
  },
);
