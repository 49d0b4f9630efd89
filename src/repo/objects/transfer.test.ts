// The transfer codecs (summary, static-delta superblock, delta part operations) against their golden
// vectors, tables of malformed input each decoder must reject, and round-trip properties.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { Decompressor, decompress as zstdDecompress } from 'zstd-napi';
import {
  type GoldenCodec,
  type GoldenVector,
  UPDATE_GOLDEN,
  describeGoldenVectors,
  expectMalformed,
  listGolden,
  readGolden,
  readGoldenWith,
  valueFromJson,
  valueToJson,
} from '../../../test/support/golden.js';
import { ByteWriter } from '../../common/bytes.js';
import { type Checksum, bytesToChecksum, checksumToBytes, hashBytes, isChecksum } from '../../common/hash.js';
import {
  DELTA_FORMAT_VERSION,
  type DeltaOp,
  type DeltaPartInfo,
  type FileHeader,
  type Metadata,
  type MetadataValue,
  S_IFREG,
  type Summary,
  type SummaryDelta,
  type SummaryRef,
  type Superblock,
  DeltaPartWriter,
  decodeCommit,
  decodeSummary,
  decodeSuperblock,
  encodeFileHeader,
  encodeSummary,
  encodeSuperblock,
  MAX_PATCH_SOURCE_BYTES,
  MAX_PATCH_WINDOW_BYTES,
  readDeltaPart,
} from './index.js';
import { TRANSFER_TAG } from './transfer.js';

// ---------------------------------------------------------------------------------------------
// Golden vectors: fixtures/golden/{summary,superblock,delta-part}/<case>.{json,bin}, in the scheme of
// test/support/golden.ts (metadata maps and file headers use its JSON forms).

interface TransferValues {
  summary: Summary;
  superblock: Superblock;
  /** A part body before compression: its operations in stream order. */
  'delta-part': { ops: DeltaOp[] };
}
type TransferFormat = keyof TransferValues;
const TRANSFER_FORMATS: readonly TransferFormat[] = ['summary', 'superblock', 'delta-part'];

interface Codec<T> {
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
}

function encodeDeltaPart(ops: readonly DeltaOp[]): Buffer {
  const writer = new DeltaPartWriter();
  for (const op of ops) writer.add(op);
  return Buffer.from(writer.finish());
}

const CODECS: { [F in TransferFormat]: Codec<TransferValues[F]> } = {
  summary: { encode: encodeSummary, decode: (b) => decodeSummary(b) },
  superblock: { encode: encodeSuperblock, decode: (b) => decodeSuperblock(b) },
  'delta-part': { encode: ({ ops }) => encodeDeltaPart(ops), decode: (b) => ({ ops: [...readDeltaPart(b)] }) },
};
const codecOf = (format: TransferFormat): Codec<unknown> => CODECS[format] as Codec<unknown>;

type Json = Record<string, unknown>;
const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));
const unhex = (s: unknown): Buffer => Buffer.from(s as string, 'hex');
const sum = (s: unknown): Checksum => {
  if (typeof s !== 'string' || !isChecksum(s)) throw new TypeError(`golden: '${String(s)}' is not a checksum`);
  return s;
};
const metadataToJson = (m: Metadata): unknown => valueToJson('commitmeta', new Map(m));
const metadataFromJson = (json: unknown): Map<string, MetadataValue> => valueFromJson('commitmeta', json);
const headerFromJson = (json: unknown): FileHeader => valueFromJson('file-header', json);

