// compareUtf8 against the byte order it promises, and the bounds checks of ByteWriter/ByteReader.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, compareUtf8 } from './bytes.js';
import { CorruptionError } from './errors.js';

const utf8Compare = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

// Code points on both sides of every UTF-8 length boundary and of the surrogate range, where
// UTF-16 unit order (JS `<`) and UTF-8 byte order disagree.
const edgeUnit = fc.constantFrom(
  '\0',
  'a',
  '\u007f',
  '\u0080',
  '\u07ff',
  '\u0800',
  '\ud7ff',
  '\ue000',
  '\uff61',
  '\uffff',
  '\u{10000}',
  '\u{1F600}',
  '\u{10FFFF}',
);
const anyUnit = fc.oneof(edgeUnit, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
const fullUnicode = fc.string({ unit: anyUnit, maxLength: 6 });

describe('compareUtf8', () => {
  test.prop([fullUnicode, fullUnicode])('has the sign of Buffer.compare of the UTF-8 encodings', (a, b) => {
    expect(Math.sign(compareUtf8(a, b))).toBe(utf8Compare(a, b));
  });
  test.prop([fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' })])(
    'agrees with Buffer.compare on arbitrary full-Unicode strings',
    (a, b) => {
      expect(Math.sign(compareUtf8(a, b))).toBe(utf8Compare(a, b));
    },
  );
  test.prop([fullUnicode, fullUnicode, fullUnicode])('is antisymmetric and extends to a common prefix', (a, b, p) => {
    expect(Math.sign(compareUtf8(a, b)) + Math.sign(compareUtf8(b, a))).toBe(0);
    expect(Math.sign(compareUtf8(p + a, p + b))).toBe(Math.sign(compareUtf8(a, b)));
  });
  it.each<[string, string, string]>([
    ['U+FF61 before U+1F600 (UTF-16 puts the surrogate 0xD83D first)', '\uff61', '\u{1F600}'],
    ['U+E000 before U+10000', '\ue000', '\u{10000}'],
    ['U+FFFF before U+10000', '\uffff', '\u{10000}'],
    ['a prefix before its extension', 'lib', 'lib.so'],
    ['the empty string before anything', '', '\0'],
    ['ASCII before two-byte sequences', 'z', '\u00e9'],
    ['a lower high surrogate first', '\u{1F600}', '\u{1F900}'],
    ['a lower low surrogate first', '\u{1F600}', '\u{1F601}'],
  ])('orders %s', (_, lower, higher) => {
    expect(compareUtf8(lower, higher)).toBeLessThan(0);
    expect(compareUtf8(higher, lower)).toBeGreaterThan(0);
    expect(utf8Compare(lower, higher)).toBe(-1);
  });
  it('returns 0 only for equal strings', () => {
    expect(compareUtf8('\u{1F600}x', '\u{1F600}x')).toBe(0);
  });
});

describe('ByteWriter', () => {
  it('writes big-endian integers and length-prefixed strings', () => {
    const bytes = new ByteWriter(1)
      .u8(0xab)
      .u32(0x01020304)
      .u64(2 ** 53 - 1)
      .i64(-2)
      .string('é')
      .finish();
    expect(bytes.toString('hex')).toBe('ab' + '01020304' + '001fffffffffffff' + 'fffffffffffffffe' + '00000002c3a9');
  });
  it.each([
    ['a lone high surrogate', 'a\ud800'],
    ['a lone low surrogate', '\udc00b'],
    ['a reversed pair', '\ude00\ud83d'],
  ])('refuses a string with %s, which UTF-8 cannot represent', (_, text) => {
    expect(() => new ByteWriter().string(text)).toThrow(RangeError);
  });
  it('accepts surrogate pairs', () => {
    expect(new ByteWriter().string('\u{1F600}').finish().toString('hex')).toBe('00000004f09f9880');
  });
  it.each([
    ['u64', (w: ByteWriter) => w.u64(-1)],
    ['u64', (w: ByteWriter) => w.u64(2 ** 53)],
    ['i64', (w: ByteWriter) => w.i64(0.5)],
  ])('refuses a %s it could not read back', (_, write) => {
    expect(() => write(new ByteWriter())).toThrow(RangeError);
  });
});

describe('ByteReader', () => {
  const reject = (fn: () => unknown): void => {
    expect(fn).toThrow(CorruptionError);
    expect(fn).toThrow(/^thing: /);
  };
  it('rejects a length larger than the bytes left before reading them', () => {
    reject(() => new ByteReader(Buffer.of(0, 0, 0, 5, 1, 2), 'thing').bytes());
  });
  it('rejects a count whose items cannot fit', () => {
    reject(() => new ByteReader(Buffer.of(0, 0, 0, 2, 1, 2, 3), 'thing').count(4));
  });
  it('rejects trailing bytes at the end', () => {
    const input = new ByteReader(Buffer.of(1, 2), 'thing');
    input.u8();
    reject(() => input.end());
  });
  it('rejects invalid UTF-8 in a string', () => {
    reject(() => new ByteReader(Buffer.of(0, 0, 0, 1, 0x80), 'thing').string());
  });
  it('keeps a leading byte order mark in a string', () => {
    expect(new ByteReader(Buffer.of(0, 0, 0, 3, 0xef, 0xbb, 0xbf), 'thing').string()).toBe('\ufeff');
  });
  it('rejects 64-bit values outside the safe integer range', () => {
    reject(() => new ByteReader(Buffer.alloc(8, 0xff), 'thing').u64());
    reject(() => new ByteReader(Buffer.of(0x80, 0, 0, 0, 0, 0, 0, 0), 'thing').i64());
  });
});
