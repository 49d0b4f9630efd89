// Hashing small files in batches (hashSmallFiles): the same checksums and contents as hashFile,
// file by file, whether io_uring reads them or pread does (ARBOR_IO_URING=0), and files that are
// not the size their header says are refused as changed.
import { constants as fsConstants, closeSync, lstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeFileHeader } from './objects/index.js';

describe.each([
  ['io_uring', undefined],
  ['pread (ARBOR_IO_URING=0)', '0'],
])('hashSmallFiles reading with %s', (_how, setting) => {
  let writer: typeof import('./object-writer.js');
  let dir: string;
  const fds: number[] = [];
  beforeAll(async () => {
    // The switch is read when the module loads: load a fresh copy under it.
    vi.resetModules();
    if (setting === undefined) delete process.env.ARBOR_IO_URING;
    else process.env.ARBOR_IO_URING = setting;
    writer = await import('./object-writer.js');
  });
  afterAll(() => {
    delete process.env.ARBOR_IO_URING;
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'arbor-object-writer-'));
  });
  afterEach(() => {
    for (const fd of fds.splice(0)) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  const open = (name: string, content: Buffer, declared = content.length) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    const fd = openSync(path, 'r');
    fds.push(fd);
    // The header a commit would make of it, but for the size when told to expect another.
    const header = { ...writer.headerFromDisk(path, lstatSync(path), { xattrs: [] }), size: declared };
    return { path, fd, headerBytes: encodeFileHeader(header), size: declared };
  };

  it('gives each file the checksum and content hashFile gives it, across groups', () => {
    // Sizes around the group's 2 MiB, an empty file, and many small ones in between.
    const sizes = [0, 1, 5000, 2 * 1024 * 1024 + 3, ...Array.from({ length: 120 }, (_, i) => (i * 977) % 30_000), 4096];
    const contents = sizes.map((size, i) => Buffer.alloc(size, i & 0xff));
    const files = contents.map((content, i) => open(`f${i}`, content));
    const seen: number[] = [];
    writer.hashSmallFiles(files, (index, hashed) => {
      seen.push(index);
      const file = files[index] as (typeof files)[number];
      if ('error' in hashed) throw hashed.error;
      expect(hashed.content.equals(contents[index] as Buffer)).toBe(true);
      expect(hashed.checksum).toBe(writer.hashFile(file.path, file.headerBytes, file.size).checksum);
    });
    expect(seen).toEqual(sizes.map((_, i) => i));
  });

  it('refuses files longer or shorter than their header says, and reports a failed read, alone', () => {
    const longer = open('longer', Buffer.alloc(100, 1), 99);
    const shorter = open('shorter', Buffer.alloc(100, 2), 101);
    const dirFd = openSync(dir, fsConstants.O_RDONLY);
    fds.push(dirFd);
    const directory = { ...open('placeholder', Buffer.alloc(10)), path: dir, fd: dirFd };
    const fine = open('fine', Buffer.alloc(100, 3));
    const outcome: string[] = [];
    writer.hashSmallFiles([longer, shorter, directory, fine], (_index, hashed) => {
      outcome.push('error' in hashed ? String((hashed.error as { code?: string }).code) : 'ok');
    });
    expect(outcome).toEqual(['E_FILE_CHANGED', 'E_FILE_CHANGED', 'EISDIR', 'ok']);
  });
});
