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
  /** A virtio NIC on QEMU's user network (the host's 127.0.0.1 is 10.0.2.2 to the guest). */
  network?: boolean;
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
    '-no-reboot', // panic=-1, the init's poweroff and a reboot all end qemu instead of looping
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
    // romfile=: no iPXE option ROM, which firmware would otherwise try before the disk.
    ...(options.network ? ['-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0,romfile='] : []),
  ];
}

const diskArgs = (disk: string): string[] => ['-drive', `file=${disk},format=raw,if=virtio`];

/**
 * Runs qemu with ARGS to its end, a marker (then exitGraceMs) or a timeout; see BootOptions and
 * BootResult. A QemuSession does the running; this adds the marker and the time limit.
 */
function runQemu(args: readonly string[], options: BootOptions = {}): Promise<BootResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  const graceMs = options.exitGraceMs ?? EXIT_GRACE_MS;
  const start = Date.now();
  let matched = false;
  let timedOut = false;
  let graceTimer: NodeJS.Timeout | undefined;
  // The session's own limit (`timeout` around qemu) outlives ours: it only matters if this process dies first.
  const session = new QemuSession(args, {
    ...options,
    timeoutMs: timeoutMs + graceMs + 30_000,
    onOutput: (chunk) => {
      options.onOutput?.(chunk);
      if (!matched && options.marker?.test(session.output)) {
        matched = true;
        clearTimeout(timer);
        if (graceMs === 0) session.kill();
        else graceTimer = setTimeout(() => session.kill(), graceMs);
      }
    },
  });
  const timer = setTimeout(() => {
    timedOut = true;
    session.kill();
  }, timeoutMs);
  return session
    .exited()
    .then((exitCode) => ({ output: session.output, exitCode, timedOut, matched, elapsedMs: Date.now() - start }))
    .finally(() => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
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

/** Which firmware a session boots the disk with. */
export type Firmware = 'uefi' | 'bios';

/**
 * A guest whose serial console a test reads and types into: waitFor() returns once the output
 * (from an index on) matches; run() types a shell command at the guest's logged-in console and
 * returns what it printed and its exit status. A reboot ends it (-no-reboot): boot the disk again.
 */
export class QemuSession {
  #output = '';
  #exit: Promise<number | null>;
  #waiters = new Set<() => void>();
  #commands = 0;
  readonly #child: ReturnType<typeof spawn>;

  /** Boots DISK with FIRMWARE. */
  static boot(disk: string, firmware: Firmware, options: BootOptions = {}): QemuSession {
    const firmwareArgs = firmware === 'uefi' ? ['-bios', OVMF_CODE] : [];
    return new QemuSession([...baseArgs(options), ...firmwareArgs, ...diskArgs(disk)], options);
  }

  /** Runs qemu with ARGS as given (options.timeoutMs bounds it through `timeout`). */
  constructor(args: readonly string[], options: BootOptions = {}) {
    const limitS = Math.ceil((options.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS) / 1000);
    // `timeout` kills qemu even if this process dies first; detached puts both in one process
    // group, which is what kill() kills.
    this.#child = spawn('timeout', ['-k', '10', String(limitS), QEMU, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const onData = (chunk: string): void => {
      this.#output += chunk;
      options.onOutput?.(chunk);
      for (const wake of this.#waiters) wake();
    };
    this.#child.stdout?.setEncoding('utf8').on('data', onData);
    this.#child.stderr?.setEncoding('utf8').on('data', (chunk: string) => onData(chunk.replace(/^(?=.)/gm, 'qemu: ')));
    this.#exit = new Promise((resolveExit, rejectExit) => {
      this.#child.on('error', rejectExit); // qemu or timeout could not be started
      this.#child.on('close', (code) => {
        resolveExit(code);
        for (const wake of this.#waiters) wake();
      });
    });
    const killOnExit = (): void => this.kill();
    process.once('exit', killOnExit);
    const forget = (): void => void process.removeListener('exit', killOnExit);
    this.#exit.then(forget, forget);
  }

  /** Everything the console printed so far (qemu's own stderr prefixed `qemu: `). */
  get output(): string {
    return this.#output;
  }

  /** The first match of PATTERN in the output from index FROM on; throws (with the output's tail) after TIMEOUTMS or when qemu exits first. */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<{ match: RegExpExecArray; end: number }> {
    const started = Date.now();
    let exited = false;
    const ended = (): void => void (exited = true);
    this.#exit.then(ended, ended);
    for (;;) {
      const rest = this.#output.slice(from);
      const match = pattern.exec(rest);
      if (match) return { match, end: from + match.index + match[0].length };
      if (exited || Date.now() - started > timeoutMs) {
        const why = exited ? 'qemu exited' : `${timeoutMs} ms passed`;
        throw new Error(`${why} before the console showed ${pattern}; its last output:\n${rest.slice(-4000)}`);
      }
      await new Promise<void>((wake) => {
        const timer = setTimeout(done, 1000);
        function done(): void {
          clearTimeout(timer);
          waiters.delete(done);
          wake();
        }
        const waiters = this.#waiters;
        waiters.add(done);
      });
    }
  }

  /** Types TEXT at the console. */
  send(text: string): void {
    this.#child.stdin?.write(text);
  }

  /**
   * Waits until the console's shell answers (typing a probe every few seconds until its answer
   * appears), from output index FROM on; returns the index after the answer.
   */
  async waitForShell(timeoutMs: number, from = 0): Promise<number> {
    const started = Date.now();
    const probe = `shell-${++this.#commands}`;
    for (;;) {
      this.send(`echo @@${probe}@@$((6*7))\n`);
      try {
        return (await this.waitFor(new RegExp(`@@${probe}@@42`), 5000, from)).end;
      } catch (error) {
        if (Date.now() - started > timeoutMs) throw error;
      }
    }
  }

  /** Runs COMMAND in the console's shell; its output (stdout and stderr) and exit status. */
  async run(command: string, timeoutMs: number): Promise<{ output: string; status: number }> {
    const n = ++this.#commands;
    const from = this.#output.length;
    // The markers are split in the typed line so its echo never matches what they print.
    this.send(`echo "@@B${n}""@@"; { ${command}; } 2>&1; echo "@@E${n} $?""@@"\n`);
    const begin = await this.waitFor(new RegExp(`@@B${n}@@\\r?\\n`), timeoutMs, from);
    const end = await this.waitFor(new RegExp(`@@E${n} (\\d+)@@`), timeoutMs, begin.end);
    const output = this.#output.slice(begin.end, end.end - end.match[0].length).replace(/\r/g, '');
    return { output, status: Number(end.match[1]) };
  }

  /** Resolves with qemu's exit status once it has exited (null when killed). */
  exited(): Promise<number | null> {
    return this.#exit;
  }

  /** Kills qemu (and the `timeout` wrapping it). */
  kill(): void {
    try {
      if (this.#child.pid !== undefined) process.kill(-this.#child.pid, 'SIGKILL');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error; // ESRCH: already gone
    }
  }
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
