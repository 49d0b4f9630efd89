// The sandbox compose runs scriptlets and postprocess scripts in: the tree being composed (object
// ids in a TreeEditor) is checked out as hardlinks into the store and becomes the read-only lower
// layer of an overlay; each step runs under bubblewrap with that overlay as /, and what the steps
// changed is read back from the overlay's upper layer into the editor.
import { spawn } from 'node:child_process';
import {
  type Stats,
  accessSync,
  constants as fsConstants,
  statSync,
  chmodSync,
  chownSync,
  closeSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { ArborError, assert, errnoCode, ioError } from '../common/errors.js';
import { type Checksum, StreamHasher, hashBytes, isChecksum } from '../common/hash.js';
import { native } from '../common/native.js';
import {
  type DirMeta,
  type FileHeader,
  S_IFSOCK,
  type Transaction,
  type TreeEditor,
  type Xattr,
  checkoutTree,
  updateCheckout,
  encodeDirMeta,
  encodeDirTree,
  encodeFileHeader,
  fileType,
  headerFromDisk,
  invalidNameReason,
  isRegular,
  isSymlink,
  sortXattrs,
} from '../repo/index.js';

/** Where a step's script is mounted inside the sandbox (read-only, mode 0755). */
export const SANDBOX_SCRIPT_PATH = '/run/arbor/script';

/** PATH inside the sandbox (rpm-ostree uses /usr/sbin:/usr/bin; /sbin and /bin serve trees without the /usr merge). */
const SANDBOX_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** One program run in the tree. */
export interface SandboxStep {
  /** Names the step in errors: "%post of 'foo-1-1.noarch'", "postprocess script 1". */
  readonly label: string;
  /** Program and arguments as the tree sees them; a bare name is looked up in SANDBOX_PATH. */
  readonly argv: readonly string[];
  /** Content mounted at SANDBOX_SCRIPT_PATH for this step (argv names it where it belongs). */
  readonly script?: string | Buffer | undefined;
  /** Given on standard input (file triggers get their paths so); otherwise stdin is /dev/null. */
  readonly stdin?: string | undefined;
  /** The code a step that exits non-zero, is killed or times out fails with, and the error's hint. */
  readonly failureCode: `E_${string}`;
  readonly failureHint?: string;
}

export interface SandboxOptions {
  /** Kills a step that runs longer. None by default: rpm sets no limit either. */
  readonly timeoutMs?: number;
  /** Called after each step that succeeded, with the tail of its output (stdout and stderr as interleaved). */
  readonly onStep?: (step: SandboxStep, output: string) => void;
}

/** A step that failed; `output` is the tail (at most 64 KiB) of what it wrote to stdout and stderr. */
export class SandboxStepError extends ArborError {
  readonly output: string;
  constructor(code: `E_${string}`, message: string, output: string, opts: { hint?: string } = {}) {
    super(code, message, opts);
    this.output = output;
  }
}

/** Output kept per step: a runaway script must not fill memory, and the end says what went wrong. */
const OUTPUT_LIMIT_BYTES = 64 * 1024;
/** Lines of output quoted in an error message. */
const MESSAGE_OUTPUT_LINES = 40;
/** Regular files up to this size are read whole; bigger ones are hashed in chunks and copied by the kernel. */
const WHOLE_FILE_LIMIT_BYTES = 4 * 1024 * 1024;
const MOUNT_FAILED = 'arbor-sandbox: cannot mount the overlay';
/** Top-level directories bubblewrap mounts over; made in the upper layer when the tree lacks them. */
const MOUNT_POINTS = ['dev', 'proc', 'run', 'tmp'] as const;
/**
 * What root keeps inside: rpm-ostree's list, a subset of Docker's defaults. Dropped among others:
 * CAP_SYS_ADMIN (mounts), CAP_MKNOD (a device node for the host's disk would be a way out),
 * CAP_SYS_MODULE, CAP_LINUX_IMMUTABLE (an immutable file would outlive the sandbox directory).
 */
const CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_SYS_CHROOT',
  'CAP_SETFCAP',
];

