// The bounded inflater against real zstd frames: honest frames round-trip, and frames that claim or
// produce more than their bound stop early, having handed out no byte past it.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Compressor, compress } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';
import { zstdZeroBomb } from '../../test/support/hostile.js';
import {
  BoundedInflater,
  InflateError,
  frameContentSize,
  inflateWindow,
  zstdCompressBound,
} from './bounded-inflate.js';

const zerosWithoutContentSize = (size: number): Buffer => zstdZeroBomb(size, false);

function collect(inflater: BoundedInflater, frame: Buffer, pieces = 1): { out: Buffer; total: number } {
  const chunks: Buffer[] = [];
  let total = 0;
  const sink = (chunk: Buffer): void => {
    total += chunk.length;
    chunks.push(Buffer.from(chunk));
  };
  const step = Math.ceil(frame.length / pieces);
  for (let at = 0; at < frame.length; at += step) inflater.push(frame.subarray(at, at + step), sink);
  inflater.end(sink);
  return { out: Buffer.concat(chunks), total };
}

describe('zstdCompressBound', () => {
  it.each([0, 1, 100, 128 * 1024 - 1, 128 * 1024, 128 * 1024 + 1, 10_000_000, 4 * 1024 ** 3])(
    'equals ZSTD_compressBound(%i)',
    (n) => {
      expect(zstdCompressBound(n)).toBe(binding.compressBound(n));
    },
  );
});

describe('BoundedInflater', () => {
  const content = randomBytes(300_000);
  const frame = compress(content);

  it.each([1, 7, 1000])('inflates an honest frame fed in %i pieces to its content', (pieces) => {
    // equals(), not toEqual: a deep comparison of 300 KB takes seconds.
    expect(collect(new BoundedInflater(content.length, { exact: true }), frame, pieces).out.equals(content)).toBe(true);
  });

  it('reads the declared content size of a frame', () => {
    expect(frameContentSize(frame)).toBe(content.length);
    expect(frameContentSize(zerosWithoutContentSize(1000))).toBeNull();
  });

  it('refuses a frame declaring 3 GiB before inflating a byte', () => {
    // Built by hand: magic, a descriptor for a single-segment frame with an 8-byte content size, then the size.
    const header = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]), Buffer.alloc(8)]);
    header.writeBigUInt64LE(BigInt(3 * 1024 ** 3), 5);
    expect(frameContentSize(header)).toBe(3 * 1024 ** 3);
    let handed = 0;
    const inflater = new BoundedInflater(1000);
    expect(() => inflater.push(Buffer.concat([header, Buffer.alloc(100)]), (c) => void (handed += c.length))).toThrow(
      /declares 3221225472 bytes, more than the 1000/,
    );
    expect(handed).toBe(0);
  });

  it('stops a frame without a declared size at the first step past its limit', () => {
    const bomb = zerosWithoutContentSize(64 * 1024 * 1024);
    expect(bomb.length).toBeLessThan(64 * 1024);
    const limit = 1000;
    let handed = 0;
    const inflater = new BoundedInflater(limit);
    expect(() => inflater.push(bomb, (c) => void (handed += c.length))).toThrow(InflateError);
    expect(handed).toBeLessThanOrEqual(limit);
    expect(inflater.produced).toBeLessThanOrEqual(limit + 128 * 1024);
  });

  it('refuses a frame that declares less than an exact limit', () => {
    expect(() => collect(new BoundedInflater(content.length + 1, { exact: true }), frame)).toThrow(
      /declares 300000 bytes, not the 300001/,
    );
  });

  it('refuses a frame without a declared size that inflates to less than an exact limit', () => {
    expect(() => collect(new BoundedInflater(5000, { exact: true }), zerosWithoutContentSize(4000))).toThrow(
      /inflates to 4000 bytes, not the 5000/,
    );
  });

  it('refuses a frame cut short', () => {
    expect(() => collect(new BoundedInflater(content.length), frame.subarray(0, frame.length - 10))).toThrow(
      /cut short/,
    );
  });

  it('refuses bytes after the end of the frame', () => {
    expect(() =>
      collect(new BoundedInflater(2 * content.length), Buffer.concat([frame, compress(Buffer.from('x'))])),
    ).toThrow(/after the end/);
  });

  it('refuses bytes that are not zstd', () => {
    expect(() => collect(new BoundedInflater(100), Buffer.from('definitely not a zstd frame'))).toThrow(InflateError);
  });

  it('inflates a frame that uses a raw dictionary', () => {
    const source = randomBytes(50_000);
    const target = Buffer.concat([source.subarray(0, 40_000), Buffer.from('changed')]);
    const c = new Compressor();
    c.loadDictionary(source);
    const patch = c.compress(target);
    const out = Buffer.alloc(target.length);
    inflateWindow(patch, source, out);
    expect(out.equals(target)).toBe(true);
  });
});

describe('inflateWindow', () => {
  const source = randomBytes(50_000);
  const target = Buffer.concat([source.subarray(10_000, 40_000), Buffer.from('changed')]);
  const patchWith = (parameters: { contentSizeFlag?: boolean }): Buffer => {
    const c = new Compressor();
    c.setParameters(parameters);
    c.loadDictionary(source);
    return c.compress(target);
  };

  it.each([
    ['a window one byte short of what the frame declares', target.length - 1, /declares 30007 bytes, not the 30006/],
    ['a window one byte longer than the frame declares', target.length + 1, /declares 30007 bytes, not the 30008/],
  ])('refuses %s before inflating', (_what, size, problem) => {
    expect(() => inflateWindow(patchWith({}), source, Buffer.alloc(size))).toThrow(problem);
  });

  it('refuses a frame that declares no content size: its size could not be checked first', () => {
    const out = Buffer.alloc(target.length);
    expect(() => inflateWindow(patchWith({ contentSizeFlag: false }), source, out)).toThrow(/declares no content size/);
  });

  it('refuses a frame against another dictionary, or cut short', () => {
    const out = Buffer.alloc(target.length);
    const patch = patchWith({});
    expect(() => inflateWindow(patch, Buffer.alloc(0), out)).toThrow(InflateError);
    expect(() => inflateWindow(patch.subarray(0, patch.length - 3), source, out)).toThrow(InflateError);
  });
});
