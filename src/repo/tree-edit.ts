// Editing a committed tree by object ids: look up, add, remove and move entries, then write back
// only the directories that changed. No file content is read or copied (compose's postprocessing
// moves /etc, turns /var into tmpfiles.d entries, makes the top-level symlinks this way).
import { UsageError, present } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import {
  type DirMeta,
  type FileHeader,
  decodeDirMeta,
  encodeDirMeta,
  encodeDirTree,
  encodeFileHeader,
  invalidNameReason,
  S_IFDIR,
  S_IFLNK,
} from './objects/index.js';
import { hashBytes } from '../common/hash.js';
import type { Transaction } from './transaction.js';

/** An entry the editor holds at a path: a file (with its content size, as dirtrees record it) or a directory. */
export type EditEntry =
  | { readonly kind: 'file'; readonly checksum: Checksum; readonly size: number }
  | { readonly kind: 'dir'; readonly tree: Checksum; readonly meta: Checksum };

/** A file entry of a dirtree: the object and its content size. */
interface FileRef {
  readonly checksum: Checksum;
  readonly size: number;
}

interface Node {
  meta: Checksum;
  /** The stored dirtree this node was loaded from, until it changes. */
  tree: Checksum | null;
  files: Map<string, FileRef> | null;
  dirs: Map<string, Node> | null;
}

/** The owner and mode of directories an edit creates: root, 0755. */
export const DEFAULT_DIR_META: DirMeta = { uid: 0, gid: 0, mode: S_IFDIR | 0o755, xattrs: [] };

export class TreeEditor {
  readonly #tx: Transaction;
  readonly #root: Node;

  constructor(tx: Transaction, root: { tree: Checksum; meta: Checksum }) {
    this.#tx = tx;
    this.#root = { meta: root.meta, tree: root.tree, files: null, dirs: null };
  }

  /** Splits '/a/b' into ['a', 'b'], refusing names a dirtree cannot hold. */
  static parts(path: string): string[] {
    const parts = path.split('/').filter((p) => p !== '');
    for (const p of parts) {
      const reason = invalidNameReason(p);
      if (reason) throw new UsageError('E_PATH_INVALID', `'${path}' cannot be a path in a tree: ${reason}`);
    }
    return parts;
  }

