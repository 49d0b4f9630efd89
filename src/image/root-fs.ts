// The root filesystem of an image: what every inode of the staged sysroot must look like (owners,
// modes, xattrs and times from the commit and the bare-user headers, root:root elsewhere), then
// `mkfs.ext4 -d` straight into the disk file at the partition's offset and one debugfs pass.
import { chmodSync, lstatSync, readdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { ArborError } from '../common/errors.js';
import { native } from '../common/native.js';
import type { Checksum } from '../common/hash.js';
import {
  BARE_USER_XATTR,
  type DirMeta,
  type DirTree,
  type FileHeader,
  type Repo,
  decodeFileHeader,
  isDevice,
  isRegular,
  isSymlink,
} from '../repo/index.js';
import { type InodeSpec, renderDebugfsScript } from './debugfs-script.js';
import { type PlannedRewrite, rewriteExt4Inodes } from './ext4-inodes.js';
import type { RootUsage } from './plan.js';
import { runTool } from './tool.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const BLOCK = 4096;

/** A deployment in the staged sysroot: its directory (relative to the sysroot, leading `/`) and commit. */
export interface StagedTree {
  readonly path: string;
  readonly commit: Checksum;
}

/** Where the walk is in a commit's tree alongside the deployment directory. */
interface TreeCursor {
  readonly tree: DirTree;
  readonly meta: DirMeta;
  /** In the deployment's /etc (made by the /etc merge): times are the image's, not 0. */
  readonly inEtc: boolean;
}

/**
 * Walks the staged sysroot at ROOT (names sorted, each inode once) and returns the spec of every
 * inode, and the space they take. Without root, makes staged files readable for mkfs (their
 * modes in the image come from the specs).
 */
export function planRootInodes(
  root: string,
  repo: Repo,
  deployments: readonly StagedTree[],
  epoch: number,
): { specs: InodeSpec[]; usage: RootUsage } {
  const isRoot = process.getuid?.() === 0;
  const seen = new Set<number>();
  const specs: InodeSpec[] = [];
  let blockBytes = 0;
  const metaCache = new Map<Checksum, DirMeta>();
  const dirMeta = (c: Checksum): DirMeta => {
    let m = metaCache.get(c);
    if (m === undefined) metaCache.set(c, (m = repo.readDirMeta(c)));
    return m;
  };
  const objectHeader = (c: Checksum): FileHeader => {
    const path = repo.objectPath(c, 'file');
    const meta = native.lgetxattrs(path).find(([name]) => name === BARE_USER_XATTR);
    return meta === undefined ? headerOfInode(lstatSync(path)) : decodeFileHeader(meta[1], `file ${c} header`);
  };
  const deploymentRoots = new Map(deployments.map((d) => [d.path, d.commit]));
  const objectsDir = join(repo.path, 'objects') + sep;

  const visit = (
    abs: string,
    path: string,
    cursor: TreeCursor | null,
    entry: EntryMeta | (() => EntryMeta) | null,
  ): void => {
    let st = lstatSync(abs);
    if (seen.has(st.ino)) return;
    seen.add(st.ino);
    let xattrs = (st.mode & S_IFMT) === S_IFDIR || isRegular(st.mode) ? native.lgetxattrs(abs) : [];
    const bareUser = xattrs.find(([name]) => name === BARE_USER_XATTR);
    const header = bareUser === undefined ? null : decodeFileHeader(bareUser[1], `${path} header`);
    if (header !== null && isSymlink(header.mode) && isRegular(st.mode) && abs.startsWith(objectsDir)) {
      // The staged repository is bare-user, which keeps a symlink as a plain file; the image's is
      // bare. Staging the real symlink lets mkfs make it: removing the plain file in the image
      // instead (debugfs rm) left the block holding its header allocated to no inode.
      unlinkSync(abs);
      symlinkSync(header.symlinkTarget, abs);
      st = lstatSync(abs);
      seen.add(st.ino);
      xattrs = [];
    }
    const isDir = (st.mode & S_IFMT) === S_IFDIR;
    const staged = { uid: st.uid, gid: st.gid, mode: st.mode, mtime: Math.floor(st.mtimeMs / 1000), size: st.size };
    blockBytes += isDir || isRegular(st.mode) || st.size > 59 ? Math.ceil(Math.max(st.size, 1) / BLOCK) * BLOCK : 0;
    let spec: InodeSpec;
    if (header !== null) {
      // A repository object (or a deployment file hardlinked to one): its header is the truth, and
      // objects have mtime 0 (docs/architecture.md, the devino cache).
      const dropXattrs = xattrs.length > 0 ? [BARE_USER_XATTR] : [];
      spec = { path, ...ownerOf(header), xattrs: header.xattrs, dropXattrs, mtime: 0, staged };
      if (!isRegular(header.mode) && !isSymlink(st.mode)) spec = { ...spec, replaceWith: replacementOf(header) };
    } else if (entry !== null) {
      const e = typeof entry === 'function' ? entry() : entry;
      spec = { path, ...ownerOf(e), xattrs: e.xattrs, dropXattrs: [], mtime: e.mtime, staged };
    } else {
      spec = { path, uid: 0, gid: 0, mode: st.mode, xattrs: [], dropXattrs: [], mtime: epoch, staged };
    }
    if (!isRoot) spec = { ...spec, staged: { ...staged, mode: makeReadable(abs, st.mode, isDir) } };
    specs.push(spec);
    if (!isDir) return;
    // mkfs.ext4 -d's order (alphasort in the C locale: bytewise), which numbers its inodes.
    const names = readdirSync(abs).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const childPath = path === '/' ? `/${name}` : `${path}/${name}`;
      const commit = deploymentRoots.get(childPath);
      if (commit !== undefined) {
        const c = repo.readCommit(commit);
        const rootCursor: TreeCursor = { tree: repo.readDirTree(c.rootTree), meta: dirMeta(c.rootMeta), inEtc: false };
        visit(join(abs, name), childPath, rootCursor, { ...rootCursor.meta, mtime: epoch });
        continue;
      }
      const child = cursor === null ? null : childOf(cursor, name, deploymentRoots.has(path));
      visit(join(abs, name), childPath, child?.cursor ?? null, child?.entry ?? null);
    }
  };

  /** The tree entry NAME under CURSOR: a dir (with its own cursor) or a file (its object's header). */
  const childOf = (
    cursor: TreeCursor,
    name: string,
    atDeploymentRoot: boolean,
  ): { cursor: TreeCursor | null; entry: EntryMeta | (() => EntryMeta) } | null => {
    const dir = cursor.tree.dirs.find((d) => d.name === name);
    if (dir) {
      const meta = dirMeta(dir.meta);
      return {
        cursor: { tree: repo.readDirTree(dir.tree), meta, inEtc: cursor.inEtc },
        entry: { ...meta, mtime: epoch },
      };
    }
    const file = cursor.tree.files.find((f) => f.name === name);
    if (file) {
      // Read only when the staged file lacks its own header (a deployment file is a hardlink to
      // its object and has it): reading every object's xattr twice cost a second per 30,000 files.
      const mtime = cursor.inEtc ? epoch : 0;
      return { cursor: null, entry: () => ({ ...objectHeader(file.checksum), mtime }) };
    }
    // The deployment's /etc is the merge of /usr/etc: its entries take /usr/etc's metadata.
    if (atDeploymentRoot && name === 'etc') {
      const usr = cursor.tree.dirs.find((d) => d.name === 'usr');
      const usrTree = usr ? repo.readDirTree(usr.tree) : null;
      const etc = usrTree?.dirs.find((d) => d.name === 'etc');
      if (etc) {
        const meta = dirMeta(etc.meta);
        return { cursor: { tree: repo.readDirTree(etc.tree), meta, inEtc: true }, entry: { ...meta, mtime: epoch } };
      }
    }
    return null;
  };

  visit(root, '/', null, null);
  return { specs, usage: { blockBytes, inodes: specs.length } };
}

