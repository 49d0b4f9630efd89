// The header codec: round trips of every type, what a strict decoder refuses, and a seeded fuzz
// that may only ever see values or CorruptionErrors (never a RangeError from a Buffer read).
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../../common/errors.js';
import {
  type HeaderField,
  decodeHeader,
  decodeLead,
  encodeHeader,
  headerFields,
  headerLength,
  storedHeaderFields,
} from './header.js';
import { RegionTag, TagType } from './tags.js';

const context = { pkg: 'test.rpm', part: 'header' };

const SAMPLE: HeaderField[] = [
  { tag: 100, data: { type: TagType.StringArray, value: ['C'] } },
  { tag: 1000, data: { type: TagType.String, value: 'arbor' } },
  { tag: 1003, data: { type: TagType.Int32, value: [7] } },
  { tag: 1004, data: { type: TagType.I18nString, value: ['summary'] } },
  { tag: 1029, data: { type: TagType.Char, value: Buffer.from([1, 2]) } },
  { tag: 1030, data: { type: TagType.Int16, value: [0o100644, 0o40755, 0o120777] } },
  { tag: 1031, data: { type: TagType.Int8, value: Buffer.from([9]) } },
  { tag: 1117, data: { type: TagType.StringArray, value: ['a', 'héllo ✓', ''] } },
  { tag: 1146, data: { type: TagType.Bin, value: Buffer.from('00ff10', 'hex') } },
  { tag: 5008, data: { type: TagType.Int64, value: [0, 2 ** 40, Number.MAX_SAFE_INTEGER] } },
];