function transferToJson(format: TransferFormat, value: unknown): unknown {
  switch (format) {
    case 'summary': {
      const s = value as Summary;
      return { timestamp: s.timestamp, refs: s.refs, deltas: s.deltas, metadata: metadataToJson(s.metadata) };
    }
    case 'superblock': {
      const sb = value as Superblock;
      return {
        from: sb.from,
        to: sb.to,
        commit: hex(sb.commit),
        commitMeta: hex(sb.commitMeta),
        parts: sb.parts.map((p) => ({ ...p, inline: hex(p.inline) })),
        metadata: metadataToJson(sb.metadata),
      };
    }
    case 'delta-part':
      return {
        ops: (value as TransferValues['delta-part']).ops.map((op) => {
          if (op.op === 'meta') return { op: op.op, kind: op.kind, bytes: hex(op.bytes) };
          const common = { op: op.op, checksum: op.checksum, header: valueToJson('file-header', op.header) };
          if (op.op === 'new') return { ...common, content: hex(op.content) };
          if (op.op === 'copy') return { ...common, source: op.source };
          const windows = op.windows.map((w) => ({ ...w, frame: hex(w.frame) }));
          return { ...common, source: op.source, windows };
        }),
      };
  }
}

function transferFromJson<F extends TransferFormat>(format: F, json: Json): TransferValues[F] {
  const value = ((): TransferValues[TransferFormat] => {
    switch (format) {
      case 'summary':
        return {
          timestamp: json.timestamp as number,
          refs: (json.refs as Json[]).map((r) => ({
            name: r.name as string,
            checksum: sum(r.checksum),
            timestamp: r.timestamp as number,
            version: r.version as string,
          })),
          deltas: (json.deltas as Json[]).map((d) => ({
            from: d.from === null ? null : sum(d.from),
            to: sum(d.to),
            superblock: sum(d.superblock),
            size: d.size as number,
          })),
          metadata: metadataFromJson(json.metadata),
        };
      case 'superblock':
        return {
          from: json.from === null ? null : sum(json.from),
          to: sum(json.to),
          commit: unhex(json.commit),
          commitMeta: json.commitMeta === null ? null : unhex(json.commitMeta),
          parts: (json.parts as Json[]).map((p) => ({
            checksum: sum(p.checksum),
            size: p.size as number,
            uncompressedSize: p.uncompressedSize as number,
            objects: p.objects as number,
            inline: p.inline === null ? null : unhex(p.inline),
          })),
          metadata: metadataFromJson(json.metadata),
        };
      case 'delta-part':
        return {
          ops: (json.ops as Json[]).map((o): DeltaOp => {
            if (o.op === 'meta') return { op: 'meta', kind: o.kind as 'dirtree' | 'dirmeta', bytes: unhex(o.bytes) };
            const checksum = sum(o.checksum);
            const header = headerFromJson(o.header);
            if (o.op === 'new') return { op: 'new', checksum, header, content: unhex(o.content) };
            if (o.op === 'copy') return { op: 'copy', checksum, header, source: sum(o.source) };
            if (o.op === 'patch') {
              const windows = (o.windows as Json[]).map((w) => ({
                sourceOffset: w.sourceOffset as number,
                sourceSize: w.sourceSize as number,
                outputSize: w.outputSize as number,
                frame: unhex(w.frame),
              }));
              return { op: 'patch', checksum, header, source: sum(o.source), windows };
            }
            throw new TypeError(`golden: unknown op '${String(o.op)}'`);
          }),
        };
    }
  })();
  return value as TransferValues[F];
}

/** A transfer-format vector, its value read from its JSON form. */
const readTransferGolden = <F extends TransferFormat>(format: F, name: string): GoldenVector<TransferValues[F]> =>
  readGoldenWith(format, name, (json) => transferFromJson(format, json as Json));

const revMap = <K, V>(m: ReadonlyMap<K, V>): Map<K, V> => new Map([...m].reverse());

// The same value with every list and map that the encoder sorts given in reverse order.
function reversed(format: TransferFormat, value: unknown): unknown {
  if (format === 'summary') {
    const s = value as Summary;
    return { ...s, refs: [...s.refs].reverse(), deltas: [...s.deltas].reverse(), metadata: revMap(s.metadata) };
  }
  if (format === 'superblock') return { ...(value as Superblock), metadata: revMap((value as Superblock).metadata) };
  return value; // operations are a stream: their order is the part's
}