// Run by the host's /bin/sh inside `unshare --mount`: the overlay exists only in that private mount
// namespace and vanishes with it, however the step ends. Relative layer paths (the cwd is the
// sandbox directory) keep ',' and ':' in the repository's path out of the mount options.
// redirect_dir/metacopy off: renamed directories are copied and chmod copies data up, so the upper
// layer holds only whole files, whiteouts and opaque directories (see applyUpper).
const WRAPPER = `exec 2>&1
umask 022
mount -t overlay arbor-sandbox -o lowerdir=lower,upperdir=upper,workdir=work,redirect_dir=off,metacopy=off,index=off,xino=off,nodev,nosuid merged || { echo '${MOUNT_FAILED}'; exit 125; }
exec "$@"`;

let availability: string | null | undefined;

/** Why scripts cannot run here (not root, a tool missing), or null when they can. */
function sandboxProblem(): string | null {
  if (availability !== undefined) return availability;
  availability = null;
  if (process.getuid?.() !== 0) availability = 'it needs root (the tree is mounted as an overlay)';
  else {
    const tool = ['bwrap', 'unshare', 'mount'].find((t) => !onPath(t));
    if (tool !== undefined)
      availability = `'${tool}' is not installed (${tool === 'bwrap' ? 'bubblewrap' : 'util-linux'})`;
  }
  return availability;
}

/** Whether PATH has an executable `name` (looked up, not run: three programs started cost a compose 0.1 s). */
function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, name), fsConstants.X_OK);
      return statSync(join(dir, name)).isFile();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'EACCES' || errnoCode(error) === 'ENOTDIR')
        return false;
      throw ioError('inspect', join(dir, name), error);
    }
  });
}

/**
 * Runs `steps` in order in a sandbox whose root is the tree `edit` holds, then writes what they
 * changed (files, directories, owners, modes, xattrs, removals) into `edit` as objects of `tx`.
 * A failing step throws (its `failureCode`) and nothing is applied. Publishes the objects staged
 * so far (`tx.checkpoint()`): the checkout reads them from the repository.
 */