describe('encodeHeader and decodeHeader', () => {
  it('round-trips every type, with and without a region', () => {
    for (const region of [undefined, RegionTag.Immutable]) {
      const bytes = encodeHeader(SAMPLE, region);
      expect(headerLength(bytes, context)).toBe(bytes.length);
      const header = decodeHeader(bytes, context);
      expect(headerFields(header)).toEqual(SAMPLE);
      expect(header.region).toEqual(
        region === undefined
          ? undefined
          : { tag: region, indexCount: SAMPLE.length + 1, storeBytes: bytes.length - 16 - 16 * (SAMPLE.length + 1) },
      );
      expect(encodeHeader(headerFields(header), region)).toEqual(bytes);
    }
  });

  it('reads typed values through the accessors', () => {
    const header = decodeHeader(encodeHeader(SAMPLE, RegionTag.Immutable), context);
    expect(header.string(1000)).toBe('arbor');
    expect(header.string(1004)).toBe('summary');
    expect(header.number(1003)).toBe(7);
    expect(header.numbers(1030)).toEqual([0o100644, 0o40755, 0o120777]);
    expect(header.strings(1117)).toEqual(['a', 'héllo ✓', '']);
    expect(header.numbers(5008)).toEqual([0, 2 ** 40, Number.MAX_SAFE_INTEGER]);
    expect(header.bin(1146)).toEqual(Buffer.from('00ff10', 'hex'));
    expect(header.string(9999)).toBeUndefined();
    expect(() => header.number(1000)).toThrow(/tag 1000 is of type 6, not an integer/);
    expect(() => header.number(1030)).toThrow(/has 3 values, expected one/);
  });

  const mutate = (change: (b: Buffer) => void) => (): Buffer => {
    const bytes = Buffer.from(encodeHeader(SAMPLE, RegionTag.Immutable));
    change(bytes);
    return bytes;
  };
  const entryAt = (i: number): number => 16 + 16 * i;
  it.each<[string, () => Buffer, RegExp]>([
    ['a bad magic', mutate((b) => (b[0] = 0)), /bad header magic/],
    ['non-zero reserved bytes', mutate((b) => (b[5] = 1)), /reserved bytes/],
    ['an index count of 0', mutate((b) => b.writeUInt32BE(0, 8)), /index count 0/],
    ['an index count beyond the bytes', mutate((b) => b.writeUInt32BE(500, 8)), /truncated/],
    ['a huge store size', mutate((b) => b.writeUInt32BE(0xffffffff, 12)), /store size/],
    ['an unknown type', mutate((b) => b.writeUInt32BE(10, entryAt(2) + 4)), /unknown type 10/],
    ['an offset beyond the store', mutate((b) => b.writeInt32BE(100000, entryAt(2) + 8)), /outside/],
    ['a negative offset', mutate((b) => b.writeInt32BE(-4, entryAt(2) + 8)), /outside/],
    [
      'a misaligned INT32',
      mutate((b) => b.writeInt32BE(b.readInt32BE(entryAt(3) + 8) + 1, entryAt(3) + 8)),
      /aligned|overlap/,
    ],
    ['a count that overflows the store', mutate((b) => b.writeUInt32BE(0x40000000, entryAt(3) + 12)), /do not fit/],
    ['a string count other than 1', mutate((b) => b.writeUInt32BE(2, entryAt(2) + 12)), /string entry has count 2/],
    [
      'a string array running off the store',
      mutate((b) => b.writeUInt32BE(1000, entryAt(8) + 12)),
      /do not fit|runs past/,
    ],
    [
      'two entries sharing data',
      mutate((b) => b.writeInt32BE(b.readInt32BE(entryAt(2) + 8), entryAt(4) + 8)),
      /overlap/,
    ],
    ['a duplicated tag', mutate((b) => b.writeUInt32BE(1000, entryAt(3))), /appears twice/],
    [
      'a region trailer naming another tag',
      mutate((b) => b.writeUInt32BE(62, b.length - 16)),
      /does not repeat region tag 63/,
    ],
    [
      'a region trailer claiming too many entries',
      mutate((b) => b.writeInt32BE(-16 * 100, b.length - 8)),
      /region trailer claims/,
    ],
    [
      'a region tag after the first entry',
      mutate((b) => b.writeUInt32BE(62, entryAt(1))),
      /region tag 62 is not the first/,
    ],
  ])('refuses %s with a CorruptionError', (_label, make, message) => {
    const bytes = make();
    const run = (): unknown =>
      decodeHeader(bytes.subarray(0, Math.min(bytes.length, headerLengthOrAll(bytes))), context);
    expect(run).toThrow(CorruptionError);
    expect(run).toThrow(message);
  });

  it('refuses a truncated header, naming the package', () => {
    const bytes = encodeHeader(SAMPLE, RegionTag.Immutable);
    expect(() => decodeHeader(bytes.subarray(0, bytes.length - 1), context)).toThrow(
      /package 'test\.rpm': header: truncated/,
    );
    expect(() => decodeHeader(bytes.subarray(0, 10), context)).toThrow(/truncated: 10 of 16 preamble bytes/);
  });
});

function headerLengthOrAll(bytes: Buffer): number {
  try {
    return headerLength(bytes, context);
  } catch {
    return bytes.length; // let decodeHeader report the preamble problem itself
  }
}

describe('decodeLead', () => {
  const lead = (): Buffer => {
    const b = Buffer.alloc(96);
    b.writeUInt32BE(0xedabeedb, 0);
    b[4] = 3;
    b.write('arbor-1.0-1', 10, 'latin1');
    b.writeUInt16BE(1, 76);
    b.writeUInt16BE(5, 78);
    return b;
  };
  it('reads the name and versions', () => {
    expect(decodeLead(lead(), 'x.rpm')).toMatchObject({ major: 3, minor: 0, name: 'arbor-1.0-1', osNum: 1 });
  });
  it.each<[string, (b: Buffer) => void, RegExp]>([
    ['a bad magic', (b) => (b[1] = 0), /not an RPM package/],
    ['format version 2', (b) => (b[4] = 2), /unsupported package format version 2/],
    ['an old signature type', (b) => b.writeUInt16BE(1, 78), /unsupported signature type 1/],
    ['a name without NUL', (b) => b.fill(0x41, 10, 76), /not NUL-terminated/],
  ])('refuses %s', (_label, change, message) => {
    const b = lead();
    change(b);
    expect(() => decodeLead(b, 'x.rpm')).toThrow(message);
  });
});