describeGoldenVectors(
  TRANSFER_FORMATS,
  (format): GoldenCodec<unknown> => ({
    ...codecOf(format),
    reversed: (value) => reversed(format, value),
    // A part is a stream of operations: a prefix ending between two of them is a valid part.
    rejectsPrefixes: format !== 'delta-part',
  }),
  { fromJson: (format, json) => transferFromJson(format, json as Json), toJson: transferToJson },
);

describe.skipIf(UPDATE_GOLDEN)('golden delta-part/all-ops', () => {
  const part = (): GoldenVector<TransferValues['delta-part']> => readTransferGolden('delta-part', 'all-ops');

  // An op stream has no count or terminator: its length comes from the superblock's
  // uncompressedSize, which applyDelta checks before reading an op. A prefix that stops between
  // two ops is therefore well-formed on its own; every other prefix must be rejected.
  it('rejects every strict prefix except those ending between operations, which yield the operations before', () => {
    const { bytes, value } = part();
    const boundaries = new Map<number, number>([[2, 0]]);
    const writer = new DeltaPartWriter();
    value.ops.forEach((op, i) => {
      writer.add(op);
      boundaries.set(writer.length, i + 1);
    });
    for (let n = 0; n < bytes.length; n++) {
      const before = boundaries.get(n);
      if (before === undefined) expectMalformed(() => [...readDeltaPart(bytes.subarray(0, n))]);
      else expect([...readDeltaPart(bytes.subarray(0, n))]).toEqual(value.ops.slice(0, before));
    }
    expect([...boundaries.keys()].at(-1)).toBe(bytes.length);
  });

  it('holds one operation of each kind, each rebuilding the object it names', () => {
    const ops = part().value.ops;
    expect(ops.map((o) => o.op)).toEqual(['meta', 'new', 'copy', 'patch']);
    const hello = readGolden('file', 'hello');
    const source = readGolden('file', 'patch-source');
    for (const op of ops) {
      if (op.op === 'meta') expect(hashBytes(op.bytes)).toBe(readGolden('dirtree', 'small').checksum);
      else if (op.op === 'new') expect(hashBytes(encodeFileHeader(op.header), op.content)).toBe(op.checksum);
      else if (op.op === 'copy') {
        expect(op.source).toBe(hello.checksum);
        expect(hashBytes(encodeFileHeader(op.header), hello.value.content)).toBe(op.checksum);
      } else {
        expect(op.source).toBe(source.checksum);
        const content = op.windows.map((w) => {
          const d = new Decompressor();
          d.loadDictionary(source.value.content.subarray(w.sourceOffset, w.sourceOffset + w.sourceSize));
          const window = d.decompress(w.frame);
          expect(window.length).toBe(w.outputSize);
          // The patch really refers to its source: without the dictionary it does not decode.
          expect(() => zstdDecompress(w.frame)).toThrow();
          return window;
        });
        expect(hashBytes(encodeFileHeader(op.header), ...content)).toBe(op.checksum);
      }
    }
  });
});

