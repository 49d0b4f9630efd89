// Sysroots for deployment tests: made with the real CLI (init-fs, os-init), small bootable trees
// committed into SYSROOT/arbor/repo, the boot set read back from boot/loader/entries with the
// invariants every command must keep, and listings to show a failed command changed nothing.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { type BootEntry } from '../../src/bootloader/index.js';
import { parseBlsEntry, parseEntryFileName } from '../../src/bootloader/bls.js';
import { hashBytes } from '../../src/common/hash.js';
import { type CliResult, runCli } from './cli.js';

export const STATEROOT = 'os';
export const KVER = '6.1.0-arbor';

/** A /usr/etc entry: file text, or a directory, or a symlink. */
export type EtcSpec =
  | string
  | { readonly dir: true }
  | { readonly link: string }
  | { readonly file: string; readonly mode: number };

export interface OsTreeSpec {
  /** `version` metadata, os-release VERSION_ID and /usr/lib/arbor-test-version. */
  readonly version: string;
  /** vmlinuz bytes; null: no kernel at all. Default: `kernel KVER` (shared by every tree). */
  readonly kernel?: string | Buffer | null;
  readonly initramfs?: string | Buffer;
  /** /usr/etc, by path below it. */
  readonly etc?: Readonly<Record<string, EtcSpec>>;
  /** Other files, by path below the root: content, a symlink, or content with a mode. */
  readonly files?: Readonly<
    Record<
      string,
      string | Buffer | { readonly link: string } | { readonly data: string | Buffer; readonly mode: number }
    >
  >;
  /** Leave out /usr/sbin/init (a shell script run by /usr/bin/sh; /sbin links to usr/sbin). */
  readonly noInit?: boolean;
  /** Commit time in seconds (default COMMIT_TIMESTAMP, the same for every commit: see there). */
  readonly timestamp?: number;
}

/**
 * The commit time of test commits unless a test picks one: the same for all, so the order tests
 * happen to commit in never makes a deploy a downgrade (E_DEPLOY_DOWNGRADE) by the clock's second.
 */
export const COMMIT_TIMESTAMP = 1_700_000_000;

/** Commits the tree at `dir` into `repo` on `ref`, root-owned, with `version` metadata, at `timestamp` (seconds). */
export function commitRootOwned(
  repo: string,
  ref: string,
  dir: string,
  version: string,
  timestamp = COMMIT_TIMESTAMP,
): Commit {
  const r = runCli([
    'commit',
    '--repo',
    repo,
    '-b',
    ref,
    '-s',
    `version ${version}`,
    '--tree',
    `dir=${dir}`,
    '--owner-uid',
    '0',
    '--owner-gid',
    '0',
    '--add-metadata',
    `version=${version}`,
    '--timestamp',
    String(timestamp),
  ]);
  return { checksum: expectOk(r, `commit ${ref}`).stdout.trim(), version };
}

/**
 * Writes a bootable tree at `dir` (created) as a composed commit holds it: /usr/lib/modules/KVER
 * with vmlinuz and initramfs.img, /usr/lib/os-release, defaults in /usr/etc (no /etc), and the
 * top-level directories a deployment needs.
 */
