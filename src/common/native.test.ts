// The native addon's batched reads (io_uring): contents land where asked, short at the end of a
// file, errors per file as -errno, and bad arguments refused before anything is submitted.
import {
  constants as fsConstants,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from './native.js';

/** io_uring is expected here unless the kernel turned it off (kernel.io_uring_disabled). */
const URING_SWITCH = '/proc/sys/kernel/io_uring_disabled';
const URING = !existsSync(URING_SWITCH) || readFileSync(URING_SWITCH, 'utf8').trim() === '0';

describe('native.readBatch', () => {
  let dir: string;
  const fds: number[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'arbor-native-'));
  });
  afterEach(() => {
    for (const fd of fds.splice(0)) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Files of the given sizes, opened; content byte k of file i is (i * 7 + k) & 0xff. */
  const files = (sizes: number[]): { fds: Int32Array; contents: Buffer[] } => {
    const contents = sizes.map((size, i) => Buffer.from(Array.from({ length: size }, (_, k) => (i * 7 + k) & 0xff)));
    const opened = contents.map((content, i) => {
      const path = join(dir, `f${i}`);
      writeFileSync(path, content);
      const fd = openSync(path, 'r');
      fds.push(fd);
      return fd;
    });
    return { fds: Int32Array.from(opened), contents };
  };

  it('reads more files than the ring holds into their places, each short by the byte asked beyond its end', () => {
    // 150 files: more than one ring's worth (64 entries), sizes from empty to 20 KiB.
    const sizes = Array.from({ length: 150 }, (_, i) => (i * 137) % 20_000);
    const { fds: fdArray, contents } = files(sizes);
    const offsets = new Int32Array(sizes.length);
    const lengths = new Int32Array(sizes.length);
    let at = 0;
    sizes.forEach((size, i) => {
      offsets[i] = at + 3; // not aligned on purpose
      lengths[i] = size + 1;
      at += size + 8;
    });
    const buffer = Buffer.alloc(at);
    const results = new Int32Array(sizes.length).fill(-1);
    expect(native.readBatch(fdArray, buffer, offsets, lengths, results)).toBe(URING);
    if (!URING) return;
    expect(Array.from(results)).toEqual(sizes);
    contents.forEach((content, i) => {
      const start = offsets[i] as number;
      expect(buffer.subarray(start, start + content.length).equals(content)).toBe(true);
    });
  });

  it('reports a failed read as -errno for that file alone', () => {
    const { fds: good } = files([10, 20]);
    const dirFd = openSync(dir, fsConstants.O_RDONLY);
    fds.push(dirFd);
    const fdArray = Int32Array.from([good[0] as number, dirFd, good[1] as number]);
    const results = new Int32Array(3);
    const buffer = Buffer.alloc(300);
    const ok = native.readBatch(
      fdArray,
      buffer,
      Int32Array.from([0, 100, 200]),
      Int32Array.from([11, 11, 21]),
      results,
    );
    expect(ok).toBe(URING);
    if (!URING) return;
    expect(Array.from(results)).toEqual([10, -constants.errno.EISDIR, 20]);
  });

  it('refuses a read that would leave the buffer, reading nothing', () => {
    const { fds: fdArray } = files([10]);
    const buffer = Buffer.alloc(16, 0xaa);
    const results = new Int32Array(1);
    expect(() => native.readBatch(fdArray, buffer, Int32Array.from([8]), Int32Array.from([11]), results)).toThrow(
      RangeError,
    );
    expect(() => native.readBatch(fdArray, buffer, new Int32Array(0), new Int32Array(0), results)).toThrow(RangeError);
    expect(buffer.equals(Buffer.alloc(16, 0xaa))).toBe(true);
  });

  it('takes an empty batch', () => {
    const empty = new Int32Array(0);
    expect(native.readBatch(empty, Buffer.alloc(0), empty, empty, empty)).toBe(URING);
  });
});
