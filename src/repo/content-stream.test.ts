// Reading file objects' content in order: whole and equal to what was committed in every mode,
// corruption found by verify(), and sliding ranges equal to the content's slices.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import { useTempDir } from '../../test/support/temp.js';
import { pseudoRandomBytes } from '../../test/support/tree.js';
import type { Checksum } from '../common/hash.js';
import { commitTree } from './commit.js';
import type { RepoMode } from './config.js';
import { type ContentStream, SlidingRange, openContentStream } from './content-stream.js';
import { encodeFileHeader } from './objects/index.js';
import { Repo } from './store.js';

const CONTENT = pseudoRandomBytes(3 * 1024 * 1024 + 17, 31);

/** Runs `use` on a fresh repository of `mode` holding /big (CONTENT) and /link (a symlink), then closes it. */
async function withRepo(
  root: string,
  mode: RepoMode,
  use: (repo: Repo, files: { big: Checksum; link: Checksum }) => void,
): Promise<void> {
  const tree = join(root, 'tree');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, 'big'), CONTENT);
  symlinkSync('big', join(tree, 'link'));
  const repo = Repo.init(join(root, 'repo'), mode);
  try {
    const { checksum } = await commitTree(repo, { branch: 'main', timestamp: 1, tree: { dir: tree } });
    const files = new Map(repo.readDirTree(repo.readCommit(checksum).rootTree).files.map((f) => [f.name, f.checksum]));
    use(repo, { big: files.get('big') as Checksum, link: files.get('link') as Checksum });
  } finally {
    repo.close();
  }
}

/** Runs `use` on a content stream of `checksum`, then closes it. */
function withStream(repo: Repo, checksum: Checksum, use: (stream: ContentStream) => void): void {
  const stream = openContentStream(repo, checksum);
  if (stream === null) throw new Error(`file ${checksum} is not regular`);
  try {
    use(stream);
  } finally {
    stream.close();
  }
}

/** Everything left in a stream, read `step` bytes at a time. */
function readAll(stream: ContentStream, step: number): Buffer {
  const chunks: Buffer[] = [];
  const into = Buffer.alloc(step);
  for (let n = stream.read(into); n > 0; n = stream.read(into)) chunks.push(Buffer.from(into.subarray(0, n)));
  return Buffer.concat(chunks);
}

/** Flips the byte at 2 MiB of a copy of `bytes`. */
function damaged(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt8(copy.readUInt8(2 * 1024 * 1024) ^ 0xff, 2 * 1024 * 1024);
  return copy;
}

describe('content streams', () => {
  const tmp = useTempDir('arbor-content-stream-');

  it.each<RepoMode>(['archive', 'bare-user'])('reads a %s object in pieces, equal to the committed content', (mode) =>
    withRepo(join(tmp.path, `read-${mode}`), mode, (repo, { big, link }) => {
      withStream(repo, big, (stream) => {
        expect(stream.header.size).toBe(CONTENT.length);
        expect(readAll(stream, 1000 * 1000 + 7).equals(CONTENT)).toBe(true);
        stream.verify();
      });
      expect(openContentStream(repo, link)).toBeNull();
    }),
  );

  it.each<RepoMode>(['archive', 'bare-user'])('finds a changed %s object when verifying, even unread', (mode) =>
    withRepo(join(tmp.path, `corrupt-${mode}`), mode, (repo, { big }) => {
      const path = repo.objectPath(big, 'file');
      if (mode === 'archive') {
        const header = encodeFileHeader(repo.readFileHeader(big));
        writeFileSync(path, zstdCompress(Buffer.concat([header, damaged(CONTENT)])));
      } else {
        // The object file is the content itself: write the damage in place, keeping its xattrs.
        writeFileSync(path, damaged(readFileSync(path)), { flag: 'r+' });
      }
      withStream(repo, big, (stream) => {
        expect(() => stream.verify()).toThrow(expect.objectContaining({ code: 'E_OBJECT_CORRUPT' }));
      });
    }),
  );

  it('refuses an archive object whose frame holds more than its header says', () =>
    withRepo(join(tmp.path, 'long'), 'archive', (repo, { big }) => {
      const header = encodeFileHeader(repo.readFileHeader(big));
      writeFileSync(repo.objectPath(big, 'file'), zstdCompress(Buffer.concat([header, CONTENT, Buffer.from('tail')])));
      withStream(repo, big, (stream) => {
        expect(() => stream.verify()).toThrow(/holds more than the 3145745 content bytes/);
      });
    }));

  it('serves ranges at non-decreasing offsets (overlapping, adjacent, skipping) from one buffer', () =>
    withRepo(join(tmp.path, 'ranges'), 'archive', (repo, { big }) => {
      withStream(repo, big, (stream) => {
        const ranges = new SlidingRange(stream, 1024 * 1024);
        const asked: [number, number][] = [
          [0, 1000],
          [500, 1024 * 1024],
          [500 + 1024 * 1024, 10],
          [2 * 1024 * 1024, 4096],
          [CONTENT.length - 100, 100],
        ];
        for (const [offset, size] of asked)
          expect(ranges.range(offset, size).equals(CONTENT.subarray(offset, offset + size))).toBe(true);
        stream.verify();
      });
    }));
});