export function writeOsTree(dir: string, spec: OsTreeSpec): void {
  for (const sub of [
    'usr/bin',
    'usr/sbin',
    'usr/lib',
    'usr/etc',
    'var',
    'boot',
    'sysroot',
    'dev',
    'proc',
    'sys',
    'run',
    'tmp',
  ])
    mkdirSync(join(dir, sub), { recursive: true });
  symlinkSync('usr/bin', join(dir, 'bin'));
  symlinkSync('usr/sbin', join(dir, 'sbin'));
  // Never run: the preflight only needs an init whose interpreter exists (a non-ELF, non-#! sh).
  writeFileSync(join(dir, 'usr/bin/sh'), 'a test shell\n', { mode: 0o755 });
  if (spec.noInit !== true)
    writeFileSync(join(dir, 'usr/sbin/init'), '#!/bin/sh\nexec /usr/bin/hello\n', { mode: 0o755 });
  if (spec.kernel !== null) {
    const modules = join(dir, 'usr/lib/modules', KVER);
    mkdirSync(modules, { recursive: true });
    writeFileSync(join(modules, 'vmlinuz'), spec.kernel ?? `kernel ${KVER}\n`);
    writeFileSync(join(modules, 'initramfs.img'), spec.initramfs ?? `initramfs ${KVER}\n`);
  }
  writeFileSync(
    join(dir, 'usr/lib/os-release'),
    `NAME="Arbor Test"\nVERSION_ID=${spec.version}\nPRETTY_NAME="Arbor Test ${spec.version}"\n`,
  );
  writeFileSync(join(dir, 'usr/lib/arbor-test-version'), `${spec.version}\n`);
  writeFileSync(join(dir, 'usr/bin/hello'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
  for (const [path, entry] of Object.entries(spec.etc ?? {})) {
    const target = join(dir, 'usr/etc', path);
    mkdirSync(join(target, '..'), { recursive: true });
    if (typeof entry === 'string') writeFileSync(target, entry);
    else if ('dir' in entry) mkdirSync(target, { recursive: true });
    else if ('link' in entry) symlinkSync(entry.link, target);
    else writeFileSync(target, entry.file, { mode: entry.mode });
  }
  for (const [path, content] of Object.entries(spec.files ?? {})) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    if (typeof content === 'string' || Buffer.isBuffer(content)) writeFileSync(join(dir, path), content);
    else if ('link' in content) symlinkSync(content.link, join(dir, path));
    else {
      writeFileSync(join(dir, path), content.data, { mode: content.mode });
      chmodSync(join(dir, path), content.mode);
    }
  }
}

/** One entry of the current boot set, with what its `arbor=` argument and paths resolve to. */
interface BootSetEntry {
  readonly fileName: string;
  readonly entry: BootEntry;
  /** The `arbor=` value, e.g. `/arbor/boot.0/os/BOOTCSUM/0`. */
  readonly arborArg: string;
  /** Kernel arguments other than `arbor=`. */
  readonly kargs: string[];
  /** The deployment directory the argument resolves to (absolute), or null. */
  readonly deployment: string | null;
  /** `CHECKSUM.SERIAL` of that directory, or null. */
  readonly name: string | null;
}

export interface BootSet {
  readonly bootversion: number;
  /** Default first (highest entry index first). */
  readonly entries: BootSetEntry[];
}

export interface Commit {
  readonly checksum: string;
  readonly version: string;
}

/** A sysroot driven through the CLI. Every method that runs arbor passes `--sysroot`. */
export class TestSysroot {
  #trees = 0;

  constructor(
    readonly path: string,
    readonly stateroot = STATEROOT,
  ) {}

  /** `admin init-fs PATH` + `admin os-init STATEROOT`. */
  static create(path: string, stateroot = STATEROOT): TestSysroot {
    const s = new TestSysroot(path, stateroot);
    expectOk(runCli(['admin', 'init-fs', path]), 'admin init-fs');
    s.ok('admin', 'os-init', stateroot);
    return s;
  }

  /** A copy of this sysroot at PATH (cp -a: hardlinks, owners and xattrs kept), e.g. of a template with commits. */
  copyTo(path: string): TestSysroot {
    const r = spawnSync('cp', ['-a', this.path, path], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cp -a ${this.path} ${path} exited ${r.status}: ${r.stderr}`);
    return new TestSysroot(path, this.stateroot);
  }

  get repo(): string {
    return join(this.path, 'arbor/repo');
  }
  get bootDir(): string {
    return join(this.path, 'boot');
  }
  get deployDir(): string {
    return join(this.path, 'arbor/deploy', this.stateroot, 'deploy');
  }
  deploymentDir(checksum: string, serial = 0): string {
    return join(this.deployDir, `${checksum}.${serial}`);
  }

  /** `arbor ARGS --sysroot PATH` with extra environment. */
  cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
    return runCli([...args, '--sysroot', this.path], { env });
  }
  /** cli(), failing unless it exits 0; returns trimmed stdout. */
  ok(...args: string[]): string {
    return expectOk(this.cli(args), args.join(' ')).stdout.trim();
  }
  /** `arbor ARGS --repo SYSROOT/arbor/repo` (repository commands). */
  repoCli(...args: string[]): string {
    return expectOk(runCli([...args, '--repo', this.repo]), args.join(' ')).stdout.trim();
  }

  /** Writes `spec` as a fresh tree below `scratch` and commits it to `ref`; returns the commit. */
  commit(ref: string, spec: OsTreeSpec, scratch: string): Commit {
    const dir = join(scratch, `tree-${this.#trees++}-${spec.version}`);
    writeOsTree(dir, spec);
    return this.commitDir(ref, dir, spec.version, spec.timestamp);
  }
  /** Commits the tree at `dir` to `ref` as root-owned with `version` metadata, at `timestamp` (seconds). */
  commitDir(ref: string, dir: string, version: string, timestamp = COMMIT_TIMESTAMP): Commit {
    return commitRootOwned(this.repo, ref, dir, version, timestamp);
  }

  /** `status --json`, optionally as a machine booted into deployment `bootedIndex` of the current set. */
  status(env: NodeJS.ProcessEnv = {}): StatusJson {
    return JSON.parse(expectOk(this.cli(['status', '--json'], env), 'status --json').stdout) as StatusJson;
  }

  /**
   * Environment that makes arbor see this sysroot as booted into entry `index` of the current boot
   * set: ARBOR_CMDLINE_FILE names a file with that entry's options line (Sysroot.bootedDeploymentPath).
   */
  bootedEnv(index: number, scratch: string): NodeJS.ProcessEnv {
    const entry = this.readBootSet().entries[index];
    if (!entry) throw new Error(`no boot entry ${index}`);
    const file = join(scratch, `cmdline-${this.#trees++}`);
    writeFileSync(file, `BOOT_IMAGE=/vmlinuz ${entry.entry.options}\n`);
    return { ARBOR_CMDLINE_FILE: file };
  }

  /** The current boot set from `boot/loader/entries` (parseBlsEntry), default first. */
  readBootSet(): BootSet {
    const target = readlinkSync(join(this.bootDir, 'loader'));
    const m = /^loader\.([01])$/.exec(target);
    if (!m) throw new Error(`boot/loader points at '${target}'`);
    const bootversion = Number(m[1]);
    const entriesDir = join(this.bootDir, target, 'entries');
    const files = readdirSync(entriesDir)
      .filter((name) => name.endsWith('.conf'))
      .map((fileName) => ({ fileName, index: parseEntryFileName(fileName)?.index ?? -1 }))
      .sort((a, b) => b.index - a.index);
    const entries = files.map(({ fileName }): BootSetEntry => {
      const entry = parseBlsEntry(readFileSync(join(entriesDir, fileName), 'utf8'), fileName);
      const args = entry.options.split(/\s+/).filter((a) => a !== '');
      const arborArg = args.find((a) => a.startsWith('arbor='))?.slice('arbor='.length) ?? '';
      let deployment: string | null = null;
      try {
        deployment = realpathSync(join(this.path, arborArg));
      } catch {
        deployment = null; // a dangling link: bootSetProblems reports it
      }
      return {
        fileName,
        entry,
        arborArg,
        kargs: args.filter((a) => !a.startsWith('arbor=')),
        deployment,
        name: deployment === null ? null : (/\/([0-9a-f]{64}\.\d+)$/.exec(deployment)?.[1] ?? null),
      };
    });
    return { bootversion, entries };
  }

  /** `CHECKSUM.SERIAL` of the entries of the current boot set, default first. */
  bootOrder(): (string | null)[] {
    return this.readBootSet().entries.map((e) => e.name);
  }

  /** Every way the boot set breaks the layout of docs/deploy.md; empty when it is sound. */
  bootSetProblems(): string[] {
    const problems: string[] = [];
    const loader = join(this.bootDir, 'loader');
    if (!existsSync(loader)) return lstatOrNull(loader) ? ['boot/loader is a dangling symlink'] : [];
    if (!lstatSync(loader).isSymbolicLink()) return ['boot/loader is not a symlink'];
    let set: BootSet;
    try {
      set = this.readBootSet();
    } catch (error) {
      return [`boot set unreadable: ${(error as Error).message}`];
    }
    const n = set.entries.length;
    const realRoot = realpathSync(this.path);
    set.entries.forEach((e, i) => {
      const at = `entry ${e.fileName}`;
      if (parseEntryFileName(e.fileName)?.index !== n - 1 - i)
        problems.push(`${at}: index is not ${n - 1 - i} of ${n}`);
      if (e.entry.version !== String(n - i)) problems.push(`${at}: version ${e.entry.version} is not ${n - i}`);
      const m = /^\/arbor\/boot\.(\d)\/([^/]+)\/([0-9a-f]{64})\/(\d+)$/.exec(e.arborArg);
      if (!m) {
        problems.push(`${at}: arbor=${e.arborArg} is not /arbor/boot.N/STATEROOT/BOOTCSUM/I`);
        return;
      }
      const [, bv, stateroot, bootcsum, index] = m as unknown as [string, string, string, string, string];
      if (Number(bv) !== set.bootversion)
        problems.push(`${at}: arbor= names boot.${bv}, loader is loader.${set.bootversion}`);
      if (Number(index) !== i) problems.push(`${at}: arbor= index ${index} is not its position ${i}`);
      const link = join(this.path, e.arborArg);
      const linkStat = lstatOrNull(link);
      if (!linkStat?.isSymbolicLink()) problems.push(`${at}: ${e.arborArg} is not a symlink`);
      else if (isAbsolute(readlinkSync(link))) problems.push(`${at}: ${e.arborArg} is an absolute symlink`);
      if (e.deployment === null) problems.push(`${at}: ${e.arborArg} does not resolve`);
      else {
        const rel = relative(realRoot, e.deployment);
        if (!new RegExp(`^arbor/deploy/${stateroot}/deploy/[0-9a-f]{64}\\.\\d+$`).test(rel))
          problems.push(`${at}: resolves to ${rel}, not a deployment directory`);
        for (const sub of ['usr', 'etc'])
          if (!lstatOrNull(join(e.deployment, sub))?.isDirectory())
            problems.push(`${at}: deployment ${rel} has no ${sub}/`);
      }
      if (e.entry.linux !== `/arbor/${stateroot}-${bootcsum}/vmlinuz`)
        problems.push(`${at}: linux ${e.entry.linux} does not name its BOOTCSUM dir`);
      if (e.entry.initrd !== `/arbor/${stateroot}-${bootcsum}/initramfs.img`)
        problems.push(`${at}: initrd ${e.entry.initrd} does not name its BOOTCSUM dir`);
      const files = [e.entry.linux, e.entry.initrd ?? ''].map((p) => join(this.bootDir, p));
      if (!files.every((f) => lstatOrNull(f)?.isFile())) {
        problems.push(`${at}: ${files.filter((f) => !lstatOrNull(f)?.isFile()).join(', ')} missing`);
        return;
      }
      const [vmlinuz, initramfs] = files.map((f) => readFileSync(f)) as [Buffer, Buffer];
      if (hashBytes(vmlinuz, initramfs) !== bootcsum)
        problems.push(`${at}: kernel + initramfs do not hash to ${bootcsum}`);
      if (e.deployment !== null) {
        const own = join(e.deployment, 'usr/lib/modules', KVER);
        if (existsSync(own) && !readFileSync(join(own, 'vmlinuz')).equals(vmlinuz))
          problems.push(`${at}: /boot kernel differs from the deployment's`);
      }
    });
    return problems;
  }

  /**
   * What a failed command must leave untouched, one line per path: everything under boot/
   * (files with a digest, symlinks with their target), the arbor/boot.N links, deployment
   * directories (by inode, not content), origins and the staged-deployment file.
   */
  listing(): string[] {
    const out: string[] = [];
    const walk = (dir: string, rel: string, deep: (rel: string) => boolean): void => {
      for (const name of readdirSync(dir).sort()) {
        const path = join(dir, name);
        const key = `${rel}/${name}`;
        const st = lstatSync(path);
        if (st.isSymbolicLink()) out.push(`${key} -> ${readlinkSync(path)}`);
        else if (st.isDirectory()) {
          out.push(`${key}/ ino=${st.ino}`);
          if (deep(key)) walk(path, key, deep);
        } else
          out.push(`${key} ${st.size} ${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`);
      }
    };
    walk(this.bootDir, 'boot', (key) => key !== 'boot/lost+found');
    // arbor/repo is the repository's business; deployment directories count by inode.
    walk(
      join(this.path, 'arbor'),
      'arbor',
      (key) =>
        key !== 'arbor/repo' && !/\/deploy\/[^/]+\/deploy\/[^/]+$/.test(key) && !/\/deploy\/[^/]+\/var$/.test(key),
    );
    return out.filter((line) => !line.startsWith('arbor/lock '));
  }

  /** Names in the stateroot's deploy directory (deployments, origins, leftovers), sorted. */
  deployNames(): string[] {
    return readdirSync(this.deployDir).sort();
  }
  /** Directories in boot/arbor (one per stateroot and distinct kernel + initramfs). */
  kernelDirs(): string[] {
    return readdirSync(join(this.bootDir, 'arbor')).sort();
  }
}

interface StatusDeployment {
  index: number;
  role: string;
  stateroot: string;
  checksum: string;
  serial: number;
  version: string | null;
  origin: string | null;
  pinned: boolean;
  kargs: string[];
  bootcsum: string;
  etcConflicts: { path: string; admin: string; defaults: string }[];
}

export interface StatusJson {
  bootversion: number | null;
  deployments: StatusDeployment[];
  staged: { checksum: string; serial: number; version: string | null } | null;
  firstboot: { state: string; steps: number | null; failedStep: string | null; output: string | null } | null;
}

function lstatOrNull(path: string): ReturnType<typeof lstatSync> | null {
  try {
    return lstatSync(path);
  } catch {
    return null; // absent (or a dangling component): the caller reports what it expected
  }
}

function expectOk(r: CliResult, what: string): CliResult {
  if (r.exitCode !== 0) throw new Error(`arbor ${what} exited ${r.exitCode ?? r.signal}:\n${r.stderr}${r.stdout}`);
  return r;
}

/** The object file of a bare repository holding file content `checksum`. */
export const fileObjectPath = (repo: string, checksum: string): string =>
  join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.file`);