export async function runInTree(
  tx: Transaction,
  edit: TreeEditor,
  steps: readonly SandboxStep[],
  options: SandboxOptions = {},
): Promise<void> {
  if (steps.length === 0) return;
  const problem = sandboxProblem();
  if (problem !== null) {
    throw new ArborError('E_SANDBOX_UNAVAILABLE', `cannot run ${steps[0]?.label} in a sandbox: ${problem}`, {
      hint: 'run as root with bubblewrap and util-linux installed, or compose with --no-scripts (skipped scriptlets are recorded in the commit)',
    });
  }
  // Before anything is checked out: a missing interpreter fails the compose at once.
  for (const step of steps) checkProgram(tx, edit, step);
  const root = edit.write();
  tx.checkpoint();
  // Inside the staging directory: on the store's filesystem (hardlinks), and removed with it when this process dies.
  const dir = mkdtempSync(join(tx.staging, 'sandbox-'));
  const cache = await openLowerCache(tx, root, dir);
  try {
    const lower = cache.path;
    // The mount names its layers relative to `dir` (no commas or colons of the repository's path in its options).
    if (lower !== join(dir, 'lower')) symlinkSync(lower, join(dir, 'lower'));
    const upper = join(dir, 'upper');
    for (const name of ['upper', 'work', 'merged']) mkdirSync(join(dir, name), 0o700);
    // The overlay's root takes the upper directory's owner, mode and xattrs.
    applyDirMeta(upper, edit.dirMeta(root.meta));
    const present = new Set(readdirSync(lower));
    // Scratch space, as /tmp: what scripts leave in /var/tmp is not part of the image.
    const scratch = edit.get('/var/tmp')?.kind === 'dir' ? ['/var/tmp'] : [];
    for (const step of steps) {
      const output = await runStep(dir, step, scratch, options.timeoutMs);
      options.onStep?.(step, output);
    }
    applyUpper(tx, edit, upper, new Set(MOUNT_POINTS.filter((name) => !present.has(name))));
  } finally {
    cache.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The overlay's lower layer: a hardlinked checkout of the tree the scripts start from. Checking
 * out and deleting a whole OS tree costs seconds while a recompose changes a few packages, so the
 * last one is kept in the repository (`tmp/sandbox-lower`, with `.root` naming the tree it holds)
 * and brought up to date by updateCheckout. overlayfs never writes to its lower layer. The
 * `.root` file is removed before an update and written after it, so a killed update leaves no
 * claim about a half-updated directory: the next run starts over. When another compose holds the
 * cache, or the repository is not bare, a private checkout inside `dir` is used instead.
 */
async function openLowerCache(
  tx: Transaction,
  root: { tree: Checksum; meta: Checksum },
  dir: string,
): Promise<{ path: string; release(): void }> {
  const base = join(tx.repo.path, 'tmp', 'sandbox-lower');
  const marker = `${base}.root`;
  let fd: number | undefined;
  if (tx.repo.mode === 'bare') {
    fd = openSync(`${base}.lock`, 'a+', 0o600);
    if (!native.flock(fd, true, false)) {
      closeSync(fd);
      fd = undefined;
    }
  }
  if (fd === undefined) {
    const path = join(dir, 'lower');
    await checkoutTree(tx.repo, root, path, { mode: 'auto' });
    return { path, release: () => undefined };
  }
  const lockFd = fd;
  const release = (): void => closeSync(lockFd);
  try {
    let previous: { tree: Checksum; meta: Checksum } | null = null;
    try {
      // A damaged marker (not two checksums) only means the cache cannot be updated in place.
      const [tree = '', meta = ''] = readFileSync(marker, 'utf8').trim().split(' ');
      if (
        isChecksum(tree) &&
        isChecksum(meta) &&
        tx.repo.hasObject(tree, 'dirtree') &&
        tx.repo.hasObject(meta, 'dirmeta')
      )
        previous = { tree, meta };
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw ioError('read', marker, error);
    }
    rmSync(marker, { force: true });
    let updated = false;
    if (previous !== null) {
      try {
        updateCheckout(tx.repo, base, previous, root, { mode: 'auto' });
        updated = true;
      } catch (error) {
        // A pruned subtree of the old root, or a damaged cache: start over.
        if (!(error instanceof ArborError)) throw error;
      }
    }
    if (!updated) {
      rmSync(base, { recursive: true, force: true });
      await checkoutTree(tx.repo, root, base, { mode: 'auto' });
    }
    writeFileSync(marker, `${root.tree} ${root.meta}\n`);
    return { path: base, release };
  } catch (error) {
    release();
    throw error;
  }
}

function applyDirMeta(path: string, meta: DirMeta): void {
  try {
    chownSync(path, meta.uid, meta.gid);
    chmodSync(path, meta.mode & 0o7777);
    for (const x of meta.xattrs) native.setxattr(path, x.name, x.value);
  } catch (error) {
    throw ioError('set owner and mode of', path, error);
  }
}

/** The program a step execs: a script's `#!` interpreter (execvp falls back to /bin/sh without one). */
function programOf(step: SandboxStep): string {
  const first = step.argv[0];
  assert(first !== undefined, `step '${step.label}' has an empty argv`);
  if (first !== SANDBOX_SCRIPT_PATH) return first;
  assert(step.script !== undefined, `step '${step.label}' runs its script but has none`);
  const text = typeof step.script === 'string' ? step.script : step.script.subarray(0, 256).toString('latin1');
  return /^#!\s*(\S+)/.exec(text)?.[1] ?? '/bin/sh';
}

function checkProgram(tx: Transaction, edit: TreeEditor, step: SandboxStep): void {
  const program = programOf(step);
  const candidates = program.includes('/') ? [program] : SANDBOX_PATH.split(':').map((dir) => `${dir}/${program}`);
  let problem = 'is not in the tree';
  for (const path of candidates) {
    const found = resolveInTree(tx, edit, path);
    if (found === undefined) continue;
    if (typeof found === 'string') problem = found;
    else if (!isRegular(found.mode)) problem = 'is not a regular file';
    else if ((found.mode & 0o111) === 0) problem = 'is not executable';
    else return;
    break;
  }
  if (!program.includes('/') && problem === 'is not in the tree') problem = `is not in the tree's ${SANDBOX_PATH}`;
  throw new ArborError('E_SANDBOX_INTERPRETER', `${step.label} runs '${program}', which ${problem}`, {
    hint: 'the program must come from a package in the tree (scriptlet interpreters are Requires(pre) or Requires(post) of their package)',
  });
}

/**
 * Follows `path` through the tree as the kernel would inside the sandbox (symlinks, absolute ones
 * from the tree's root, `..`): the file's header, a problem, or undefined when nothing is there.
 */
function resolveInTree(tx: Transaction, edit: TreeEditor, path: string): FileHeader | string | undefined {
  const split = (p: string): string[] => p.split('/').filter((part) => part !== '' && part !== '.');
  let resolved: string[] = [];
  let todo = split(path);
  let links = 0;
  for (let part = todo.shift(); part !== undefined; part = todo.shift()) {
    if (part === '..') {
      resolved.pop();
      continue;
    }
    if (invalidNameReason(part) !== undefined) return undefined;
    const entry = edit.get(`/${[...resolved, part].join('/')}`);
    if (entry === undefined) return undefined;
    if (entry.kind === 'dir') {
      resolved.push(part);
      continue;
    }
    const header = tx.readFileHeader(entry.checksum);
    if (isSymlink(header.mode)) {
      if (++links > 40) return 'is a symlink loop'; // the kernel's limit (ELOOP)
      if (header.symlinkTarget.startsWith('/')) resolved = [];
      todo = [...split(header.symlinkTarget), ...todo];
      continue;
    }
    return todo.length === 0 ? header : undefined;
  }
  return 'is a directory';
}

function bwrapArgs(dir: string, scratch: readonly string[]): string[] {
  return [
    // No user namespace: root keeps real ids, so chown to any uid works (bwrap's userns maps only 0).
    '--unshare-ipc',
    '--unshare-pid',
    '--unshare-net',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--die-with-parent',
    '--new-session',
    '--bind',
    join(dir, 'merged'),
    '/',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--tmpfs',
    '/run',
    ...scratch.flatMap((path) => ['--tmpfs', path]),
    '--dir',
    '/run/arbor',
    '--ro-bind',
    join(dir, 'script'),
    SANDBOX_SCRIPT_PATH,
    '--chdir',
    '/',
    '--clearenv',
    '--setenv',
    'PATH',
    SANDBOX_PATH,
    '--setenv',
    'HOME',
    '/root',
    '--setenv',
    'LANG',
    'C.UTF-8',
    // systemctl (presets, enable in %post) works on unit files without a running systemd.
    '--setenv',
    'SYSTEMD_OFFLINE',
    '1',
    '--cap-drop',
    'ALL',
    ...CAPABILITIES.flatMap((cap) => ['--cap-add', cap]),
  ];
}

/** Keeps the last OUTPUT_LIMIT_BYTES of a stream. */
class OutputTail {
  #chunks: Buffer[] = [];
  #bytes = 0;
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes > 2 * OUTPUT_LIMIT_BYTES) {
      const kept = Buffer.concat(this.#chunks).subarray(-OUTPUT_LIMIT_BYTES);
      this.#chunks = [kept];
      this.#bytes = kept.length;
    }
  }
  text(): string {
    return Buffer.concat(this.#chunks).subarray(-OUTPUT_LIMIT_BYTES).toString('utf8');
  }
}

/** The last lines of a step's output, indented, for an error message. */
function quoteOutput(output: string): string {
  const lines = output.replace(/\n+$/, '').split('\n');
  if (lines.length === 1 && lines[0] === '') return ' (it printed nothing)';
  const shown = lines
    .slice(-MESSAGE_OUTPUT_LINES)
    .map((line) => `  | ${line.length > 400 ? `${line.slice(0, 400)}…` : line}`);
  const cut = lines.length > MESSAGE_OUTPUT_LINES ? `, last ${MESSAGE_OUTPUT_LINES} lines` : '';
  return `; its output${cut}:\n${shown.join('\n')}`;
}

async function runStep(
  dir: string,
  step: SandboxStep,
  scratch: readonly string[],
  timeoutMs: number | undefined,
): Promise<string> {
  const scriptPath = join(dir, 'script');
  rmSync(scriptPath, { force: true });
  writeFileSync(scriptPath, step.script ?? '');
  chmodSync(scriptPath, 0o755);
  const args = [
    '--mount',
    '--propagation',
    'private',
    '--',
    '/bin/sh',
    '-c',
    WRAPPER,
    'arbor-sandbox',
    'bwrap',
    ...bwrapArgs(dir, scratch),
    '--',
    ...step.argv,
  ];
  const tail = new OutputTail();
  const child = spawn('unshare', args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    stdio: [step.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => tail.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => tail.push(chunk));
  if (child.stdin) {
    child.stdin.on('error', () => {}); // EPIPE: a trigger script need not read its paths
    child.stdin.end(step.stdin);
  }
  let timedOut = false;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL'); // bwrap's --die-with-parent takes the sandbox's processes with it
        }, timeoutMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve({ code: c, signal: s }));
    },
  )
    .catch((error: unknown) => {
      throw new ArborError(
        'E_SANDBOX_UNAVAILABLE',
        `cannot start the sandbox for ${step.label}: ${(error as Error).message}`,
        { cause: error },
      );
    })
    .finally(() => clearTimeout(timer));
  const output = tail.text();
  if (code === 0) return output;
  if (code === 125 && output.includes(MOUNT_FAILED)) {
    throw new SandboxStepError(
      'E_SANDBOX_UNAVAILABLE',
      `cannot mount the tree as an overlay in '${dir}' for ${step.label}${quoteOutput(output)}`,
      output,
      {
        hint: 'the directory holding the repository must support overlayfs upper layers (not overlayfs itself, not NFS)',
      },
    );
  }
  const how = timedOut
    ? `did not finish within ${timeoutMs} ms and was killed`
    : code !== null
      ? `failed with exit status ${code}`
      : `was killed by ${signal}`;
  throw new SandboxStepError(
    step.failureCode,
    `${step.label} ${how}${quoteOutput(output)}`,
    output,
    step.failureHint !== undefined ? { hint: step.failureHint } : {},
  );
}