// The transfer vectors and the object vectors form one tiny served repository.
describe.skipIf(UPDATE_GOLDEN)('golden vectors agree with each other', () => {
  const summary = (): GoldenVector<TransferValues['summary']> => readTransferGolden('summary', 'two-refs-two-deltas');
  const superblocks = (): GoldenVector<TransferValues['superblock']>[] =>
    listGolden('superblock').map((n) => readTransferGolden('superblock', n));

  it('the summary lists each superblock vector by its checksum and download size', () => {
    const listed = summary().value.deltas;
    expect(listed).toHaveLength(2);
    for (const sb of superblocks()) {
      const delta = listed.find((d) => d.superblock === sb.checksum);
      const parts = sb.value.parts.reduce((n, p) => n + (p.inline ? 0 : p.size), 0);
      expect(delta).toEqual({
        from: sb.value.from,
        to: sb.value.to,
        superblock: sb.checksum,
        size: sb.bytes.length + parts,
      });
    }
  });
  it('each superblock carries the commit it goes to, and its parts are the delta-part vector compressed', () => {
    const body = readTransferGolden('delta-part', 'all-ops').bytes;
    for (const sb of superblocks()) {
      expect(hashBytes(sb.value.commit)).toBe(sb.value.to);
      const parent = decodeCommit(sb.value.commit).parent;
      if (sb.value.from !== null) expect(parent).toBe(sb.value.from);
      for (const p of sb.value.parts) {
        expect(p).toMatchObject({ uncompressedSize: body.length, objects: 4 });
        if (p.inline) {
          expect(hashBytes(p.inline)).toBe(p.checksum);
          expect(zstdDecompress(p.inline)).toEqual(body);
        }
      }
    }
  });
  it('the refs point at the commit vectors with their timestamps and versions', () => {
    const noParent = readGolden('commit', 'no-parent');
    const withParent = readGolden('commit', 'with-parent');
    expect(summary().value.refs).toEqual([
      {
        name: 'os/main',
        checksum: withParent.checksum,
        timestamp: withParent.value.timestamp,
        version: '39.20231116.0',
      },
      { name: 'os/stable', checksum: noParent.checksum, timestamp: noParent.value.timestamp, version: '' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Raw builders: fields in format order, no validation, to forge malformed input.

const S = (byte: number): Checksum => bytesToChecksum(Buffer.alloc(32, byte));
const emptyMetadata = Buffer.of(0, 0, 0, 0);

interface RawSummary {
  tag?: number;
  version?: number;
  refs?: { name: string; checksum?: Checksum }[];
  refCount?: number;
  deltas?: { fromFlag?: number; from?: Checksum; to: Checksum }[];
}
function summaryBytes(raw: RawSummary): Buffer {
  const out = new ByteWriter()
    .u8(raw.tag ?? TRANSFER_TAG.summary)
    .u8(raw.version ?? 1)
    .u64(1700000000);
  const refs = raw.refs ?? [];
  out.u32(raw.refCount ?? refs.length);
  for (const r of refs)
    out
      .string(r.name)
      .raw(checksumToBytes(r.checksum ?? S(1)))
      .u64(1)
      .string('');
  const deltas = raw.deltas ?? [];
  out.u32(deltas.length);
  for (const d of deltas) {
    const flag = d.fromFlag ?? (d.from ? 1 : 0);
    out.u8(flag);
    if (d.from) out.raw(checksumToBytes(d.from));
    out
      .raw(checksumToBytes(d.to))
      .raw(checksumToBytes(S(9)))
      .u64(100);
  }
  return Buffer.concat([out.finish(), emptyMetadata]);
}

interface RawPart {
  size: number;
  inlineFlag?: number;
  inline?: Buffer;
}
interface RawSuperblock {
  tag?: number;
  version?: number;
  fromFlag?: number;
  commitMetaFlag?: number;
  parts?: RawPart[];
  partCount?: number;
}
function superblockBytes(raw: RawSuperblock): Buffer {
  const out = new ByteWriter().u8(raw.tag ?? TRANSFER_TAG.superblock).u8(raw.version ?? DELTA_FORMAT_VERSION);
  const fromFlag = raw.fromFlag ?? 1;
  out.u8(fromFlag);
  if (fromFlag === 1) out.raw(checksumToBytes(S(1)));
  out.raw(checksumToBytes(S(2))).bytes(Buffer.from('commit'));
  const metaFlag = raw.commitMetaFlag ?? 0;
  out.u8(metaFlag);
  if (metaFlag === 1) out.bytes(Buffer.of(5, 1, 0, 0, 0, 0));
  const parts = raw.parts ?? [];
  out.u32(raw.partCount ?? parts.length);
  for (const p of parts) {
    out
      .raw(checksumToBytes(S(3)))
      .u64(p.size)
      .u64(10)
      .u32(1);
    const flag = p.inlineFlag ?? (p.inline ? 1 : 0);
    out.u8(flag);
    if (p.inline) out.bytes(p.inline);
  }
  return Buffer.concat([out.finish(), emptyMetadata]);
}

const REG: FileHeader = {
  uid: 0,
  gid: 0,
  mode: S_IFREG | 0o644,
  rdevMajor: 0,
  rdevMinor: 0,
  symlinkTarget: '',
  xattrs: [],
  size: 3,
};
/** A part body: tag, version, then each op's raw bytes. */
const partBytes = (...ops: Buffer[]): Buffer =>
  Buffer.concat([Buffer.of(TRANSFER_TAG.part, DELTA_FORMAT_VERSION), ...ops]);
const newOpBytes = (contentLength: number, content: Buffer, header = REG): Buffer =>
  new ByteWriter()
    .u8(2)
    .raw(checksumToBytes(S(4)))
    .raw(encodeFileHeader(header))
    .u64(contentLength)
    .raw(content)
    .finish();

describe('raw builders', () => {
  it('build input the decoders accept when given no defect', () => {
    expect(
      decodeSummary(
        summaryBytes({
          refs: [{ name: 'a' }, { name: 'b' }],
          deltas: [{ to: S(1) }, { from: S(1), to: S(1) }, { to: S(2) }],
        }),
      ).deltas,
    ).toHaveLength(3);
    expect(
      decodeSuperblock(
        superblockBytes({ commitMetaFlag: 1, parts: [{ size: 2, inline: Buffer.of(1, 2) }, { size: 5 }] }),
      ).parts,
    ).toHaveLength(2);
    expect([...readDeltaPart(partBytes(newOpBytes(3, Buffer.from('abc'))))]).toHaveLength(1);
  });
});

describe('decodeSummary rejects', () => {
  it.each<[string, RawSummary]>([
    ['a superblock tag', { tag: TRANSFER_TAG.superblock }],
    ['a commit kind tag', { tag: 4 }],
    ['an unknown version byte', { version: 2 }],
    ['unsorted refs', { refs: [{ name: 'os/b' }, { name: 'os/a' }] }],
    ['a duplicate ref', { refs: [{ name: 'os/a' }, { name: 'os/a', checksum: S(2) }] }],
    ['refs in UTF-16 order instead of UTF-8 order', { refs: [{ name: '\u{1F600}' }, { name: '\uFF61' }] }],
    ['a ref count larger than what remains', { refs: [{ name: 'a' }], refCount: 0xffff }],
    ['deltas unsorted by target', { deltas: [{ to: S(2) }, { to: S(1) }] }],
    [
      'deltas to one target unsorted by source',
      {
        deltas: [
          { from: S(2), to: S(1) },
          { from: S(1), to: S(1) },
        ],
      },
    ],
    ['a delta from scratch after one from a commit', { deltas: [{ from: S(1), to: S(1) }, { to: S(1) }] }],
    ['a duplicate delta from scratch', { deltas: [{ to: S(1) }, { to: S(1) }] }],
    [
      'a duplicate delta from a commit',
      {
        deltas: [
          { from: S(3), to: S(1) },
          { from: S(3), to: S(1) },
        ],
      },
    ],
    ['a has-from flag of 2', { deltas: [{ fromFlag: 2, from: S(1), to: S(1) }] }],
  ])('%s', (_, raw) => {
    expectMalformed(() => decodeSummary(summaryBytes(raw)));
  });
});

describe('decodeSuperblock rejects', () => {
  it.each<[string, RawSuperblock]>([
    ['a summary tag', { tag: TRANSFER_TAG.summary }],
    ['format version 1 (whole-file patches)', { version: 1 }],
    ['an unknown version byte', { version: DELTA_FORMAT_VERSION + 1 }],
    ['a has-from flag of 2', { fromFlag: 2 }],
    ['a has-commitmeta flag of 2', { commitMetaFlag: 2 }],
    ['an inline flag of 2', { parts: [{ size: 0, inlineFlag: 2 }] }],
    ['an inline part shorter than its size', { parts: [{ size: 3, inline: Buffer.of(1, 2) }] }],
    ['an inline part longer than its size', { parts: [{ size: 1, inline: Buffer.of(1, 2) }] }],
    ['a part count larger than what remains', { parts: [{ size: 1 }], partCount: 1000 }],
  ])('%s', (_, raw) => {
    expectMalformed(() => decodeSuperblock(superblockBytes(raw)));
  });
});

describe('readDeltaPart rejects', () => {
  const opTail = (tag: number): Buffer =>
    new ByteWriter()
      .u8(tag)
      .raw(checksumToBytes(S(4)))
      .raw(encodeFileHeader(REG))
      .raw(checksumToBytes(S(5)))
      .finish();
  /** A patch op on REG (3 bytes) with windows [source offset, source size, output size, frame?]. */
  const patchBytes = (...windows: [number, number, number, Buffer?][]): Buffer => {
    const out = new ByteWriter().raw(opTail(4)).u32(windows.length);
    for (const [offset, size, output, frame] of windows)
      out
        .u64(offset)
        .u32(size)
        .u32(output)
        .bytes(frame ?? Buffer.of(0));
    return partBytes(out.finish());
  };
  it.each<[string, Buffer]>([
    ['a summary tag', Buffer.of(TRANSFER_TAG.summary, 1)],
    ['format version 1 (whole-file patches)', Buffer.of(TRANSFER_TAG.part, 1)],
    ['an unknown version byte', Buffer.of(TRANSFER_TAG.part, DELTA_FORMAT_VERSION + 1)],
    ['an unknown operation tag 0', partBytes(opTail(0))],
    ['an unknown operation tag 5', partBytes(opTail(5))],
    ['an unknown operation tag 0xff', partBytes(Buffer.of(0xff))],
    ['a meta operation of kind file (1)', partBytes(Buffer.of(1, 1, 0, 0, 0, 0))],
    ['a meta operation of kind commit (4)', partBytes(Buffer.of(1, 4, 0, 0, 0, 0))],
    ['new content shorter than the header size', partBytes(newOpBytes(2, Buffer.from('ab')))],
    ['new content longer than the header size', partBytes(newOpBytes(4, Buffer.from('abcd')))],
    ['new content whose length field exceeds the bytes left', partBytes(newOpBytes(3, Buffer.from('ab')))],
    [
      'a header that is not a file header (dirmeta kind)',
      partBytes(Buffer.concat([Buffer.of(3), checksumToBytes(S(4)), Buffer.of(3, 1), Buffer.alloc(40)])),
    ],
    [
      'a patch window frame beyond the bytes left',
      partBytes(opTail(4), new ByteWriter().u32(1).u64(0).u32(3).u32(3).u32(256).u8(0x28).finish()),
    ],
    ['a patch with no windows', patchBytes()],
    ['a patch window count larger than what remains', partBytes(opTail(4), Buffer.of(0, 0, 1, 0))],
    ['a patch window rebuilding nothing', patchBytes([0, 3, 0], [0, 3, 3])],
    ['patch windows rebuilding less than the header says', patchBytes([0, 3, 2])],
    ['patch windows rebuilding more than the header says', patchBytes([0, 3, 2], [0, 3, 2])],
    ['a patch window larger than clients hold', patchBytes([0, 3, MAX_PATCH_WINDOW_BYTES + 1])],
    ['a patch window reading more source than clients hold', patchBytes([0, MAX_PATCH_SOURCE_BYTES + 1, 3])],
  ])('%s', (_, bytes) => {
    expectMalformed(() => [...readDeltaPart(bytes)]);
  });
});

describe('encoders refuse values they could not write', () => {
  const base: Superblock = {
    from: null,
    to: S(1),
    commit: Buffer.of(1),
    commitMeta: null,
    parts: [],
    metadata: new Map(),
  };
  const part: DeltaPartInfo = { checksum: S(2), size: 3, uncompressedSize: 9, objects: 1, inline: Buffer.of(1, 2) };
  it('an inline part whose length is not its size', () => {
    expect(() => encodeSuperblock({ ...base, parts: [part] })).toThrow(RangeError);
  });
  it('a ref name with a lone surrogate', () => {
    expect(() =>
      encodeSummary({
        timestamp: 0,
        refs: [{ name: '\uD800', checksum: S(1), timestamp: 0, version: '' }],
        deltas: [],
        metadata: new Map(),
      }),
    ).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties.

const unit = fc.oneof(
  fc.constantFrom('a', 'Z', '/', '-', '.', '\u00e9', '\uff61', '\u{1F600}'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);
const text = (maxLength = 8): fc.Arbitrary<string> => fc.string({ unit, maxLength });
const checksumArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => bytesToChecksum(b));
const bufferArb = (maxLength = 24): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const metadataArb: fc.Arbitrary<Map<string, MetadataValue>> = fc
  .uniqueArray(
    fc.tuple(
      fc.string({ unit, minLength: 1, maxLength: 6 }),
      fc.oneof(
        text().map((value): MetadataValue => ({ type: 'string', value })),
        fc.maxSafeInteger().map((value): MetadataValue => ({ type: 'int', value })),
      ),
    ),
    { selector: ([k]) => k, maxLength: 3 },
  )
  .map((entries) => new Map(entries));

const refArb: fc.Arbitrary<SummaryRef> = fc.record({
  name: text(12),
  checksum: checksumArb,
  timestamp: fc.maxSafeNat(),
  version: text(),
});
const deltaArb: fc.Arbitrary<SummaryDelta> = fc.record({
  from: fc.option(checksumArb, { nil: null }),
  to: checksumArb,
  superblock: checksumArb,
  size: fc.maxSafeNat(),
});
const summaryArb: fc.Arbitrary<Summary> = fc.record({
  timestamp: fc.maxSafeNat(),
  refs: fc.uniqueArray(refArb, { selector: (r) => r.name, maxLength: 6 }),
  deltas: fc.uniqueArray(deltaArb, { selector: (d) => `${d.from}-${d.to}`, maxLength: 6 }),
  metadata: metadataArb,
});

const partInfoArb: fc.Arbitrary<DeltaPartInfo> = fc
  .record({
    checksum: checksumArb,
    size: fc.maxSafeNat(),
    uncompressedSize: fc.maxSafeNat(),
    objects: fc.nat({ max: 0xffffffff }),
    inline: fc.option(bufferArb(), { nil: null }),
  })
  .map((p) => (p.inline === null ? p : { ...p, size: p.inline.length }));
const superblockArb: fc.Arbitrary<Superblock> = fc.record({
  from: fc.option(checksumArb, { nil: null }),
  to: checksumArb,
  commit: bufferArb(64),
  commitMeta: fc.option(bufferArb(), { nil: null }),
  parts: fc.array(partInfoArb, { maxLength: 4 }),
  metadata: metadataArb,
});

const headerArb = (size: fc.Arbitrary<number>): fc.Arbitrary<FileHeader> =>
  fc.record({
    uid: fc.nat({ max: 0xffffffff }),
    gid: fc.nat({ max: 0xffffffff }),
    mode: fc.nat({ max: 0o7777 }).map((p) => S_IFREG | p),
    rdevMajor: fc.constant(0),
    rdevMinor: fc.constant(0),
    symlinkTarget: fc.constant(''),
    xattrs: fc.constant([]),
    size,
  });
const opArb: fc.Arbitrary<DeltaOp> = fc.oneof(
  fc.record({
    op: fc.constant('meta' as const),
    kind: fc.constantFrom('dirtree' as const, 'dirmeta' as const),
    bytes: bufferArb(),
  }),
  fc
    .record({ checksum: checksumArb, content: bufferArb(40) })
    .chain(({ checksum, content }) =>
      headerArb(fc.constant(content.length)).map((header): DeltaOp => ({ op: 'new', checksum, header, content })),
    ),
  fc.record({
    op: fc.constant('copy' as const),
    checksum: checksumArb,
    header: headerArb(fc.maxSafeNat()),
    source: checksumArb,
  }),
  fc
    .record({
      checksum: checksumArb,
      source: checksumArb,
      windows: fc.array(
        fc.record({
          sourceOffset: fc.maxSafeNat(),
          sourceSize: fc.nat({ max: MAX_PATCH_SOURCE_BYTES }),
          outputSize: fc.integer({ min: 1, max: MAX_PATCH_WINDOW_BYTES }),
          frame: bufferArb(),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    })
    .chain(({ checksum, source, windows }) =>
      headerArb(fc.constant(windows.reduce((n, w) => n + w.outputSize, 0))).map(
        (header): DeltaOp => ({ op: 'patch', checksum, header, source, windows }),
      ),
    ),
);

// Canonical order computed independently of the codecs: Buffer.compare of the UTF-8 bytes.
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
const canonicalMetadata = (m: Metadata): Map<string, MetadataValue> => new Map([...m].sort(([a], [b]) => byUtf8(a, b)));
const canonicalSummary = (s: Summary): Summary => ({
  ...s,
  refs: [...s.refs].sort((a, b) => byUtf8(a.name, b.name)),
  // Scratch (no from) sorts first among deltas to one target.
  deltas: [...s.deltas].sort((a, b) => byUtf8(a.to, b.to) || byUtf8(a.from ?? '', b.from ?? '')),
  metadata: canonicalMetadata(s.metadata),
});

describe('round trips', () => {
  test.prop([summaryArb])('a summary decodes to its canonical form and re-encodes to the same bytes', (summary) => {
    const bytes = encodeSummary(summary);
    const decoded = decodeSummary(bytes);
    expect(decoded).toEqual(canonicalSummary(summary));
    expect(encodeSummary(decoded)).toEqual(bytes);
  });
  test.prop([superblockArb])('a superblock decodes to itself and re-encodes to the same bytes', (sb) => {
    const bytes = encodeSuperblock(sb);
    const decoded = decodeSuperblock(bytes);
    expect(decoded).toEqual({ ...sb, metadata: canonicalMetadata(sb.metadata) });
    expect(encodeSuperblock(decoded)).toEqual(bytes);
  });
  test.prop([fc.array(opArb, { maxLength: 8 })])(
    'a part body yields its operations in order and re-encodes to the same bytes',
    (ops) => {
      const bytes = encodeDeltaPart(ops);
      const decoded = [...readDeltaPart(bytes)];
      expect(decoded).toEqual(ops);
      expect(encodeDeltaPart(decoded)).toEqual(bytes);
    },
  );
  test.prop([
    summaryArb.chain((s) =>
      fc.tuple(
        fc.constant(s),
        fc.shuffledSubarray([...s.refs], { minLength: s.refs.length }),
        fc.shuffledSubarray([...s.deltas], { minLength: s.deltas.length }),
      ),
    ),
  ])('a summary encodes the same whatever order its refs and deltas come in', ([summary, refs, deltas]) => {
    expect(encodeSummary({ ...summary, refs, deltas })).toEqual(encodeSummary(summary));
  });
});

describe('decoders accept only canonical bytes', () => {
  const mutated = <T>(arb: fc.Arbitrary<T>, encode: (v: T) => Buffer): fc.Arbitrary<Buffer> =>
    arb.map(encode).chain((bytes) =>
      fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, delta]) => {
        const copy = Buffer.from(bytes);
        copy[at] = ((copy[at] as number) + delta) & 0xff;
        return copy;
      }),
    );
  it.each<[string, fc.Arbitrary<Buffer>, Codec<never>]>([
    ['summary', mutated(summaryArb, encodeSummary), CODECS.summary as Codec<never>],
    ['superblock', mutated(superblockArb, encodeSuperblock), CODECS.superblock as Codec<never>],
    [
      'part body',
      mutated(fc.array(opArb, { minLength: 1, maxLength: 4 }), encodeDeltaPart),
      CODECS['delta-part'] as Codec<never>,
    ],
  ])('a %s with one byte changed is rejected or re-encodes to itself', (_, arb, codec) => {
    fc.assert(
      fc.property(arb, (bytes) => {
        let decoded: unknown;
        try {
          decoded = codec.decode(bytes);
        } catch (error) {
          expect(error).toMatchObject({ code: 'E_OBJECT_MALFORMED' });
          return;
        }
        expect(codec.encode(decoded as never)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });
});
