// Publishing staged objects: an object another transaction stored meanwhile is kept as it is,
// and no devino row names the staged copy that was not used.
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashBytes } from '../common/hash.js';
import { type FileHeader, encodeFileHeader } from './objects/index.js';
import { Repo } from './store.js';

const header = (size: number): FileHeader => ({
  uid: process.getuid?.() ?? 0,
  gid: process.getgid?.() ?? 0,
  mode: 0o100644,
  rdevMajor: 0,
  rdevMinor: 0,
  symlinkTarget: '',
  xattrs: [],
  size,
});

describe.each(['bare-user', 'bare'] as const)('Transaction publishing into a %s repository', (mode) => {
  let dir: string;
  let repo: Repo;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'arbor-transaction-'));
    repo = Repo.init(join(dir, 'repo'), mode);
  });
  afterEach(() => {
    repo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const stage = (content: string) => {
    const bytes = Buffer.from(content);
    const h = header(bytes.length);
    const checksum = hashBytes(Buffer.concat([encodeFileHeader(h), bytes]));
    return {
      checksum,
      write: (tx: ReturnType<Repo['beginTransaction']>) => tx.writeFile(checksum, h, { buffer: bytes }),
    };
  };

  it('publishes each object once when checkpoints overlap', async () => {
    const objects = ['a\n', 'b\n', 'c\n'].map(stage);
    const tx = repo.beginTransaction();
    const [a, b, c] = objects as [(typeof objects)[0], (typeof objects)[0], (typeof objects)[0]];
    a.write(tx);
    const first = tx.checkpointAsync();
    b.write(tx);
    const second = tx.checkpointAsync(); // holds a too, which the first one publishes
    c.write(tx);
    tx.checkpoint(); // publishes a, b and c while both flushes run
    await Promise.all([first, second]);
    tx.commit();
    for (const o of objects) expect(lstatSync(repo.objectPath(o.checksum, 'file')).isFile()).toBe(true);
  });

  it.each(['commit', 'checkpointAsync'] as const)(
    'keeps an object stored by another transaction meanwhile, and records no devino row for its copy (%s)',
    async (how) => {
      const ours = stage('ours\n');
      const other = stage('only ours\n');
      const tx = repo.beginTransaction();
      ours.write(tx);
      other.write(tx);
      // Another transaction publishes the same object first (same name; a marker to tell it apart).
      const target = repo.objectPath(ours.checksum, 'file');
      writeFileSync(target, 'theirs');
      const theirs = lstatSync(target);
      const copy = lstatSync(join(tx.staging, `${ours.checksum}.file`));
      if (how === 'commit') tx.commit();
      else {
        await tx.checkpointAsync();
        tx.commit();
      }
      expect(readFileSync(target, 'utf8')).toBe('theirs');
      expect(lstatSync(target).ino).toBe(theirs.ino);
      const published = lstatSync(repo.objectPath(other.checksum, 'file'));
      expect(repo.db.getDevino(published.dev, published.ino)?.checksum).toBe(other.checksum);
      // The staged copy is deleted with the staging directory: a row naming its inode could match
      // whatever file gets that inode number next.
      expect(repo.db.getDevino(copy.dev, copy.ino)).toBeUndefined();
      expect(repo.db.getDevino(theirs.dev, theirs.ino)).toBeUndefined();
    },
  );
});
