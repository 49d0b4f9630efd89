// bench/lib/trees.ts — owns what the benchmark knows about directory trees on
// disk: making sure the benchmark trees exist (v1/v2 via make-trees.sh, the small-file
// tree copied from this machine), counting entries by type, apparent sizes, and the
// object-store statistics of a repo.
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CommandError, run } from './proc.js';

export interface TreeCount {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  other: number;
}

export interface TreeInfo extends TreeCount {
  path: string;
  apparentBytes: number;
}

export interface ObjectStats {
  files: number;
  bytes: number;
}

/** Counts the entries below root (root itself excluded), without following symlinks. */
export function countTree(root: string): TreeCount {
  const count: TreeCount = { entries: 0, files: 0, dirs: 0, symlinks: 0, other: 0 };
  const pending = [root];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      count.entries++;
      if (e.isDirectory()) {
        count.dirs++;
        pending.push(join(dir, e.name));
      } else if (e.isFile()) count.files++;
      else if (e.isSymbolicLink()) count.symlinks++;
      else count.other++;
    }
  }
  return count;
}

/** `du -sb`: apparent size, each hardlinked inode counted once. */
export async function apparentBytes(path: string): Promise<number> {
  const out = await run(['du', '-sb', path]);
  return Number(out.split('\t')[0]);
}

export async function describeTree(path: string): Promise<TreeInfo> {
  return { path, ...countTree(path), apparentBytes: await apparentBytes(path) };
}

/** Files and bytes under REPO/objects. */
export async function objectStats(repo: string): Promise<ObjectStats> {
  const dir = join(repo, 'objects');
  if (!existsSync(dir)) throw new CommandError(`${dir} does not exist: cannot count the objects written`);
  return { files: countTree(dir).files, bytes: await apparentBytes(dir) };
}

/** Reader threads of the cold-read floor: more than the cores, as the tools' own readers are, so the disk's queue stays full. */
const COLD_READERS = 4;
/** Files each reader opens and asks readahead for before reading them, as arbor's commit workers do. */
const COLD_BATCH = 64;

/** How the cold-read floor reads a tree, as shown in reports. */
export const COLD_READ_SHOWN = `every regular file read once by ${COLD_READERS} threads, each opening ${COLD_BATCH} files at a time with posix_fadvise(WILLNEED) before reading them (python3)`;

/**
 * Reads every regular file of argv[1] once. Not `cat` through xargs: on some machines its synchronous
 * reads, one file at a time per process, took longer than arbor's whole commit, so it was no floor.
 */
const COLD_READ_PY = `
import os, sys, threading
paths = []
def walk(d):
    for e in os.scandir(d):
        if e.is_dir(follow_symlinks=False): walk(e.path)
        elif e.is_file(follow_symlinks=False): paths.append(e.path)
walk(sys.argv[1])
lock = threading.Lock()
nxt = [0]
def reader():
    buf = bytearray(1 << 20)
    while True:
        with lock:
            i = nxt[0]
            nxt[0] += ${COLD_BATCH}
        if i >= len(paths): return
        fds = []
        for p in paths[i:i + ${COLD_BATCH}]:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            fds.append(fd)
        for fd in fds:
            while os.readv(fd, [buf]) > 0: pass
            os.close(fd)
threads = [threading.Thread(target=reader) for _ in range(${COLD_READERS})]
for t in threads: t.start()
for t in threads: t.join()
`;

/** The command that reads every regular file of `dir` once, in parallel: the floor of committing it cold. */
export function coldReadCommand(dir: string): string[] {
  return ['python3', '-c', COLD_READ_PY, dir];
}

/** Builds v1/v2 with make-trees.sh when either is missing (root only). */
export async function ensureTrees(v1: string, v2: string, makeTrees: string): Promise<void> {
  if (existsSync(v1) && existsSync(v2)) return;
  const how = `V1=${v1} V2=${v2} bash ${makeTrees}`;
  if (process.getuid?.() !== 0) {
    throw new CommandError(`benchmark trees missing (${v1}, ${v2}); build them as root:\n  sudo ${how}`);
  }
  if (!existsSync(makeTrees)) {
    throw new CommandError(`benchmark trees missing and ${makeTrees} not found (set ARBOR_BENCH_MAKE_TREES)`);
  }
  process.stderr.write(`benchmark trees missing; building them: ${how}\n`);
  await run(['bash', makeTrees], { env: { ...process.env, V1: v1, V2: v2 }, passthrough: true });
}

/**
 * What the small-file tree copies from this machine: /usr/share (less make-trees.sh's non-OS payloads,
 * whose big files would make it less of a small-file tree) and every /usr/lib/python3*.
 */
const SMALL_TREE_EXCLUDED_SHARE = new Set(['package-lists', 'google-cloud-sdk', 'java', 'maven-repo', 'python-wheels']);

/** The sources of the small-file tree, relative to /, sorted (what `cp -a --parents` copies). */
function smallTreeSources(): string[] {
  const share = readdirSync('/usr/share')
    .filter((name) => !SMALL_TREE_EXCLUDED_SHARE.has(name))
    .map((name) => `usr/share/${name}`);
  const python = readdirSync('/usr/lib')
    .filter((name) => name.startsWith('python3'))
    .map((name) => `usr/lib/${name}`);
  return [...share, ...python].sort();
}

/**
 * Builds the small-file tree at `path` when it is missing (root only: `cp -a` keeps owners): a copy of
 * smallTreeSources() made in `path.tmp` and renamed into place once whole, so a killed build is redone.
 */
export async function ensureSmallTree(path: string): Promise<void> {
  if (existsSync(path)) return;
  if (process.getuid?.() !== 0) throw new CommandError(`small-file tree ${path} missing; run the bench as root`);
  const tmp = `${path}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const sources = smallTreeSources();
  process.stderr.write(`small-file tree missing; copying ${sources.length} sources of /usr into ${path}\n`);
  await run(['mkdir', '-p', tmp]);
  // One cp so hardlinks between sources are kept; relative sources (cp --parents refuses absolute ones).
  await run(['sh', '-c', 'cd / && exec cp -a --parents "$@" "$0"/', tmp, ...sources]);
  // Trees hold no sockets; fifos and devices would make the commit depend on privileges.
  await run([
    'find',
    tmp,
    '-xdev',
    '(',
    '-type',
    'p',
    '-o',
    '-type',
    's',
    '-o',
    '-type',
    'b',
    '-o',
    '-type',
    'c',
    ')',
    '-delete',
  ]);
  renameSync(tmp, path);
}
