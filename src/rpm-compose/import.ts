// Importing RPM packages into the repository: each package's payload streams straight into file
// objects and becomes one commit on `pkg/NAME/EVR.ARCH`, cached by the main header's SHA-256.
import { readFileSync } from 'node:fs';
import { ArborError, CorruptionError, ioError } from '../common/errors.js';
import { hashBytes } from '../common/hash.js';
import {
  type Checksum,
  type Commit,
  type DirMeta,
  type FileHeader,
  type MetadataValue,
  type Repo,
  type Transaction,
  type Xattr,
  assertRefName,
  encodeCommit,
  encodeDirMeta,
  encodeDirTree,
  encodeFileHeader,
  invalidNameReason,
  writeStreamedFile,
} from '../repo/index.js';
import { CAPABILITY_XATTR, encodeFileCaps } from './rpm/caps.js';
import { type RpmFile, type RpmHead, formatEvr, formatNevra, isGhost, readPayload, readRpmHead } from './rpm/index.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Escapes a ref component: every byte outside [A-Za-z0-9._+-] (and a '.' after a '.') becomes `_XX`. */
function escapeRefPart(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9+-]/.test(ch) || (ch === '.' && !out.endsWith('.') && out !== '')) out += ch;
    else out += `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * The ref a package is imported to: `pkg/NAME/EPOCH:VERSION-RELEASE.ARCH` with the EVR escaped
 * (no epoch counts as 0). Name and arch are used as they are (rpm names and arches are valid ref
 * characters, '_' included); the caller checks the result with assertRefName.
 */
export function pkgRefName(name: string, epoch: number | undefined, version: string, release: string, arch: string): string {
  return `pkg/${name}/${escapeRefPart(`${epoch ?? 0}:${version}-${release}`)}.${arch}`;
}

/** User and group names to ids; root is always 0. */
export interface OwnerMap {
  readonly users: ReadonlyMap<string, number>;
  readonly groups: ReadonlyMap<string, number>;
}

/** Reads passwd(5)/group(5) style files (NAME:x:ID:...); either may be omitted (only root known). */
export function loadOwnerMap(passwd?: string, group?: string): OwnerMap {
  const parse = (path: string | undefined): Map<string, number> => {
    const ids = new Map<string, number>([['root', 0]]);
    if (path === undefined) return ids;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw ioError('read', path, error);
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '' || line.startsWith('#')) continue;
      const fields = line.split(':');
      const id = Number(fields[2]);
      if (fields.length < 3 || fields[0] === '' || !/^\d+$/.test(fields[2] ?? '') || id > 0xffffffff) continue;
      if (!ids.has(fields[0]!)) ids.set(fields[0]!, id);
    }
    ids.set('root', 0);
    return ids;
  };
  return { users: parse(passwd), groups: parse(group) };
}

export interface ImportResult {
  readonly ref: string;
  readonly commit: Checksum;
  /** True when the ref already held this package (same header SHA-256): nothing was read or written. */
  readonly cached: boolean;
}

export interface ImportOptions {
  readonly owners: OwnerMap;
}

/** Imports one package (see the module comment). */
export async function importRpm(repo: Repo, path: string, options: ImportOptions): Promise<ImportResult> {
  const head = await readRpmHead(path);
  const { pkg } = head;
  const ref = pkgRefName(pkg.name, pkg.epoch, pkg.version, pkg.release, pkg.arch);
  assertRefName(ref);
  const current = repo.db.getRef(ref) ?? null;
  if (current !== null) {
    const known = repo.readCommit(current).metadata.get('rpm.header-sha256');
    if (known?.type === 'string' && known.value === head.headerSha256) return { ref, commit: current, cached: true };
  }
  const tx = repo.beginTransaction();
  try {
    const root = await writePackageTree(tx, head, options.owners);
    const metadata = new Map<string, MetadataValue>([
      ['rpm.nevra', { type: 'string', value: formatNevra(pkg) }],
      ['rpm.header-sha256', { type: 'string', value: head.headerSha256 }],
      ['rpm.header', { type: 'bytes', value: head.header.bytes }],
    ]);
    const commit: Commit = {
      parent: null,
      timestamp: pkg.buildTime,
      subject: `${pkg.name}-${formatEvr(pkg)}.${pkg.arch}`,
      body: '',
      rootTree: root.tree,
      rootMeta: root.meta,
      metadata,
    };
    const checksum = tx.writeMetadata('commit', encodeCommit(commit));
    tx.commit([{ name: ref, checksum, expected: current }]);
    return { ref, commit: checksum, cached: false };
  } catch (error) {
    tx.abort();
    throw error;
  }
}

interface TreeDir {
  meta: DirMeta | undefined;
  files: Map<string, Checksum>;
  dirs: Map<string, TreeDir>;
}

const newDir = (): TreeDir => ({ meta: undefined, files: new Map(), dirs: new Map() });

/** Builds the package's tree from its header's file list and streamed payload; returns the root's ids. */
async function writePackageTree(tx: Transaction, head: RpmHead, owners: OwnerMap): Promise<{ tree: Checksum; meta: Checksum }> {
  const { pkg } = head;
  const corrupt = (problem: string): CorruptionError => new CorruptionError('E_RPM_PAYLOAD', `package '${head.path}': ${problem}`);
  const root = newDir();
  const partsOf = (file: RpmFile): string[] => {
    const parts = file.path.split('/').filter((p) => p !== '');
    for (const part of parts) {
      const reason = invalidNameReason(part);
      if (reason) throw corrupt(`path '${file.path}' cannot be stored: ${reason}`);
    }
    return parts;
  };
  const dirAt = (parts: readonly string[], file: RpmFile): TreeDir => {
    let dir = root;
    for (const part of parts) {
      if (dir.files.has(part)) throw corrupt(`'${file.path}' is below '${part}', which is not a directory`);
      let next = dir.dirs.get(part);
      if (!next) {
        next = newDir();
        dir.dirs.set(part, next);
      }
      dir = next;
    }
    return dir;
  };
  const ownerOf = (file: RpmFile): { uid: number; gid: number } => {
    const uid = owners.users.get(file.user);
    if (uid === undefined) {
      throw new ArborError('E_RPM_OWNER', `package '${head.path}': '${file.path}' is owned by user '${file.user}', which is not in the passwd file`, {
        hint: 'pass --passwd FILE naming the user',
      });
    }
    const gid = owners.groups.get(file.group);
    if (gid === undefined) {
      throw new ArborError('E_RPM_OWNER', `package '${head.path}': '${file.path}' has group '${file.group}', which is not in the group file`, {
        hint: 'pass --group FILE naming the group',
      });
    }
    return { uid, gid };
  };

  // Directories first, from the header (their owners and modes), and every owner checked up front.
  for (const file of pkg.files) {
    if (isGhost(file)) continue;
    const owner = ownerOf(file);
    if ((file.mode & S_IFMT) === S_IFDIR) dirAt(partsOf(file), file).meta = { ...owner, mode: file.mode, xattrs: [] };
  }

  for await (const entry of readPayload(head)) {
    const file = entry.file;
    const type = file.mode & S_IFMT;
    if (type === S_IFDIR) continue;
    const device = type === S_IFCHR || type === S_IFBLK;
    const rdev = file.rdev >>> 0;
    const header: FileHeader = {
      ...ownerOf(file),
      mode: file.mode,
      rdevMajor: device ? (rdev >>> 8) & 0xfff : 0,
      rdevMinor: device ? (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) : 0,
      symlinkTarget: type === S_IFLNK ? file.linkTo : '',
      // rpm applies %caps at install time; a committed tree carries them as the xattr the kernel reads.
      xattrs: fileCapsXattrs(file.caps, head.path, file.path),
      size: type === S_IFREG ? file.size : 0,
    };
    let checksum: Checksum;
    if (type === S_IFREG && entry.content) {
      checksum = await writeStreamedFile(tx, header, entry.content, () => corrupt(`'${file.path}' does not have the ${file.size} bytes the header says`));
    } else {
      const bytes = encodeFileHeader(header);
      checksum = hashBytes(bytes);
      tx.writeFile(checksum, header, { buffer: Buffer.alloc(0) });
    }
    for (const index of entry.indices) {
      const member = pkg.files[index]!;
      const parts = partsOf(member);
      const name = parts.pop();
      if (name === undefined) throw corrupt(`'${member.path}' names the root but is not a directory`);
      const dir = dirAt(parts, member);
      if (dir.dirs.has(name)) throw corrupt(`'${member.path}' is both a directory and a file`);
      dir.files.set(name, checksum);
    }
  }

  const writeDir = (dir: TreeDir): { tree: Checksum; meta: Checksum } => {
    const files = [...dir.files].map(([name, checksum]) => ({ name, checksum }));
    const dirs = [...dir.dirs].map(([name, child]) => ({ name, ...writeDir(child) }));
    return {
      tree: tx.writeMetadata('dirtree', encodeDirTree({ files, dirs })),
      meta: tx.writeMetadata('dirmeta', encodeDirMeta(dir.meta ?? { uid: 0, gid: 0, mode: S_IFDIR | 0o755, xattrs: [] })),
    };
  };
  return writeDir(root);
}

function fileCapsXattrs(caps: string, packagePath: string, path: string): Xattr[] {
  try {
    const value = encodeFileCaps(caps);
    return value ? [{ name: CAPABILITY_XATTR, value }] : [];
  } catch (error) {
    throw new ArborError('E_RPM_CAPS', `package '${packagePath}': '${path}' has capabilities '${caps}' that cannot be read`, { cause: error });
  }
}
