// A deployment's /etc: the pure 3-way merge (old defaults, the admin's /etc, new defaults) that
// decides every path and reports conflicts, the shell that writes the merged /etc as a copy, and
// the admin's changes against the defaults (`arbor admin config-diff`). Rules: docs/deploy.md.
import {
  type Stats,
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { compareUtf8 } from '../common/bytes.js';
import { ArborError, assert, errnoCode, ioError, present } from '../common/errors.js';
import { fsyncDir } from '../common/fs-atomic.js';
import { StreamHasher } from '../common/hash.js';
import { native } from '../common/native.js';
import {
  ETC_ROOT,
  type EtcEntry,
  type EtcEntryType,
  type EtcTree,
  changedError,
  etcParent,
  readEtcTree,
} from './etc-tree.js';

export { ETC_ROOT, readEtcTree, type EtcEntry, type EtcTree } from './etc-tree.js';

// ---------------------------------------------------------------------------------------------
// Comparing entries

/** One way two entries of the same path can differ. `type` hides the others (they do not compare). */
type EtcAspect = 'type' | 'content' | 'target' | 'device' | 'mode' | 'owner' | 'xattrs';

export interface EtcCompareOptions {
  /**
   * xattr names left out of every comparison (the chosen side's values are still copied). For hosts
   * whose policy labels /etc and /usr/etc differently (`security.selinux`): ostree ignores all
   * xattrs for that reason; Arbor compares them unless told which to skip.
   */
  readonly ignoreXattrs?: readonly string[];
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function xattrsEqual(
  a: ReadonlyMap<string, Uint8Array>,
  b: ReadonlyMap<string, Uint8Array>,
  ignore: readonly string[],
): boolean {
  const names = new Set([...a.keys(), ...b.keys()]);
  for (const name of names) {
    if (ignore.includes(name)) continue;
    const x = a.get(name);
    const y = b.get(name);
    if (x === undefined || y === undefined || !bytesEqual(x, y)) return false;
  }
  return true;
}

/** The aspects in which two entries of one path differ, in EtcAspect order; [] when they are the same. */
function compareEtcEntries(a: EtcEntry, b: EtcEntry, options: EtcCompareOptions = {}): EtcAspect[] {
  if (a.type !== b.type || (a.type === 'other' && b.type === 'other' && a.format !== b.format)) return ['type'];
  const out: EtcAspect[] = [];
  if (a.type === 'file' && b.type === 'file' && a.digest !== b.digest) out.push('content');
  if (a.type === 'symlink' && b.type === 'symlink' && a.target !== b.target) out.push('target');
  if (a.type === 'other' && b.type === 'other' && a.rdev !== b.rdev) out.push('device');
  if (a.mode !== b.mode) out.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) out.push('owner');
  if (!xattrsEqual(a.xattrs, b.xattrs, options.ignoreXattrs ?? [])) out.push('xattrs');
  return out;
}

/** Root first, then UTF-8 byte order: a directory always comes before what it holds. */
export function compareEtcPaths(a: string, b: string): number {
  if (a === b) return 0;
  if (a === ETC_ROOT) return -1;
  if (b === ETC_ROOT) return 1;
  return compareUtf8(a, b);
}

/** Children of every directory, checking the tree is well formed (an assertion: readEtcTree makes only such trees). */
function indexChildren(tree: EtcTree, name: string): Map<string, string[]> {
  const children = new Map<string, string[]>();
  for (const path of tree.keys()) {
    if (path === ETC_ROOT) continue;
    assert(
      path !== '' && !path.startsWith('/') && path.split('/').every((c) => c !== '' && c !== '.' && c !== '..'),
      `${name} /etc tree has a bad path '${path}'`,
    );
    const parent = etcParent(path);
    assert(tree.get(parent)?.type === 'dir', `${name} /etc tree has '${path}' without its directory`);
    const list = children.get(parent);
    if (list) list.push(path);
    else children.set(parent, [path]);
  }
  return children;
}

// ---------------------------------------------------------------------------------------------
// The plan

/** What one side (the admin, or the new defaults) did to a path, relative to the old defaults. */
export type EtcChange =
  | { readonly kind: 'added'; readonly type: EtcEntryType }
  | { readonly kind: 'deleted'; readonly type: EtcEntryType }
  | { readonly kind: 'replaced'; readonly from: EtcEntryType; readonly to: EtcEntryType }
  /** The entry itself changed (content, mode, ...); for a directory its own metadata only. */
  | { readonly kind: 'modified'; readonly aspects: readonly EtcAspect[] }
  /** The entry is the same but something below it (a directory) changed. */
  | { readonly kind: 'changed-below' };

/** A path both sides changed, differently: the admin's version was kept. */
export interface EtcConflict {
  readonly path: string;
  /** What the admin did, in words ("changed content, mode", "deleted file"). */
  readonly admin: string;
  /** What the new defaults did, in words. */
  readonly defaults: string;
  readonly adminChange: EtcChange;
  readonly defaultsChange: EtcChange;
}

/**
 * One path of the merged /etc, in path order (parents first). `take-new` and `keep-admin` put the
 * entry (its content comes from that side's directory); `delete` lists a path of the admin's
 * current /etc or of the new defaults that the merged /etc will not have, and why.
 */
type EtcAction =
  | { readonly kind: 'take-new'; readonly path: string; readonly entry: EtcEntry }
  | { readonly kind: 'keep-admin'; readonly path: string; readonly entry: EtcEntry }
  /** `admin`: the admin deleted or replaced it (it is in the new defaults); `defaults`: the new defaults dropped it (it is in the admin's /etc). */
  | { readonly kind: 'delete'; readonly path: string; readonly reason: 'admin' | 'defaults' };

export interface EtcMergePlan {
  readonly actions: readonly EtcAction[];
  readonly conflicts: readonly EtcConflict[];
}

const TYPE_WORDS: Record<EtcEntryType, string> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  other: 'special file',
};

