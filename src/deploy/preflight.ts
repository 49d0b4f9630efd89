// The preflight of a new deployment: checks run on the prepared tree (checked out, /etc
// merged) before it may become the default, so a machine is never rebooted into a tree that
// cannot come up: an empty kernel or initramfs, a broken init (/sbin/init or init=, and
// /usr/lib/systemd/systemd: dangling or looping links, not executable, a script or ELF binary
// whose interpreter is missing), kernel modules the running system has loaded but the new tree
// lacks when it keeps the running kernel version, and /etc merge conflicts unless accepted.
// (No kernel at all and too little space in /boot are refused earlier, before anything is written.)
import { closeSync, lstatSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, errnoCode } from '../common/errors.js';
import type { EtcConflict } from './etc-merge.js';
import { readFileInRoot, resolveInRoot } from './in-root.js';

type PreflightCheck = 'kernel' | 'init' | 'modules' | 'etc-conflicts';

interface PreflightProblem {
  readonly check: PreflightCheck;
  readonly message: string;
  /** One line per item (paths, modules), for the report. */
  readonly details?: readonly string[];
}

export interface PreflightReport {
  readonly problems: readonly PreflightProblem[];
  /** Checks that ran and found nothing wrong. */
  readonly passed: readonly PreflightCheck[];
  /** Checks that did not apply, with why (e.g. modules when the kernel version changes). */
  readonly skipped: readonly { readonly check: PreflightCheck; readonly why: string }[];
}

export interface PreflightInput {
  /** The prepared deployment directory (its /etc already merged). */
  readonly root: string;
  readonly kver: string;
  readonly vmlinuzBytes: number;
  readonly initramfsBytes: number;
  readonly kargs: readonly string[];
  readonly etcConflicts: readonly EtcConflict[];
  readonly acceptEtcConflicts: boolean;
  /**
   * The running system when this sysroot is the booted one: its kernel release (`uname -r`), the
   * modules it has loaded (/proc/modules), and the booted deployment's directory. Null otherwise
   * (an image build, another machine's disk): the modules check does not apply.
   */
  readonly running: {
    readonly release: string;
    readonly loadedModules: readonly string[];
    readonly bootedRoot: string;
  } | null;
}

/**
 * The program interpreter a file needs: the `#!` line's first word, or an ELF file's PT_INTERP
 * (the dynamic loader). Null for static ELF binaries and other files.
 */
export function interpreterOf(bytes: Buffer, readAt: (offset: number, length: number) => Buffer): string | null {
  if (bytes.subarray(0, 2).toString('latin1') === '#!') {
    const [line = ''] = bytes.subarray(2).toString('latin1').split('\n');
    return line.trim().split(/[ \t]+/)[0] || null;
  }
  if (bytes.length < 52 || bytes.readUInt32BE(0) !== 0x7f454c46) return null;
  const is64 = bytes[4] === 2;
  const le = bytes[5] === 1;
  const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number): number => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const phoff = is64 ? u64(bytes, 32) : u32(bytes, 28);
  const phentsize = u16(bytes, is64 ? 54 : 42);
  const phnum = u16(bytes, is64 ? 56 : 44);
  if (phnum === 0 || phentsize < (is64 ? 56 : 32) || phnum > 256) return null;
  const table = readAt(phoff, phentsize * phnum);
  for (let i = 0; i < phnum; i++) {
    const p = i * phentsize;
    if (p + phentsize > table.length) return null;
    if (u32(table, p) !== 3) continue; // PT_INTERP
    const offset = is64 ? u64(table, p + 8) : u32(table, p + 4);
    const size = is64 ? u64(table, p + 32) : u32(table, p + 16);
    if (size === 0 || size > 4096) return null;
    return readAt(offset, size).toString('latin1').replace(/\0.*$/s, '') || null;
  }
  return null;
}

