// Big generated trees for crash and concurrency tests (thousands of files, seeded), and compact
// snapshots that compare a checkout with its source by type, permissions, size, digest and target.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Random } from './random.js';

export interface BulkTreeSpec {
  /** Small files (0 to `smallMaxBytes` bytes) spread over `dirs` directories two levels deep. */
  readonly smallFiles: number;
  readonly smallMaxBytes?: number;
  readonly dirs?: number;
  /** Larger files under large/. */
  readonly largeFiles?: number;
  readonly largeBytes?: number;
}

/**
 * Writes a tree at `root` (created) from `spec`: small and large files, some executable, an empty
 * file, an empty directory and two symlinks, all drawn from `random`. Returns the number of files.
 */
export function writeBulkTree(root: string, spec: BulkTreeSpec, random: Random): number {
  const dirs = spec.dirs ?? 40;
  const smallMax = spec.smallMaxBytes ?? 3000;
  mkdirSync(join(root, 'empty-dir'), { recursive: true });
  writeFileSync(join(root, 'empty-file'), '');
  symlinkSync('empty-file', join(root, 'link-to-file'));
  symlinkSync('/nonexistent/target', join(root, 'dangling-link'));
  let count = 3;
  // Slices of one buffer: thousands of tiny keystreams would cost more than writing the files.
  const pool = random.bytes(Math.max(smallMax, 1) * 4);
  for (let i = 0; i < spec.smallFiles; i++) {
    const dir = join(root, `d${String(i % dirs).padStart(3, '0')}`, `s${i % 5}`);
    mkdirSync(dir, { recursive: true });
    const size = random.int(0, smallMax);
    const start = random.int(0, pool.length - size);
    const file = join(dir, `f${i}`);
    // A per-file prefix keeps contents (and so objects) distinct, as in a real OS tree.
    writeFileSync(file, Buffer.concat([Buffer.from(`${random.seed}:${i}\n`), pool.subarray(start, start + size)]));
    if (random.next() < 0.1) chmodSync(file, 0o755);
    count++;
  }
  if ((spec.largeFiles ?? 0) > 0) mkdirSync(join(root, 'large'), { recursive: true });
  for (let i = 0; i < (spec.largeFiles ?? 0); i++) {
    writeFileSync(join(root, 'large', `l${i}`), random.bytes(spec.largeBytes ?? 4 * 1024 * 1024));
    count++;
  }
  return count;
}

/** Every entry below `root` as "type perm size sha256" or "symlink -> target", keyed by relative path. */
export function snapshotTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const key = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path);
      const perm = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(key, `dir ${perm}`);
        walk(path, key);
      } else if (st.isSymbolicLink()) {
        out.set(key, `symlink -> ${readlinkSync(path)}`);
      } else if (st.isFile()) {
        out.set(key, `file ${perm} ${st.size} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`);
      } else {
        out.set(key, `other ${st.mode.toString(8)}`);
      }
    }
  };
  walk(root, '');
  return out;
}

/** Differences between two snapshots, at most `limit` lines; empty when they are equal. */
export function diffSnapshots(
  expected: ReadonlyMap<string, string>,
  actual: ReadonlyMap<string, string>,
  limit = 10,
): string[] {
  const lines: string[] = [];
  for (const [path, value] of expected) {
    const got = actual.get(path);
    if (got !== value) lines.push(`${path}: expected ${value}, got ${got ?? 'nothing'}`);
  }
  for (const path of actual.keys()) if (!expected.has(path)) lines.push(`${path}: unexpected`);
  return lines.slice(0, limit);
}