/** Says an EtcChange in words, for messages. */
export function describeEtcChange(change: EtcChange): string {
  switch (change.kind) {
    case 'added':
      return `added ${TYPE_WORDS[change.type]}`;
    case 'deleted':
      return `deleted ${TYPE_WORDS[change.type]}`;
    case 'replaced':
      return `replaced ${TYPE_WORDS[change.from]} with ${TYPE_WORDS[change.to]}`;
    case 'modified':
      return `changed ${change.aspects.join(', ')}`;
    case 'changed-below':
      return 'changed entries below';
  }
}

/** The merge of three trees: every helper reads them through this, with their child indexes. */
class Merge {
  readonly actions: EtcAction[] = [];
  readonly conflicts: EtcConflict[] = [];
  readonly #kids: Map<EtcTree, Map<string, string[]>>;

  constructor(
    readonly old: EtcTree,
    readonly admin: EtcTree,
    readonly fresh: EtcTree,
    readonly options: EtcCompareOptions,
  ) {
    this.#kids = new Map([
      [old, indexChildren(old, 'old defaults')],
      [admin, indexChildren(admin, 'admin')],
      [fresh, indexChildren(fresh, 'new defaults')],
    ]);
  }

  same(a: EtcEntry | undefined, b: EtcEntry | undefined): boolean {
    if (a === undefined || b === undefined) return a === b;
    return compareEtcEntries(a, b, this.options).length === 0;
  }

  /** Child paths of `path` in any of `trees`, sorted. */
  children(path: string, ...trees: EtcTree[]): string[] {
    const set = new Set<string>();
    for (const t of trees) for (const c of this.#kids.get(t)?.get(path) ?? []) set.add(c);
    return [...set].sort(compareEtcPaths);
  }

  /** True when `x` and `y` agree on `path` and everything below it. */
  sameSubtree(x: EtcTree, y: EtcTree, path: string): boolean {
    if (!this.same(x.get(path), y.get(path))) return false;
    return this.children(path, x, y).every((c) => this.sameSubtree(x, y, c));
  }

  /** Every path at and below `path` in `tree`. */
  subtree(tree: EtcTree, path: string, out: string[] = []): string[] {
    if (!tree.has(path)) return out;
    out.push(path);
    for (const c of this.children(path, tree)) this.subtree(tree, c, out);
    return out;
  }

  /** What `after` did to `path` relative to `before` (callers know they differ at or below it). */
  change(before: EtcTree, after: EtcTree, path: string): EtcChange {
    const b = before.get(path);
    const a = after.get(path);
    if (!b) return { kind: 'added', type: present(a, `the /etc entry '${path}'`).type };
    if (!a) return { kind: 'deleted', type: b.type };
    const aspects = compareEtcEntries(b, a, this.options);
    if (aspects[0] === 'type') return { kind: 'replaced', from: b.type, to: a.type };
    return aspects.length > 0 ? { kind: 'modified', aspects } : { kind: 'changed-below' };
  }

  conflict(path: string): void {
    const adminChange = this.change(this.old, this.admin, path);
    const defaultsChange = this.change(this.old, this.fresh, path);
    this.conflicts.push({
      path,
      admin: describeEtcChange(adminChange),
      defaults: describeEtcChange(defaultsChange),
      adminChange,
      defaultsChange,
    });
  }

  /** Takes `path` and all below it from one side; lists what the other side had there as deleted. */
  takeSubtree(side: 'keep-admin' | 'take-new', path: string): void {
    const [from, other] = side === 'keep-admin' ? [this.admin, this.fresh] : [this.fresh, this.admin];
    for (const p of this.subtree(from, path))
      this.actions.push({ kind: side, path: p, entry: present(from.get(p), 'an /etc entry of the subtree') });
    for (const p of this.subtree(other, path)) {
      if (!from.has(p))
        this.actions.push({ kind: 'delete', path: p, reason: side === 'keep-admin' ? 'admin' : 'defaults' });
    }
  }

  visit(path: string): void {
    const o = this.old.get(path);
    const a = this.admin.get(path);
    const n = this.fresh.get(path);
    if (a?.type === 'dir' && n?.type === 'dir') {
      // Both sides have a directory here: its own metadata is merged like a file, its entries one by one.
      if (this.same(o, a)) this.actions.push({ kind: 'take-new', path, entry: n });
      else {
        this.actions.push({ kind: 'keep-admin', path, entry: a });
        if (!this.same(o, n) && !this.same(a, n)) this.conflict(path);
      }
      for (const c of this.children(path, this.old, this.admin, this.fresh)) this.visit(c);
      return;
    }
    // At most one side has a directory here: the path and its subtree go to one side whole, so the
    // result never holds entries below a file or below nothing.
    if (this.sameSubtree(this.old, this.admin, path)) return this.takeSubtree('take-new', path);
    this.takeSubtree('keep-admin', path);
    if (!this.sameSubtree(this.old, this.fresh, path) && !this.sameSubtree(this.admin, this.fresh, path))
      this.conflict(path);
  }
}