/** Why the program at `path` (inside `root`) cannot be started, or null when it can. */
function programProblem(root: string, path: string, depth = 0): { why: string; chain: readonly string[] } | null {
  const r = resolveInRoot(root, path);
  if (!r.ok) return { why: r.why, chain: r.chain };
  const st = statSync(r.path);
  if (!st.isFile()) return { why: `${path} is not a regular file`, chain: r.chain };
  if ((st.mode & 0o111) === 0)
    return {
      why: `${path} is not executable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`,
      chain: r.chain,
    };
  if (st.size === 0) return { why: `${path} is empty`, chain: r.chain };
  const fd = openSync(r.path, 'r');
  let interp: string | null;
  try {
    const readAt = (offset: number, length: number): Buffer => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, st.size - offset)));
      const got = buf.length > 0 ? readSync(fd, buf, 0, buf.length, offset) : 0;
      return buf.subarray(0, got);
    };
    interp = interpreterOf(readAt(0, 256), readAt);
  } finally {
    closeSync(fd);
  }
  if (interp === null || depth > 2) return null;
  const inner = programProblem(root, interp, depth + 1);
  return inner === null
    ? null
    : { why: `its interpreter ${interp} cannot run: ${inner.why}`, chain: [...r.chain, ...inner.chain] };
}

/** The init a deployment boots: the last `init=` argument, else /sbin/init. */
export function initPath(kargs: readonly string[]): string {
  let init = '/sbin/init';
  for (const a of kargs) if (a.startsWith('init=')) init = a.slice('init='.length);
  return init;
}

function checkInit(root: string, kargs: readonly string[]): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  const init = initPath(kargs);
  const paths = [init];
  // systemd itself when the tree has it (as a file or a link, even a dangling one).
  const systemd = '/usr/lib/systemd/systemd';
  if (init !== systemd) {
    const parent = resolveInRoot(root, '/usr/lib/systemd');
    if (parent.ok) {
      try {
        lstatSync(join(parent.path, 'systemd'));
        paths.push(systemd);
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
      }
    }
  }
  for (const p of paths) {
    const problem = programProblem(root, p);
    if (problem) {
      problems.push({
        check: 'init',
        message: `${p === init && p !== '/sbin/init' ? `init=${p}` : p} cannot be started: ${problem.why}`,
        details: problem.chain.map((l) => `link ${l}`),
      });
    }
  }
  return problems;
}

/** Module file names (`.ko` with an optional compression suffix) → module names (`-` as `_`). */
const MODULE_FILE = /^(.+)\.ko(\.(xz|zst|gz))?$/;
const moduleName = (file: string): string | null => {
  return MODULE_FILE.exec(file)?.[1]?.replaceAll('-', '_') ?? null;
};

/** Bound on modules.builtin (a few hundred KiB in distribution kernels). */
const MAX_BUILTIN_BYTES = 16 * 1024 * 1024;

/**
 * The modules a tree provides for KVER: every module file under /usr/lib/modules/KVER (the
 * `build` and `source` links are not followed) and the names in modules.builtin. Null when the
 * tree has no such directory.
 */
function readProvidedModules(root: string, kver: string): Set<string> | null {
  const r = resolveInRoot(root, `/usr/lib/modules/${kver}`);
  // A file there (the tree's business) provides no modules; reading it as a directory would crash.
  if (!r.ok || !lstatSync(r.path).isDirectory()) return null;
  const out = new Set<string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.isFile()) {
        const name = moduleName(e.name);
        if (name !== null) out.add(name);
      }
    }
  };
  walk(r.path);
  // Resolved inside the tree too: a modules.builtin link must not make us read a host file.
  const builtin = readFileInRoot(root, `/usr/lib/modules/${kver}/modules.builtin`, MAX_BUILTIN_BYTES);
  for (const line of builtin?.toString('utf8').split('\n') ?? []) {
    const name = moduleName(line.slice(line.lastIndexOf('/') + 1).trim());
    if (name !== null) out.add(name);
  }
  return out;
}

