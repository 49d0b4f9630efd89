// Differences between two commits' trees, found by comparing checksums top-down: equal
// subtrees are skipped without being read.
import type { Checksum } from '../common/hash.js';
import type { DirTree } from './objects/index.js';
import type { Repo } from './store.js';

type DiffStatus = 'A' | 'M' | 'D';

export interface DiffEntry {
  readonly status: DiffStatus;
  /** Absolute path inside the tree, e.g. "/usr/bin/ls". */
  readonly path: string;
  readonly type: 'file' | 'dir';
  /** Content size before/after (files only). */
  readonly sizeBefore?: number;
  readonly sizeAfter?: number;
}

/** All added, modified and deleted paths from commit `a` to commit `b`, in tree order. */
export function diffCommits(repo: Repo, a: Checksum, b: Checksum): DiffEntry[] {
  const ca = repo.readCommit(a);
  const cb = repo.readCommit(b);
  const out: DiffEntry[] = [];
  if (ca.rootMeta !== cb.rootMeta) out.push({ status: 'M', path: '/', type: 'dir' });
  diffTrees(repo, ca.rootTree, cb.rootTree, '', out);
  return out;
}

function diffTrees(repo: Repo, a: Checksum, b: Checksum, prefix: string, out: DiffEntry[]): void {
  if (a === b) return;
  const ta = repo.readDirTree(a);
  const tb = repo.readDirTree(b);
  const filesA = new Map(ta.files.map((f) => [f.name, f.checksum]));
  const filesB = new Map(tb.files.map((f) => [f.name, f.checksum]));
  const dirsA = new Map(ta.dirs.map((d) => [d.name, d]));
  const dirsB = new Map(tb.dirs.map((d) => [d.name, d]));
  const names = [...new Set([...filesA.keys(), ...dirsA.keys(), ...filesB.keys(), ...dirsB.keys()])].sort();
  for (const name of names) {
    const path = `${prefix}/${name}`;
    const fa = filesA.get(name);
    const fb = filesB.get(name);
    const da = dirsA.get(name);
    const db = dirsB.get(name);
    if (fa && fb) {
      if (fa !== fb)
        out.push({
          status: 'M',
          path,
          type: 'file',
          sizeBefore: repo.readFileHeader(fa).size,
          sizeAfter: repo.readFileHeader(fb).size,
        });
      continue;
    }
    if (da && db) {
      if (da.meta !== db.meta) out.push({ status: 'M', path, type: 'dir' });
      diffTrees(repo, da.tree, db.tree, path, out);
      continue;
    }
    // Present on one side only, or its type changed (a change of type is a deletion plus an addition).
    if (fa) out.push({ status: 'D', path, type: 'file', sizeBefore: repo.readFileHeader(fa).size });
    if (da) listAll(repo, repo.readDirTree(da.tree), path, 'D', out);
    if (fb) out.push({ status: 'A', path, type: 'file', sizeAfter: repo.readFileHeader(fb).size });
    if (db) listAll(repo, repo.readDirTree(db.tree), path, 'A', out);
  }
}

function listAll(repo: Repo, tree: DirTree, path: string, status: 'A' | 'D', out: DiffEntry[]): void {
  out.push({ status, path, type: 'dir' });
  for (const f of tree.files) {
    const size = repo.readFileHeader(f.checksum).size;
    out.push({
      status,
      path: `${path}/${f.name}`,
      type: 'file',
      ...(status === 'A' ? { sizeAfter: size } : { sizeBefore: size }),
    });
  }
  for (const d of tree.dirs) listAll(repo, repo.readDirTree(d.tree), `${path}/${d.name}`, status, out);
}

/** Totals for `diff --stat`. */
export function summarizeDiff(entries: readonly DiffEntry[]): {
  added: number;
  modified: number;
  deleted: number;
  bytesAdded: number;
  bytesRemoved: number;
} {
  const s = { added: 0, modified: 0, deleted: 0, bytesAdded: 0, bytesRemoved: 0 };
  for (const e of entries) {
    if (e.status === 'A') s.added++;
    else if (e.status === 'M') s.modified++;
    else s.deleted++;
    s.bytesAdded += e.sizeAfter ?? 0;
    s.bytesRemoved += e.sizeBefore ?? 0;
  }
  return s;
}
