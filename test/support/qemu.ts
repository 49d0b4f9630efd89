// Booting disk images in QEMU for tests: direct kernel boot, OVMF (UEFI) and SeaBIOS, under TCG
// (this machine's /dev/kvm is nested and cannot run stock guests). Captures the serial console and
// returns once a marker appears or the guest powers off; never gates on speed, only on a timeout.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hasCommand } from './tool.js';

const QEMU = process.env.ARBOR_QEMU ?? 'qemu-system-x86_64';
const OVMF_CODE = process.env.ARBOR_OVMF ?? '/usr/share/ovmf/OVMF.fd';
/** Measured 9–54 s per boot under TCG, more under load; 300 s leaves room for a busy CI machine. */
const DEFAULT_BOOT_TIMEOUT_MS = 300_000;
/** After the marker, how long the guest may take to power off by itself before it is killed. */
const EXIT_GRACE_MS = 10_000;

export interface BootOptions {
  /** Resolve once the serial output matches (then give qemu exitGraceMs to exit). Default: wait for exit. */
  marker?: RegExp;
  /** After the marker, how long the guest may take to power off by itself before it is killed (default 10 s; 0: at once, a power cut). */
  exitGraceMs?: number;
  timeoutMs?: number;
  memoryMb?: number;
  /** Discard the guest's writes to the disk (qemu -snapshot). Default false: writes persist. */
  snapshot?: boolean;
  /** `tcg` (default; ARBOR_QEMU_ACCEL overrides) or `kvm`. */
  accel?: 'tcg' | 'kvm';
  /** Add an i6300esb watchdog whose expiry powers the guest off (a hung guest that armed it ends). */
  watchdog?: boolean;
  /** Called with each chunk of serial output, e.g. to mirror it while debugging. */
  onOutput?: (chunk: string) => void;
}

export interface BootResult {
  /** Everything the guest wrote to the serial console, plus qemu's own stderr (prefixed `qemu: `). */
  output: string;
  /** qemu's exit status; null when it was killed (timeout, or after the marker and grace period). */
  exitCode: number | null;
  timedOut: boolean;
  /** Whether `marker` was seen (false when none was given). */
  matched: boolean;
  elapsedMs: number;
}

function accelFrom(options: BootOptions): 'tcg' | 'kvm' {
  const accel = options.accel ?? process.env.ARBOR_QEMU_ACCEL ?? 'tcg';
  if (accel !== 'tcg' && accel !== 'kvm') throw new Error(`ARBOR_QEMU_ACCEL must be tcg or kvm, got '${accel}'`);
  return accel;
}

function baseArgs(options: BootOptions): string[] {
  const accel = accelFrom(options);
  return [
    '-nodefaults',
    '-nographic',
    '-no-reboot', // panic=-1 and the init's poweroff both end qemu instead of looping
    '-m',
    String(options.memoryMb ?? 512),
    '-smp',
    '1',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    '-accel',
    accel,
    // qemu64 under TCG: a richer CPU model costs boot time for nothing the tests need.
    '-cpu',
    accel === 'kvm' ? 'host' : 'qemu64',
    ...(options.snapshot ? ['-snapshot'] : []),
    ...(options.watchdog ? ['-device', 'i6300esb', '-action', 'watchdog=poweroff'] : []),
  ];
}

const diskArgs = (disk: string): string[] => ['-drive', `file=${disk},format=raw,if=virtio`];

/** Runs qemu with ARGS; see BootOptions and BootResult. */
function runQemu(args: readonly string[], options: BootOptions = {}): Promise<BootResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  const start = Date.now();
  return new Promise((resolvePromise, reject) => {
    // `timeout` kills qemu even if this process dies first; detached puts both in one process
    // group, which is what we kill.
    const graceMs = options.exitGraceMs ?? EXIT_GRACE_MS;
    const limitS = Math.ceil((timeoutMs + graceMs) / 1000) + 30;
    const child = spawn('timeout', ['-k', '10', String(limitS), QEMU, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    let matched = false;
    let timedOut = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error; // ESRCH: already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const onData = (chunk: string): void => {
      output += chunk;
      options.onOutput?.(chunk);
      if (!matched && options.marker?.test(output)) {
        matched = true;
        clearTimeout(timer);
        if (graceMs === 0) killGroup();
        else graceTimer = setTimeout(killGroup, graceMs);
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => onData(chunk.replace(/^(?=.)/gm, 'qemu: ')));
    child.on('error', (error) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      resolvePromise({ output, exitCode: code, timedOut, matched, elapsedMs: Date.now() - start });
    });
  });
}

export interface DirectBoot {
  kernel: string;
  initrd: string;
  /** The kernel command line. */
  append: string;
  /** A raw disk image attached as virtio-blk (/dev/vda). */
  disk: string;
}

/** Boots KERNEL and INITRD directly (-kernel/-initrd/-append), no firmware menu or bootloader. */
export function bootDirect(boot: DirectBoot, options: BootOptions = {}): Promise<BootResult> {
  return runQemu(
    [
      ...baseArgs(options),
      ...diskArgs(boot.disk),
      '-kernel',
      boot.kernel,
      '-initrd',
      boot.initrd,
      '-append',
      boot.append,
    ],
    options,
  );
}

/** Boots DISK under OVMF (UEFI); volatile variables, so no run leaves state for the next. */
export function bootUefi(disk: string, options: BootOptions = {}): Promise<BootResult> {
  return runQemu([...baseArgs(options), '-bios', OVMF_CODE, ...diskArgs(disk)], options);
}

/** Boots DISK under SeaBIOS (qemu's default firmware). */
export function bootBios(disk: string, options: BootOptions = {}): Promise<BootResult> {
  return runQemu([...baseArgs(options), ...diskArgs(disk)], options);
}

/** What the QEMU helpers need that is absent (commands and firmware files); empty when all is there. */
function qemuToolingMissing(): string[] {
  const missing = [QEMU, 'timeout'].filter((c) => !hasCommand(c));
  if (!existsSync(OVMF_CODE)) missing.push(OVMF_CODE);
  return missing;
}

/** True when qemu, its firmware and `timeout` are present, for `describe.skipIf(!hasQemuTooling())`. */
export function hasQemuTooling(): boolean {
  return qemuToolingMissing().length === 0;
}
