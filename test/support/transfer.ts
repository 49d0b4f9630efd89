// Fixtures for pull tests: a two-version OS-like tree (v2 edits files in place, renames a directory,
// changes a mode only, adds and removes files), an archive server repository serving both with
// deltas, access-log slices, and a killable CLI run with its own environment.
import { spawn } from 'node:child_process';
import { chmodSync, lchownSync, linkSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../../src/common/native.js';
import { ARBOR, type CliResult, IS_ROOT, arbor, runCli } from './cli.js';
import { type AccessLogEntry, readAccessLog } from './nginx.js';
import { Random } from './random.js';
import { pseudoRandomBytes } from './tree.js';

/** Over SPILL_THRESHOLD (8 MiB compressed) and incompressible, so pulls stream it through a spill file. */
export const LARGE_FILE_BYTES = 8 * (1 << 20) + 100 * 1024 + 3;
/** Owner of the foreign-owned entries when running as root (otherwise everything is ours). */
const OWNER = IS_ROOT ? { uid: 1234, gid: 5678 } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

export interface TransferTreeOptions {
  /** Small files under bulk/ (default 240). */
  readonly smallFiles?: number;
  /** Include large/big.bin (LARGE_FILE_BYTES; default true). */
  readonly largeFile?: boolean;
}

/** Small files that v2 edits in place, and removes. */
const editedInV2 = (i: number): boolean => i % 10 === 0;
const removedInV2 = (i: number): boolean => i % 25 === 1;

/**
 * Writes version 1 or 2 of the transfer tree at `root` (which must not exist), byte-identical on
 * every run: small files, a large incompressible file, symlinks, user.* xattrs, setuid/setgid,
 * foreign owners (as root), a hardlink pair, empty files and an empty directory.
 */
export function writeTransferTree(root: string, version: 1 | 2, options: TransferTreeOptions = {}): void {
  const smallFiles = options.smallFiles ?? 240;
  const random = new Random(0x7a11);
  // Metadata is applied once everything exists: chown clears setuid, and a 0700 dir is still ours.
  const meta: { path: string; mode?: number; uid?: number; gid?: number; xattrs?: Record<string, Buffer> }[] = [];
  const dir = (rel: string, mode = 0o755, extra: Omit<(typeof meta)[number], 'path' | 'mode'> = {}): void => {
    const path = join(root, rel);
    mkdirSync(path, { recursive: true });
    meta.push({ path, mode, ...extra });
  };
  const file = (
    rel: string,
    content: string | Buffer,
    mode = 0o644,
    extra: Omit<(typeof meta)[number], 'path' | 'mode'> = {},
  ): void => {
    const path = join(root, rel);
    writeFileSync(path, content, { flag: 'wx' });
    meta.push({ path, mode, ...extra });
  };

  dir('.', 0o755, { xattrs: { 'user.root': Buffer.from('top') } });
  dir('bulk');
  for (let d = 0; d < 12; d++) dir(`bulk/d${String(d).padStart(2, '0')}`);
  const pool = random.derive('pool').bytes(64 * 1024);
  for (let i = 0; i < smallFiles; i++) {
    if (version === 2 && removedInV2(i)) continue;
    const d = `bulk/d${String(i % 12).padStart(2, '0')}`;
    const size = (i * 7919) % 6000;
    let content = Buffer.concat([Buffer.from(`small file ${i}\n`), pool.subarray(i * 13, i * 13 + size)]);
    if (version === 2 && editedInV2(i))
      content = Buffer.concat([
        content.subarray(0, size / 2),
        Buffer.from(`edited in v2 (${i})\n`),
        content.subarray(size / 2),
      ]);
    file(`${d}/f${String(i).padStart(4, '0')}`, content, i % 9 === 0 ? 0o755 : 0o644);
  }

  if (options.largeFile ?? true) {
    dir('large');
    const large = random.derive('large').bytes(LARGE_FILE_BYTES);
    if (version === 2) for (const at of [4096, 3 << 20, LARGE_FILE_BYTES - 5000]) large.write(`v2 edit at ${at}`, at);
    file('large/big.bin', large, 0o644, { xattrs: { 'user.large': Buffer.from('yes') } });
  }

  dir('bin');
  file('bin/tool', '#!/bin/sh\necho tool\n', version === 1 ? 0o755 : 0o700); // a mode-only change
  file('bin/suid', '#!/bin/sh\nid\n', 0o4755);
  file('bin/sgid-owned', '#!/bin/sh\nid -g\n', 0o2750, OWNER);
  file('bin/empty-exec', '', 0o755);

  dir('etc');
  file('etc/os-release', `NAME=Arbor\nVERSION=${version}\n`);
  file('etc/empty', '');
  file('etc/shadow', 'root:!:19000::::::\n', 0o640, { uid: 0, gid: OWNER.gid });
  if (version === 1) file('etc/config.old', 'obsolete\n');
  if (version === 2) file('etc/added.conf', 'new in v2\n', 0o600);

  dir('xattr', 0o755, { xattrs: { 'user.dir': Buffer.from('d') } });
  file('xattr/file', 'has xattrs\n', 0o644, {
    xattrs: {
      'user.ascii': Buffer.from('value'),
      'user.binary': Buffer.from([0, 0xff, 0x80, 0x0a]),
      'user.empty': Buffer.alloc(0),
    },
  });

  dir('home/user', 0o700, OWNER);
  file('home/user/.profile', 'export PS1=x\n', 0o600, OWNER);

  dir('links');
  symlinkSync('../etc/os-release', join(root, 'links/relative'));
  symlinkSync('/etc/passwd', join(root, 'links/absolute'));
  symlinkSync('does/not/exist', join(root, 'links/dangling'));
  symlinkSync('../bulk', join(root, 'links/to-dir'));

  dir('empty-dir', 0o750);
  // A directory v2 renames: the same objects under a new path.
  const moved = version === 1 ? 'lib/old-name' : 'lib/new-name';
  dir(moved);
  for (let i = 0; i < 8; i++) file(`${moved}/m${i}.so`, pseudoRandomBytes(2000 + i * 500, 100 + i), 0o755);
  if (version === 2) {
    dir('added');
    for (let i = 0; i < 20; i++) file(`added/n${i}`, `added in v2: ${i}\n${'x'.repeat(i * 50)}`);
  }

  for (const m of meta.sort((a, b) => b.path.length - a.path.length)) {
    if (m.uid !== undefined && m.gid !== undefined && IS_ROOT) lchownSync(m.path, m.uid, m.gid);
    if (m.mode !== undefined) chmodSync(m.path, m.mode);
    for (const [name, value] of Object.entries(m.xattrs ?? {})) native.setxattr(m.path, name, value);
  }
  mkdirSync(join(root, 'hard'));
  writeFileSync(join(root, 'hard/a'), 'one inode, two names\n');
  linkSync(join(root, 'hard/a'), join(root, 'hard/b'));
}

export interface ServerRepo {
  readonly path: string;
  readonly v1: string;
  readonly v2: string;
}

/**
 * An archive repository at `path` with v1 on `os/stable` and v2 (child of v1) on `os/main`,
 * committed from the trees at `trees`. Deltas and the summary are up to the caller.
 */
export function makeServerRepo(path: string, trees: { v1: string; v2: string }): ServerRepo {
  arbor('init', '--repo', path, '--mode', 'archive');
  const v1 = commitVersion(path, 1, trees.v1);
  arbor('refs', '--repo', path, '--create', 'os/stable', v1);
  return { path, v1, v2: commitVersion(path, 2, trees.v2) };
}

/** Commits TREE as version 1 or 2 on os/main of the server repository; returns the commit. */
export function commitVersion(repo: string, version: 1 | 2, tree: string): string {
  const timestamp = String(1_700_000_000 + version * 86_400);
  return arbor(
    'commit',
    '--repo',
    repo,
    '-b',
    'os/main',
    '-s',
    `v${version}`,
    '--add-metadata',
    `version=${version}.0`,
    '--timestamp',
    timestamp,
    '--tree',
    `dir=${tree}`,
  );
}

/** Checksums of every entry of REV, by absolute path in the tree ('/bulk/d00/f0000'). */
export function treeChecksums(repo: string, rev: string): Map<string, string> {
  const rows = JSON.parse(arbor('ls', '--json', '-R', '--repo', repo, rev)) as { path: string; checksum: string }[];
  return new Map(rows.map((r) => [r.path, r.checksum]));
}

/** Where object CHECKSUM of KIND lives below a served archive repository (URL path, file objects as .filez). */
export const servedObjectPath = (
  checksum: string,
  kind: 'file' | 'dirtree' | 'dirmeta' | 'commit' | 'commitmeta',
): string => `objects/${checksum.slice(0, 2)}/${checksum.slice(2)}.${kind === 'file' ? 'filez' : kind}`;

/**
 * Every object stored in a repository of any mode, as the URL path it has below a served archive
 * repository (`objects/xx/rest.filez`): what a pull of it would have requested.
 */
export function storedObjectsAsServed(repo: string): string[] {
  const out: string[] = [];
  for (const prefix of readdirSync(join(repo, 'objects')).sort()) {
    for (const name of readdirSync(join(repo, 'objects', prefix)).sort()) {
      out.push(`objects/${prefix}/${name.replace(/\.file$/, '.filez')}`);
    }
  }
  return out;
}

/** Reads an access log from a line onwards: `mark()` before a run, `since()` after it. */
export class AccessLog {
  #mark = 0;
  constructor(readonly path: string) {}
  mark(): void {
    this.#mark = readAccessLog(this.path).length;
  }
  since(): AccessLogEntry[] {
    return readAccessLog(this.path).slice(this.#mark);
  }
}

/** `{name → checksum}` of a repository's refs. */
export function refsOf(repo: string): Record<string, string> {
  const rows = JSON.parse(arbor('refs', '--json', '--repo', repo)) as { name: string; checksum: string }[];
  return Object.fromEntries(rows.map((r) => [r.name, r.checksum]));
}

/** Runs `arbor ARGS` with extra environment; `onSpawn` gets the child (to kill it). */
export function runCliEnv(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  onSpawn?: (child: ReturnType<typeof spawn>) => void,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ARBOR, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
    onSpawn?.(child);
  });
}

/** fsck of REPO as a result object (exit code and the first lines of output), for one-line assertions. */
export function fsck(repo: string): { exitCode: number | null; output: string } {
  const r = runCli(['fsck', '--repo', repo]);
  return { exitCode: r.exitCode, output: `${r.stderr}${r.stdout}`.split('\n').slice(0, 8).join('\n') };
}