// ---- Reading the upper layer back --------------------------------------------------------------

/** overlayfs marks a removed lower entry with a 0:0 character device of the same name. */
const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

/** xattrs of a path in the upper layer, without overlayfs's own (trusted.overlay.*). */
function xattrsOf(path: string): Xattr[] {
  return sortXattrs(
    native
      .lgetxattrs(path)
      .filter(([name]) => !name.startsWith('trusted.overlay.'))
      .map(([name, value]) => ({ name, value })),
  );
}

/** A directory whose lower entries are all hidden: it replaces the lower directory whole. */
const isOpaque = (path: string): boolean =>
  native.lgetxattrs(path).some(([name, value]) => name === 'trusted.overlay.opaque' && value.toString() === 'y');

function namesIn(dir: string, treePath: string): string[] {
  const names: string[] = [];
  for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
    const name = raw.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(raw)) {
      throw new ArborError('E_NAME_ENCODING', `a script made '${treePath}/${name}', a name that is not valid UTF-8`, {
        hint: 'Arbor stores names as UTF-8',
      });
    }
    names.push(name);
  }
  return names.sort();
}

/** Applies the upper layer to the editor: removals, whole new or opaque directories, changed entries. */
function applyUpper(tx: Transaction, edit: TreeEditor, upper: string, skipTop: ReadonlySet<string>): void {
  const visit = (hostDir: string, treeDir: string): void => {
    for (const name of namesIn(hostDir, treeDir)) {
      if (treeDir === '' && skipTop.has(name)) continue;
      const host = join(hostDir, name);
      const path = `${treeDir}/${name}`;
      const st = lstatSync(host);
      if (isWhiteout(st)) {
        edit.remove(path);
      } else if (!st.isDirectory()) {
        edit.set(path, {
          kind: 'file',
          checksum: writeFileObject(tx, host, st, path),
          size: isRegular(st.mode) ? st.size : 0,
        });
      } else if (edit.get(path)?.kind === 'dir' && !isOpaque(host)) {
        // A merged directory: only what the upper layer holds changed below it; its own metadata was copied up.
        visit(host, path);
        const current = edit.get(path);
        assert(current?.kind === 'dir', `'${path}' stopped being a directory`);
        const meta = tx.writeMetadata('dirmeta', encodeDirMeta(dirMetaOf(host, st)));
        if (meta !== current.meta) edit.set(path, { kind: 'dir', tree: current.tree, meta });
      } else {
        edit.set(path, { kind: 'dir', ...writeSubtree(tx, host, st, path) });
      }
    }
  };
  // The root's own owner and mode stay the tree's: TreeEditor cannot replace the root's dirmeta.
  visit(upper, '');
}