  #load(node: Node): { files: Map<string, FileRef>; dirs: Map<string, Node> } {
    if (node.files === null || node.dirs === null) {
      const stored = node.tree === null ? { files: [], dirs: [] } : this.#tx.readStagedOrStoredTree(node.tree);
      node.files = new Map(stored.files.map((f) => [f.name, { checksum: f.checksum, size: f.size }]));
      node.dirs = new Map(stored.dirs.map((d) => [d.name, { meta: d.meta, tree: d.tree, files: null, dirs: null }]));
    }
    return { files: node.files, dirs: node.dirs };
  }

  /** The node of a directory path, or undefined; with `create`, missing directories are made. */
  #dir(parts: readonly string[], create: boolean): Node | undefined {
    let node = this.#root;
    for (const part of parts) {
      const { files, dirs } = this.#load(node);
      let next = dirs.get(part);
      if (!next) {
        if (!create) return undefined;
        if (files.has(part)) throw new UsageError('E_PATH_INVALID', `'${part}' is a file, not a directory`);
        next = {
          meta: this.#tx.writeMetadata('dirmeta', encodeDirMeta(DEFAULT_DIR_META)),
          tree: null,
          files: new Map(),
          dirs: new Map(),
        };
        dirs.set(part, next);
        node.tree = null;
      }
      node = next;
    }
    return node;
  }

  get(path: string): EditEntry | undefined {
    const parts = TreeEditor.parts(path);
    const name = parts.pop();
    if (name === undefined) return { kind: 'dir', ...this.#written(this.#root) };
    const parent = this.#dir(parts, false);
    if (!parent) return undefined;
    const { files, dirs } = this.#load(parent);
    const file = files.get(name);
    if (file !== undefined) return { kind: 'file', ...file };
    const dir = dirs.get(name);
    return dir ? { kind: 'dir', ...this.#written(dir) } : undefined;
  }

  /** Names in a directory (files and directories), or undefined when it is not one. */
  list(path: string): { files: string[]; dirs: string[] } | undefined {
    const node = this.#dir(TreeEditor.parts(path), false);
    if (!node) return undefined;
    const { files, dirs } = this.#load(node);
    return { files: [...files.keys()], dirs: [...dirs.keys()] };
  }

  /** Puts an entry at `path` (replacing what is there); missing parents are made root-owned 0755. */
  set(path: string, entry: EditEntry): void {
    const parts = TreeEditor.parts(path);
    const name = parts.pop();
    if (name === undefined) throw new UsageError('E_PATH_INVALID', 'the root cannot be replaced');
    const parent = this.#dir(parts, true) as Node;
    const { files, dirs } = this.#load(parent);
    files.delete(name);
    dirs.delete(name);
    if (entry.kind === 'file') files.set(name, { checksum: entry.checksum, size: entry.size });
    else dirs.set(name, { meta: entry.meta, tree: entry.tree, files: null, dirs: null });
    this.#dirty(parts);
  }

  /** Removes and returns the entry at `path`. */
  remove(path: string): EditEntry | undefined {
    const entry = this.get(path);
    if (!entry) return undefined;
    const parts = TreeEditor.parts(path);
    const name = present(parts.pop(), `the last component of '${path}'`);
    const { files, dirs } = this.#load(this.#dir(parts, false) as Node);
    files.delete(name);
    dirs.delete(name);
    this.#dirty(parts);
    return entry;
  }

  /** Moves an entry; fails when the destination exists. */
  move(from: string, to: string): void {
    if (this.get(to)) throw new UsageError('E_PATH_EXISTS', `cannot move '${from}' to '${to}': '${to}' exists`);
    const entry = this.remove(from);
    if (!entry) throw new UsageError('E_PATH_NOT_FOUND', `cannot move '${from}': it does not exist`);
    this.set(to, entry);
  }

  /** Stores a symlink object and puts it at `path`. */
  symlink(path: string, target: string, owner = { uid: 0, gid: 0 }): void {
    const header: FileHeader = {
      ...owner,
      mode: S_IFLNK | 0o777,
      rdevMajor: 0,
      rdevMinor: 0,
      symlinkTarget: target,
      xattrs: [],
      size: 0,
    };
    const checksum = hashBytes(encodeFileHeader(header));
    this.#tx.writeFile(checksum, header, { buffer: Buffer.alloc(0) });
    this.set(path, { kind: 'file', checksum, size: 0 });
  }

  /** Stores a regular file object with the given content and puts it at `path`. */
  writeFile(path: string, content: Buffer, mode = 0o644, owner = { uid: 0, gid: 0 }): void {
    const header: FileHeader = {
      ...owner,
      mode: 0o100000 | mode,
      rdevMajor: 0,
      rdevMinor: 0,
      symlinkTarget: '',
      xattrs: [],
      size: content.length,
    };
    const checksum = hashBytes(encodeFileHeader(header), content);
    this.#tx.writeFile(checksum, header, { buffer: content });
    this.set(path, { kind: 'file', checksum, size: content.length });
  }

  /** Marks the directories along a path as changed. */
  #dirty(parts: readonly string[]): void {
    let node = this.#root;
    node.tree = null;
    for (const part of parts) {
      node = present(this.#load(node).dirs.get(part), 'a directory on the path');
      node.tree = null;
    }
  }

  #written(node: Node): { tree: Checksum; meta: Checksum } {
    if (node.tree === null) {
      const { files, dirs } = this.#load(node);
      node.tree = this.#tx.writeMetadata(
        'dirtree',
        encodeDirTree({
          files: [...files].map(([name, file]) => ({ name, ...file })),
          dirs: [...dirs].map(([name, child]) => ({ name, ...this.#written(child) })),
        }),
      );
    }
    return { tree: node.tree, meta: node.meta };
  }

  /** A directory's owner and mode, whether its dirmeta is stored or was made by this edit. */
  dirMeta(checksum: Checksum): DirMeta {
    return decodeDirMeta(this.#tx.readStagedOrStored(checksum, 'dirmeta'), `dirmeta ${checksum}`);
  }

  /** Writes every changed directory and returns the new root. */
  write(): { tree: Checksum; meta: Checksum } {
    return this.#written(this.#root);
  }
}