type EntryMeta = Pick<FileHeader, 'uid' | 'gid' | 'mode' | 'xattrs'> & { readonly mtime: number };

function ownerOf(h: { uid: number; gid: number; mode: number }): { uid: number; gid: number; mode: number } {
  return { uid: h.uid, gid: h.gid, mode: h.mode };
}

function replacementOf(h: FileHeader): InodeSpec['replaceWith'] {
  if (isSymlink(h.mode)) return { kind: 'symlink', target: h.symlinkTarget };
  if (isDevice(h.mode))
    return { kind: 'device', type: (h.mode & S_IFMT) === 0o020000 ? 'c' : 'b', major: h.rdevMajor, minor: h.rdevMinor };
  return { kind: 'fifo' };
}

/** A bare object's header is its inode (the fallback when a staged object has no bare-user xattr). */
function headerOfInode(st: { uid: number; gid: number; mode: number; size: number }): FileHeader {
  return {
    uid: st.uid,
    gid: st.gid,
    mode: st.mode,
    rdevMajor: 0,
    rdevMinor: 0,
    symlinkTarget: '',
    xattrs: [],
    size: st.size,
  };
}

/** mkfs reads every staged file as the building user: give it read (and directory search) permission. */
function makeReadable(path: string, mode: number, isDir: boolean): number {
  const want = isDir ? 0o700 : isRegular(mode) ? 0o400 : 0;
  if ((mode & want) === want) return mode;
  chmodSync(path, (mode & 0o7777) | want);
  return mode | want;
}