function dirMetaOf(path: string, st: Stats): DirMeta {
  return { uid: st.uid, gid: st.gid, mode: st.mode, xattrs: xattrsOf(path) };
}

function writeSubtree(tx: Transaction, dir: string, st: Stats, treePath: string): { tree: Checksum; meta: Checksum } {
  const files: { name: string; checksum: Checksum; size: number }[] = [];
  const dirs: { name: string; tree: Checksum; meta: Checksum }[] = [];
  for (const name of namesIn(dir, treePath)) {
    const host = join(dir, name);
    const cst = lstatSync(host);
    if (isWhiteout(cst)) continue; // nothing below a new or opaque directory to hide
    if (cst.isDirectory()) dirs.push({ name, ...writeSubtree(tx, host, cst, `${treePath}/${name}`) });
    else
      files.push({
        name,
        checksum: writeFileObject(tx, host, cst, `${treePath}/${name}`),
        size: isRegular(cst.mode) ? cst.size : 0,
      });
  }
  return {
    tree: tx.writeMetadata('dirtree', encodeDirTree({ files, dirs })),
    meta: tx.writeMetadata('dirmeta', encodeDirMeta(dirMetaOf(dir, st))),
  };
}

/** Stores one non-directory of the upper layer as a file object (content, owner, mode, xattrs). */
function writeFileObject(tx: Transaction, host: string, st: Stats, treePath: string): Checksum {
  if (fileType(st.mode) === S_IFSOCK) {
    throw new ArborError('E_UNSUPPORTED_FILE', `a script left a socket at '${treePath}'; trees cannot hold sockets`, {
      hint: 'the script must remove it before it exits',
    });
  }
  try {
    const header = headerFromDisk(host, st, { xattrs: xattrsOf(host) });
    const headerBytes = encodeFileHeader(header);
    if (!isRegular(st.mode)) {
      const checksum = hashBytes(headerBytes);
      tx.writeFile(checksum, header, { buffer: Buffer.alloc(0) });
      return checksum;
    }
    if (st.size <= WHOLE_FILE_LIMIT_BYTES) {
      const content = readFileSync(host);
      assert(content.length === st.size, `'${host}' changed size after every step had finished`);
      const checksum = hashBytes(headerBytes, content);
      tx.writeFile(checksum, header, { buffer: content });
      return checksum;
    }
    const hasher = new StreamHasher().update(headerBytes);
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    const fd = openSync(host, 'r');
    try {
      let total = 0;
      for (
        let n = readSync(fd, chunk, 0, chunk.length, total);
        n > 0;
        n = readSync(fd, chunk, 0, chunk.length, total)
      ) {
        hasher.update(chunk.subarray(0, n));
        total += n;
      }
      assert(total === st.size, `'${host}' changed size after every step had finished`);
    } finally {
      closeSync(fd);
    }
    const checksum = hasher.digest();
    tx.writeFile(checksum, header, { path: host });
    return checksum;
  } catch (error) {
    if (error instanceof ArborError || (error instanceof Error && error.message.startsWith('internal error')))
      throw error;
    throw ioError('store what a script made at', treePath, error);
  }
}