/**
 * Decides the new deployment's /etc from the old defaults (the old deployment's /usr/etc), the
 * admin's /etc (the old deployment's /etc) and the new defaults (the new deployment's /usr/etc).
 * Pure. Where the admin changed nothing at or below a path, the new defaults win; elsewhere the
 * admin's version wins, and a conflict is reported when the new defaults changed it differently.
 * Empty trees stand for "none": a first deployment passes two empty trees and gets a copy of the
 * new defaults. Rules in full: docs/deploy.md, "/etc merge".
 */
export function planEtcMerge(
  oldDefaults: EtcTree,
  admin: EtcTree,
  newDefaults: EtcTree,
  options: EtcCompareOptions = {},
): EtcMergePlan {
  const merge = new Merge(oldDefaults, admin, newDefaults, options);
  merge.visit(ETC_ROOT);
  const actions = merge.actions.sort((x, y) => compareEtcPaths(x.path, y.path));
  const conflicts = merge.conflicts.sort((x, y) => compareEtcPaths(x.path, y.path));
  return { actions, conflicts };
}

/** The tree a plan produces (what readEtcTree of the applied result reads back). */
export function mergedEtcTree(plan: EtcMergePlan): EtcTree {
  const out = new Map<string, EtcEntry>();
  for (const action of plan.actions) if (action.kind !== 'delete') out.set(action.path, action.entry);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The admin's changes (config-diff)

/** One change of the admin's /etc against the defaults. `details` are the differing aspects of a modified path. */
export interface EtcConfigChange {
  readonly path: string;
  readonly change: 'added' | 'modified' | 'deleted';
  readonly details: readonly EtcAspect[];
}

/**
 * The admin's changes: paths of `etc` not in `defaults` (added), in `defaults` not in `etc`
 * (deleted), and in both but different (modified; a type change is `modified` with ['type']).
 * An added, deleted or retyped directory is listed once, not with what it holds. Pure; path order.
 */
export function diffEtcTrees(defaults: EtcTree, etc: EtcTree, options: EtcCompareOptions = {}): EtcConfigChange[] {
  const kids = [indexChildren(defaults, 'defaults'), indexChildren(etc, 'etc')];
  const out: EtcConfigChange[] = [];
  const visit = (path: string): void => {
    const d = defaults.get(path);
    const e = etc.get(path);
    if (!d && !e) return;
    if (!d) return void out.push({ path, change: 'added', details: [] });
    if (!e) return void out.push({ path, change: 'deleted', details: [] });
    const aspects = compareEtcEntries(d, e, options);
    if (aspects.length > 0) out.push({ path, change: 'modified', details: aspects });
    if (aspects[0] === 'type' || d.type !== 'dir') return;
    const names = new Set([...(kids[0]?.get(path) ?? []), ...(kids[1]?.get(path) ?? [])]);
    for (const c of [...names].sort(compareEtcPaths)) visit(c);
  };
  visit(ETC_ROOT);
  return out;
}

/** The admin's changes in `etcDir` against `defaultsDir` (a deployment's /etc and /usr/etc), for `arbor admin config-diff`. */
export function configDiff(defaultsDir: string, etcDir: string, options: EtcCompareOptions = {}): EtcConfigChange[] {
  return diffEtcTrees(readEtcTree(defaultsDir), readEtcTree(etcDir), options);
}

// ---------------------------------------------------------------------------------------------
// Writing the merged /etc

/** Where the plan's sides live: a deployment's /usr/etc (old and new) and the old deployment's /etc. */
export interface EtcMergeSources {
  /** Not read (the merged /etc takes nothing from the old defaults); accepted so callers pass all three. */
  readonly oldDefaultsDir: string | null;
  /** Required when the plan keeps anything of the admin's. */
  readonly adminDir: string | null;
  readonly newDefaultsDir: string;
}

export interface EtcApplyStats {
  readonly files: number;
  readonly dirs: number;
  readonly otherEntries: number;
  readonly bytesCopied: number;
}

const IS_ROOT = process.getuid?.() === 0;

/** Writes the metadata of an entry we just made; owners only as root (as checkouts do), xattrs after chown (chown clears security.capability). */
function setMeta(target: string | number, entry: EtcEntry): void {
  const isFd = typeof target === 'number';
  if (IS_ROOT) {
    if (isFd) fchownSync(target, entry.uid, entry.gid);
    else lchownSync(target, entry.uid, entry.gid);
  }
  // chmod after chown: chown clears setuid/setgid. Symlinks have no mode of their own on Linux.
  if (entry.type !== 'symlink') {
    if (isFd) fchmodSync(target, entry.mode);
    else chmodSync(target, entry.mode);
  }
  for (const [name, value] of entry.xattrs)
    native.setxattr(target, name, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
}

/** Copies a regular file's bytes (never a link: /usr/etc files are hardlinks into the object store) and checks them against the planned digest. */
function copyFile(source: string, target: string, entry: EtcEntry & { type: 'file' }): number {
  let input: number;
  try {
    input = openSync(source, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ELOOP') throw changedError(source, 'no longer a file');
    throw ioError('read', source, error);
  }
  try {
    const st = fstatSync(input);
    if (!st.isFile()) throw changedError(source, 'no longer a file');
    const output = openSync(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      const hasher = new StreamHasher();
      const chunk = Buffer.allocUnsafe(64 * 1024);
      let bytes = 0;
      for (let n; (n = readSync(input, chunk, 0, chunk.length, bytes)) > 0; bytes += n) {
        const piece = chunk.subarray(0, n);
        hasher.update(piece);
        for (let done = 0; done < n; ) done += writeSync(output, piece, done, n - done);
      }
      // The plan decided on this exact content; an edit since then must not slip in unmerged.
      if (hasher.digest() !== entry.digest) throw changedError(source, 'content differs from when it was read');
      setMeta(output, entry);
      futimesSync(output, st.atime, st.mtime);
      return bytes;
    } finally {
      closeSync(output);
    }
  } finally {
    closeSync(input);
  }
}

/** lstat of a source, or an E_ETC_CHANGED when it went away or changed type since it was read. */
function statSource(source: string, type: EtcEntryType): Stats {
  let st: Stats;
  try {
    st = lstatSync(source);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') throw changedError(source, 'removed');
    throw ioError('read', source, error);
  }
  const actual: EtcEntryType = st.isDirectory()
    ? 'dir'
    : st.isFile()
      ? 'file'
      : st.isSymbolicLink()
        ? 'symlink'
        : 'other';
  if (actual !== type) throw changedError(source, `now a ${TYPE_WORDS[actual]}`);
  return st;
}

/**
 * Writes the merged /etc of `plan` at `destDir` (which must not exist): files are copied, never
 * hardlinked; modes, owners (when run as root), xattrs, symlinks, special files and mtimes are
 * kept. Built in `destDir.tmp`, flushed with one syncfs, then renamed into place, so `destDir` is
 * either absent or complete. A file that no longer matches the plan fails with E_ETC_CHANGED.
 */
export function applyEtcMerge(plan: EtcMergePlan, sources: EtcMergeSources, destDir: string): EtcApplyStats {
  assert(!lstatSync(destDir, { throwIfNoEntry: false }), `applyEtcMerge: '${destDir}' exists`);
  const tmp = `${destDir}.tmp`;
  rmSync(tmp, { recursive: true, force: true }); // left by a crash: never complete, never renamed
  let files = 0;
  let otherEntries = 0;
  let bytesCopied = 0;
  // Directory metadata is set last, deepest first: a read-only mode would stop us creating entries,
  // and a default ACL set early would be inherited by what we create below.
  const dirs: { path: string; entry: EtcEntry; st: Stats }[] = [];
  try {
    const placed = plan.actions.filter((a) => a.kind !== 'delete');
    if (placed[0]?.path !== ETC_ROOT) mkdirSync(tmp, { mode: 0o755 }); // the admin deleted /etc itself: an empty one
    for (const action of placed) {
      const base = action.kind === 'keep-admin' ? sources.adminDir : sources.newDefaultsDir;
      assert(base !== null, 'applyEtcMerge: the plan keeps admin files but no adminDir was given');
      const { entry } = action;
      const source = action.path === ETC_ROOT ? base : join(base, action.path);
      const target = action.path === ETC_ROOT ? tmp : join(tmp, action.path);
      try {
        if (entry.type === 'file') {
          bytesCopied += copyFile(source, target, entry);
          files++;
          continue;
        }
        const st = statSource(source, entry.type);
        if (entry.type === 'dir') {
          mkdirSync(target, { mode: 0o700 });
          dirs.push({ path: target, entry, st });
        } else if (entry.type === 'symlink') {
          if (readlinkSync(source) !== entry.target) throw changedError(source, 'its target changed');
          symlinkSync(entry.target, target);
          setMeta(target, entry);
          lutimesSync(target, st.atime, st.mtime);
          files++;
        } else {
          if ((st.mode & constants.S_IFMT) !== entry.format || st.rdev !== entry.rdev)
            throw changedError(source, 'its device changed');
          native.mknod(target, entry.format | entry.mode, native.major(entry.rdev), native.minor(entry.rdev));
          setMeta(target, entry);
          utimesSync(target, st.atime, st.mtime);
          otherEntries++;
        }
      } catch (error) {
        if (error instanceof ArborError) throw error;
        throw ioError('write', target, error);
      }
    }
    for (const { path, entry, st } of dirs.reverse()) {
      try {
        setMeta(path, entry);
        utimesSync(path, st.atime, st.mtime);
      } catch (error) {
        throw ioError('write', path, error);
      }
    }
    // One filesystem flush instead of an fsync per file: each fsync would commit the journal (≈ ms each).
    native.syncfs(tmp);
    renameSync(tmp, destDir);
    fsyncDir(dirname(destDir));
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    if (error instanceof ArborError || !errnoCode(error)) throw error;
    throw ioError('write', destDir, error);
  }
  return { files, dirs: dirs.length, otherEntries, bytesCopied };
}
