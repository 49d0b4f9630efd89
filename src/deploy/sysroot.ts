// A sysroot on disk (docs/deploy.md): its paths, its lock, its repository, and which deployment
// (if any) the running system booted.
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ArborError, BusyError, UsageError, errnoCode, ioError } from '../common/errors.js';
import { native } from '../common/native.js';
import { Repo } from '../repo/index.js';

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export class Sysroot {
  readonly path: string;
  #repo: Repo | null = null;
  #lockFd: number | null = null;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Opens an initialised sysroot (`arbor admin init-fs`). `/` on a booted host is the deployment,
   * so there the physical root it was booted from, /sysroot, is the sysroot (sysrootCandidates).
   */
  static open(path: string): Sysroot {
    const abs = resolve(path);
    const found = sysrootCandidates(abs).find((candidate) => existsSync(join(candidate, 'arbor', 'repo')));
    if (found === undefined) {
      throw new UsageError('E_SYSROOT_INVALID', `'${abs}' is not an arbor sysroot (no arbor/repo)`, {
        hint: 'create one with `arbor admin init-fs PATH`',
      });
    }
    return new Sysroot(found);
  }

  get repo(): Repo {
    this.#repo ??= Repo.open(this.repoPath);
    return this.#repo;
  }

  get repoPath(): string {
    return join(this.path, 'arbor', 'repo');
  }
  get bootDir(): string {
    return join(this.path, 'boot');
  }
  get kernelsDir(): string {
    return join(this.path, 'boot', 'arbor');
  }
  staterootDir(stateroot: string): string {
    return join(this.path, 'arbor', 'deploy', stateroot);
  }
  deployDir(stateroot: string): string {
    return join(this.staterootDir(stateroot), 'deploy');
  }
  deploymentPath(d: { stateroot: string; checksum: string; serial: number }): string {
    return join(this.deployDir(d.stateroot), `${d.checksum}.${d.serial}`);
  }
  originPath(d: { stateroot: string; checksum: string; serial: number }): string {
    return `${this.deploymentPath(d)}.origin`;
  }
  /** The /etc merge conflicts of a deployment (JSON), for `status`; absent when there were none. */
  etcConflictsPath(d: { stateroot: string; checksum: string; serial: number }): string {
    return `${this.deploymentPath(d)}.etc-conflicts`;
  }
  bootLinksDir(bootversion: number): string {
    return join(this.path, 'arbor', `boot.${bootversion}`);
  }
  /** A deployment prepared by `deploy --stage`, made the default by `admin finalize-staged`. */
  get stagedPath(): string {
    return join(this.path, 'arbor', 'staged-deployment');
  }

  /** The deployment refs as the last complete sync left them (deploy.ts, syncDeployRefs). */
  get deployRefsStampPath(): string {
    return join(this.path, 'arbor', 'deploy-refs');
  }

  assertStateroot(stateroot: string): void {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(stateroot))
      throw new UsageError('E_STATEROOT_INVALID', `'${stateroot}' is not a valid stateroot name`);
    if (!existsSync(this.deployDir(stateroot))) {
      throw new UsageError('E_STATEROOT_UNKNOWN', `stateroot '${stateroot}' does not exist in ${this.path}`, {
        hint: `create it with \`arbor admin os-init ${stateroot}\``,
      });
    }
  }

  /**
   * Takes the sysroot's lock (exclusive: one command changing deployments at a time), waiting up
   * to `timeoutMs`; BusyError (exit 75) after that.
   */
  lock(timeoutMs = 30_000): void {
    if (this.#lockFd !== null) return;
    const path = join(this.path, 'arbor', 'lock');
    let fd: number;
    try {
      fd = openSync(path, 'a+', 0o600);
    } catch (error) {
      if (errnoCode(error) === 'EROFS') {
        throw new ArborError(
          'E_SYSROOT_READ_ONLY',
          `sysroot '${this.path}' is on a read-only file system: this command changes its deployments`,
          {
            cause: error,
            hint: 'remount it read-write (on a booted host: `mount -o remount,rw /sysroot`), or run the command where it is writable',
          },
        );
      }
      throw ioError('open the sysroot lock', path, error);
    }
    const deadline = Date.now() + timeoutMs;
    while (!native.flock(fd, true, false)) {
      if (Date.now() >= deadline) {
        closeSync(fd);
        throw new BusyError('E_SYSROOT_LOCKED', `sysroot '${this.path}' is locked by another arbor process`);
      }
      sleep(50);
    }
    this.#lockFd = fd;
  }

  close(): void {
    this.#repo?.close();
    this.#repo = null;
    if (this.#lockFd !== null) closeSync(this.#lockFd);
    this.#lockFd = null;
  }

  /**
   * The deployment directory the running system booted, from the kernel command line's `arbor=`
   * (resolved inside this sysroot), or null. The command line is /proc/cmdline, or the file
   * named by ARBOR_CMDLINE_FILE (how tests stand in for a booted machine).
   */
  bootedDeploymentPath(): string | null {
    const file = process.env.ARBOR_CMDLINE_FILE ?? '/proc/cmdline';
    let cmdline: string;
    try {
      cmdline = readFileSync(file, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return null;
      throw ioError('read', file, error);
    }
    const arg = parseCmdline(cmdline)
      .find((a) => a.startsWith('arbor='))
      ?.slice('arbor='.length);
    if (arg === undefined) return null;
    // On the booted system the physical root is at /sysroot; with --sysroot it is that path.
    const candidates = this.path === '/' ? ['/sysroot', '/'] : [this.path];
    for (const base of candidates) {
      try {
        const target = realpathSync(join(base, arg));
        if (lstatSync(target).isDirectory()) {
          // Report it in this sysroot's terms.
          const prefix = realpathSync(base);
          return join(this.path, target.slice(prefix.length));
        }
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT' && errnoCode(error) !== 'ENOTDIR') throw error;
      }
    }
    return null;
  }
}

/** Splits a kernel command line into arguments (double quotes group, as the kernel parses it). */
export function parseCmdline(cmdline: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let any = false;
  for (const ch of cmdline.trim()) {
    if (ch === '"') {
      quoted = !quoted;
      current += ch;
      any = true;
    } else if (/\s/.test(ch) && !quoted) {
      if (any) out.push(current);
      current = '';
      any = false;
    } else {
      current += ch;
      any = true;
    }
  }
  if (any) out.push(current);
  return out;
}

/**
 * `arbor admin init-fs PATH`: the top-level directories and an empty repository, bare unless
 * `repoMode` says bare-user (a sysroot staged without root for a disk image).
 */
export function initSysroot(path: string, repoMode: 'bare' | 'bare-user' = 'bare'): Sysroot {
  const abs = resolve(path);
  if (existsSync(join(abs, 'arbor', 'repo')))
    throw new ArborError('E_SYSROOT_EXISTS', `'${abs}' is already an arbor sysroot`);
  for (const [dir, mode] of [
    ['', 0o755],
    ['boot', 0o755],
    ['dev', 0o755],
    ['proc', 0o555],
    ['run', 0o755],
    ['sys', 0o555],
    ['tmp', 0o1777],
    ['var', 0o755],
    ['sysroot', 0o755],
    ['arbor', 0o755],
    ['arbor/deploy', 0o755],
    ['boot/arbor', 0o755],
  ] as const) {
    mkdirSync(join(abs, dir), { recursive: true, mode });
    // mkdir applies the umask: /tmp would be 1755 under the usual 022.
    chmodSync(join(abs, dir), mode);
  }
  Repo.init(join(abs, 'arbor', 'repo'), repoMode).close();
  return Sysroot.open(abs);
}

/** `arbor admin os-init STATEROOT`: the stateroot's deploy directory and its persistent /var. */
export function initStateroot(sysroot: Sysroot, stateroot: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(stateroot))
    throw new UsageError('E_STATEROOT_INVALID', `'${stateroot}' is not a valid stateroot name`);
  const base = sysroot.staterootDir(stateroot);
  mkdirSync(join(base, 'deploy'), { recursive: true, mode: 0o755 });
  for (const [dir, mode] of [
    ['var', 0o755],
    ['var/tmp', 0o1777],
    ['var/lib', 0o755],
    ['var/log', 0o755],
    ['var/home', 0o755],
    ['var/roothome', 0o700],
    ['var/opt', 0o755],
    ['var/srv', 0o755],
    ['var/mnt', 0o755],
    ['var/cache', 0o755],
  ] as const) {
    mkdirSync(join(base, dir), { recursive: true, mode });
    chmodSync(join(base, dir), mode); // as in initSysroot: var/tmp must be 1777 whatever the umask
  }
}

/**
 * Where the sysroot named PATH may be, in order. For `/`, first /sysroot, where the initramfs moved
 * the physical root under the booted deployment (docs/deploy.md; the deployment may link /arbor to
 * sysroot/arbor, as ostree's trees link /ostree, but its /boot is not the sysroot's), then `/`.
 */
export function sysrootCandidates(path: string): string[] {
  return path === '/' ? ['/sysroot', '/'] : [path];
}