const field: fc.Arbitrary<HeaderField> = fc.oneof(
  fc.record({
    tag: fc.integer({ min: 100, max: 20000 }),
    data: fc.record({ type: fc.constant(TagType.String), value: fc.string().filter((s) => !s.includes('\0')) }),
  }),
  fc.record({
    tag: fc.integer({ min: 100, max: 20000 }),
    data: fc.record({
      type: fc.constantFrom(TagType.StringArray, TagType.I18nString),
      value: fc.array(
        fc.string().filter((s) => !s.includes('\0')),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  }),
  fc.record({
    tag: fc.integer({ min: 100, max: 20000 }),
    data: fc.record({
      type: fc.constant(TagType.Int16),
      value: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 4 }),
    }),
  }),
  fc.record({
    tag: fc.integer({ min: 100, max: 20000 }),
    data: fc.record({ type: fc.constant(TagType.Int32), value: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) }),
  }),
  fc.record({
    tag: fc.integer({ min: 100, max: 20000 }),
    data: fc.record({
      type: fc.constant(TagType.Int64),
      value: fc.array(fc.maxSafeNat(), { minLength: 1, maxLength: 3 }),
    }),
  }),
  fc.record({
    tag: fc.integer({ min: 100, max: 20000 }),
    data: fc.record({
      type: fc.constantFrom(TagType.Bin, TagType.Char, TagType.Int8),
      value: fc.uint8Array({ minLength: 1, maxLength: 9 }).map((a) => Buffer.from(a)),
    }),
  }),
) as fc.Arbitrary<HeaderField>;
const fields = fc.uniqueArray(field, { selector: (f) => f.tag, minLength: 1, maxLength: 12 });
const sortedByTag = (list: HeaderField[]): HeaderField[] => [...list].sort((a, b) => a.tag - b.tag);

test.prop([fields, fc.boolean()])(
  'decoding an encoded header gives its fields back and re-encodes to the same bytes',
  (list, withRegion) => {
    const region = withRegion ? RegionTag.Immutable : undefined;
    const bytes = encodeHeader(list, region);
    const header = decodeHeader(bytes, context);
    expect(headerFields(header)).toEqual(sortedByTag(list));
    expect(encodeHeader(headerFields(header), region)).toEqual(bytes);
    expect(encodeHeader(storedHeaderFields(header), region)).toEqual(bytes);
  },
);

it('copies stored values as they are, where decoding and encoding again would not give the same bytes', () => {
  // A string that is not UTF-8: decoding replaces the byte, so only the stored bytes keep it.
  const bytes = encodeHeader([{ tag: 1000, data: { type: TagType.String, value: 'x' } }], RegionTag.Immutable);
  const at = bytes.indexOf(Buffer.from('x\0'));
  bytes[at] = 0xff;
  const header = decodeHeader(bytes, context);
  expect(encodeHeader(headerFields(header), RegionTag.Immutable)).not.toEqual(bytes);
  expect(encodeHeader(storedHeaderFields(header), RegionTag.Immutable)).toEqual(bytes);
});

test.prop(
  [
    fields,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
    fc.option(fc.nat(), { nil: undefined }),
  ],
  { numRuns: 3000, seed: 0x5eed },
)('a mutated or truncated header decodes or fails with a CorruptionError, never anything else', (list, edits, cut) => {
  const bytes = Buffer.from(encodeHeader(list, RegionTag.Immutable));
  for (const [at, value] of edits) bytes[at % bytes.length] = value;
  const input = cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
  try {
    const header = decodeHeader(input, context);
    for (const tag of header.tags) header.entry(tag);
  } catch (error) {
    expect(error).toBeInstanceOf(CorruptionError);
  }
});