/** The fixed mke2fs configuration: the host's /etc/mke2fs.conf must not change an image's bytes. */
const MKE2FS_CONF = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	reserved_ratio = 5.0
	lazy_itable_init = true
	lazy_journal_init = true

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`;

/** Where a root filesystem goes, what it holds and what it is called: what ext4 and xfs share. */
export interface RootFsTarget {
  /** The disk file (or device); the filesystem is written at offsetBytes, sizeBytes long. */
  readonly disk: string;
  readonly offsetBytes: number;
  readonly sizeBytes: number;
  /** The staged sysroot. */
  readonly source: string;
  readonly label: string;
  readonly uuid: string;
}

export interface Ext4Options extends RootFsTarget {
  readonly hashSeed: string;
  readonly inodes: number;
  /** Seconds: every time mkfs and debugfs write (E2FSPROGS_FAKE_TIME). */
  readonly epoch: number;
  /** A directory for the config and script files. */
  readonly workDir: string;
  /** Without a journal (test images that are booted once). Default true. */
  readonly journal?: boolean;
}

/** `mkfs.ext4 -d` of SOURCE into the disk file at an offset: reproducible given the same inputs. */
export function makeExt4(o: Ext4Options): void {
  const conf = join(o.workDir, 'mke2fs.conf');
  writeFileSync(conf, MKE2FS_CONF);
  runTool(
    'mkfs.ext4',
    [
      '-q',
      '-F',
      '-L',
      o.label,
      '-U',
      o.uuid.toLowerCase(),
      '-N',
      String(o.inodes),
      '-E',
      `offset=${o.offsetBytes},nodiscard,hash_seed=${o.hashSeed.toLowerCase()},root_owner=0:0`,
      ...(o.journal === false ? ['-O', '^has_journal'] : []),
      '-d',
      o.source,
      o.disk,
      `${o.sizeBytes / 1024}k`,
    ],
    { env: { MKE2FS_CONFIG: conf, E2FSPROGS_FAKE_TIME: String(o.epoch), MKE2FS_DEVICE_SECTSIZE: '512' } },
  );
}

/**
 * Applies SPECS (every inode `mkfs.ext4 -d` made from the staged tree, in planRootInodes' order)
 * to the filesystem at OFFSETBYTES in DISK: rewritten in the inode tables where only owner, mode,
 * times and the bare-user header change, the rest (replaced inodes, xattrs to set) and all of
 * them when the tables are not as planned with one `debugfs -w -f SCRIPT` run.
 */
export function applyInodeSpecs(
  disk: string,
  offsetBytes: number,
  specs: readonly InodeSpec[],
  epoch: number,
  workDir: string,
): void {
  const rewritten = rewriteExt4Inodes(
    disk,
    offsetBytes,
    specs.map((s) => plannedRewrite(s, epoch)),
  );
  const rest = rewritten === null ? specs : specs.filter((_, i) => !rewritten[i]);
  if (rest.length > 0) applyWithDebugfs(disk, offsetBytes, rest, epoch, workDir);
}

/** The table rewrite of SPEC: null for what only debugfs can do (replace the inode, set xattrs). */
function plannedRewrite(spec: InodeSpec, epoch: number): PlannedRewrite {
  const type = spec.staged.mode & S_IFMT;
  const expect = { type, size: type === S_IFDIR ? null : spec.staged.size };
  const dropUserXattrs = spec.dropXattrs.map((name) => (name.startsWith('user.') ? name.slice(5) : ''));
  if (spec.replaceWith !== undefined || spec.xattrs.length > 0 || dropUserXattrs.includes(''))
    return { expect, rewrite: null };
  const { uid, gid, mode, mtime } = spec;
  return { expect, rewrite: { uid, gid, mode, atime: mtime, mtime, ctime: epoch, dropUserXattrs } };
}

/**
 * Applies SPECS with one `debugfs -w -f SCRIPT` run. debugfs reports a failed command on stderr
 * and still exits 0: any line there is a failure.
 */
function applyWithDebugfs(
  disk: string,
  offsetBytes: number,
  specs: readonly InodeSpec[],
  epoch: number,
  workDir: string,
): void {
  const values = new Map<string, string>();
  const valueFile = (value: Buffer): string => {
    const key = createHash('sha256').update(value).digest('hex');
    let path = values.get(key);
    if (path === undefined) {
      path = join(workDir, `xattr-${values.size}`);
      writeFileSync(path, value);
      values.set(key, path);
    }
    return path;
  };
  const script = join(workDir, 'debugfs.script');
  writeFileSync(script, renderDebugfsScript(specs, epoch, valueFile));
  const { stderr } = runTool('debugfs', ['-w', '-f', script, `${disk}?offset=${offsetBytes}`], {
    env: { E2FSPROGS_FAKE_TIME: String(epoch) },
  });
  const problems = stderr.split('\n').filter((line) => line.trim() !== '' && !/^debugfs \d/.test(line));
  if (problems.length > 0) {
    throw new ArborError(
      'E_IMAGE_TOOL_FAILED',
      `debugfs could not set the image's inodes: ${problems.slice(0, 5).join(' / ')}`,
    );
  }
  // The superblock counts the bytes every session wrote, and the script's length depends on the
  // builder: reset it in a session of its own, whose own writes are always the same.
  runTool('debugfs', ['-w', '-R', 'ssv kbytes_written 0', `${disk}?offset=${offsetBytes}`], {
    env: { E2FSPROGS_FAKE_TIME: String(epoch) },
  });
}