/** The module names of /proc/modules text (first field of each line). */
export function parseProcModules(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

/**
 * Loaded modules the new tree lacks: those the booted tree provides (or all loaded ones when the
 * booted tree has no modules for the release), minus the new tree's. Pure.
 */
export function missingModules(
  loaded: readonly string[],
  booted: ReadonlySet<string> | null,
  next: ReadonlySet<string>,
): string[] {
  return [...new Set(loaded.map((n) => n.replaceAll('-', '_')))]
    .filter((n) => (booted === null || booted.has(n)) && !next.has(n))
    .sort();
}

/** Runs every check on a prepared deployment. */
export function runPreflight(input: PreflightInput): PreflightReport {
  const problems: PreflightProblem[] = [];
  const passed: PreflightCheck[] = [];
  const skipped: { check: PreflightCheck; why: string }[] = [];
  const record = (check: PreflightCheck, found: PreflightProblem[]): void => {
    if (found.length === 0) passed.push(check);
    else problems.push(...found);
  };

  const kernel: PreflightProblem[] = [];
  if (input.vmlinuzBytes === 0)
    kernel.push({ check: 'kernel', message: `the kernel /usr/lib/modules/${input.kver}/vmlinuz is empty` });
  if (input.initramfsBytes === 0)
    kernel.push({ check: 'kernel', message: `the initramfs of kernel ${input.kver} is empty` });
  record('kernel', kernel);

  record('init', checkInit(input.root, input.kargs));

  if (input.running === null) skipped.push({ check: 'modules', why: 'the sysroot is not the running system' });
  else if (input.running.release !== input.kver)
    skipped.push({ check: 'modules', why: `the kernel changes (${input.running.release} -> ${input.kver})` });
  else {
    const next = readProvidedModules(input.root, input.kver) ?? new Set<string>();
    const booted = readProvidedModules(input.running.bootedRoot, input.kver);
    const missing = missingModules(input.running.loadedModules, booted, next);
    record(
      'modules',
      missing.length === 0
        ? []
        : [
            {
              check: 'modules',
              message: `${missing.length} kernel module${missing.length === 1 ? '' : 's'} loaded now ${missing.length === 1 ? 'is' : 'are'} missing from /usr/lib/modules/${input.kver} of the new tree (same kernel ${input.kver})`,
              details: missing,
            },
          ],
    );
  }

  if (input.acceptEtcConflicts || input.etcConflicts.length === 0) {
    if (input.etcConflicts.length > 0)
      skipped.push({ check: 'etc-conflicts', why: `${input.etcConflicts.length} accepted (--accept-etc-conflicts)` });
    else passed.push('etc-conflicts');
  } else {
    problems.push({
      check: 'etc-conflicts',
      message: `${input.etcConflicts.length} file${input.etcConflicts.length === 1 ? '' : 's'} in /etc changed by the admin and by the new defaults`,
      details: input.etcConflicts.map(
        (c) => `/etc/${c.path}: kept the admin's version (${c.admin}); new defaults: ${c.defaults}`,
      ),
    });
  }
  return { problems, passed, skipped };
}

/** The error a failed preflight is refused with: every problem, one per line. */
export function preflightError(deployment: string, report: PreflightReport): ArborError {
  const lines = [
    `preflight refused deployment ${deployment}: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`,
  ];
  for (const p of report.problems) {
    lines.push(`  ${p.check}: ${p.message}`);
    for (const d of p.details ?? []) lines.push(`    ${d}`);
  }
  const hints: string[] = [];
  if (report.problems.some((p) => p.check === 'etc-conflicts'))
    hints.push(
      'review them with `arbor admin config-diff`, then deploy with --accept-etc-conflicts to keep your versions',
    );
  if (report.problems.some((p) => p.check !== 'etc-conflicts'))
    hints.push('fix the tree and compose again; --no-preflight deploys it anyway');
  return new ArborError('E_PREFLIGHT_FAILED', lines.join('\n'), { hint: hints.join('; ') });
}
