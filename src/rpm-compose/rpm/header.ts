// Pure decoder of an RPM package's lead, signature header and main header (docs/rpm.md): bounds
// every offset and count by the bytes present, so a corrupt package is a CorruptionError, never a
// RangeError from a Buffer read.
import { CorruptionError } from '../../common/errors.js';
import { RegionTag, TagType } from './tags.js';

export const LEAD_BYTES = 96;
/** A header starts with 16 bytes: magic 8e ad e8 01, 4 reserved zero bytes, u32 index count, u32 store size. */
export const HEADER_PREAMBLE_BYTES = 16;
const LEAD_MAGIC = 0xedabeedb;
const HEADER_MAGIC = 0x8eade801;
const INDEX_ENTRY_BYTES = 16;
// rpm itself refuses headers above these sizes; they bound what a hostile file can make us allocate.
const MAX_INDEX_ENTRIES = 0xffff;
const MAX_STORE_BYTES = 256 * 1024 * 1024;
/** The signature header type in the lead that every RPM v3/v4 package uses ("header-style signature"). */
const SIGNATURE_TYPE_HEADER = 5;

/** The fixed 96-byte lead: only its magic and signature type matter today; the rest is informative. */
export interface Lead {
  readonly major: number;
  readonly minor: number;
  /** 0 binary, 1 source. */
  readonly type: number;
  readonly archNum: number;
  readonly name: string;
  readonly osNum: number;
}

/** One decoded header entry. Integers are numbers (INT64 values above 2^53 are refused as corrupt). */
type HeaderValue =
  | { readonly type: typeof TagType.Null }
  | { readonly type: typeof TagType.Char | typeof TagType.Int8 | typeof TagType.Bin; readonly value: Buffer }
  | {
      readonly type: typeof TagType.Int16 | typeof TagType.Int32 | typeof TagType.Int64;
      readonly value: readonly number[];
    }
  | { readonly type: typeof TagType.String; readonly value: string }
  | { readonly type: typeof TagType.StringArray | typeof TagType.I18nString; readonly value: readonly string[] };

export interface HeaderEntry {
  readonly tag: number;
  readonly count: number;
  /** Offset of the entry's data in the store, and of the byte after it. */
  readonly offset: number;
  readonly end: number;
  /** False for "dribble" entries appended after the immutable region. */
  readonly inRegion: boolean;
  readonly data: HeaderValue;
}

/** The immutable region a header opens with: its tag and how many index entries and store bytes it covers. */
export interface HeaderRegion {
  readonly tag: number;
  readonly indexCount: number;
  readonly storeBytes: number;
}

/** Where a decode error points: which package and which part of it. */
export interface DecodeContext {
  /** The package, as the user named it (a path). */
  readonly pkg: string;
  /** "signature header" or "header". */
  readonly part: string;
}

/** A decoded header: its entries by tag, the region, and the exact bytes (what header digests cover). */
export class RpmHeader {
  readonly #entries: ReadonlyMap<number, HeaderEntry>;
  constructor(
    entries: ReadonlyMap<number, HeaderEntry>,
    readonly region: HeaderRegion | undefined,
    /** The header from its magic to the end of its store. */
    readonly bytes: Buffer,
    private readonly context: DecodeContext,
  ) {
    this.#entries = entries;
  }
  get tags(): number[] {
    return [...this.#entries.keys()];
  }
  has(tag: number): boolean {
    return this.#entries.has(tag);
  }
  entry(tag: number): HeaderEntry | undefined {
    return this.#entries.get(tag);
  }
  #fail(tag: number, problem: string): never {
    throw new CorruptionError(
      'E_RPM_MALFORMED',
      `package '${this.context.pkg}': ${this.context.part} tag ${tag} ${problem}`,
    );
  }
  /** A STRING entry (or the first string of an I18N or array entry, as rpm does). */
  string(tag: number): string | undefined {
    const data = this.#entries.get(tag)?.data;
    if (data === undefined) return undefined;
    if (data.type === TagType.String) return data.value;
    if (data.type === TagType.I18nString || data.type === TagType.StringArray) return data.value[0];
    return this.#fail(tag, `is of type ${data.type}, not a string`);
  }
  /** A STRING_ARRAY or I18N entry (a single STRING is an array of one). */
  strings(tag: number): readonly string[] | undefined {
    const data = this.#entries.get(tag)?.data;
    if (data === undefined) return undefined;
    if (data.type === TagType.StringArray || data.type === TagType.I18nString) return data.value;
    if (data.type === TagType.String) return [data.value];
    return this.#fail(tag, `is of type ${data.type}, not a string array`);
  }
  /** An integer array of any width; CHAR and INT8 entries count as arrays of bytes. */
  numbers(tag: number): readonly number[] | undefined {
    const data = this.#entries.get(tag)?.data;
    if (data === undefined) return undefined;
    if (data.type === TagType.Int16 || data.type === TagType.Int32 || data.type === TagType.Int64) return data.value;
    if (data.type === TagType.Char || data.type === TagType.Int8) return [...data.value];
    return this.#fail(tag, `is of type ${data.type}, not an integer`);
  }
  /** A single integer (the first of an array, as rpm reads scalar tags). */
  number(tag: number): number | undefined {
    const values = this.numbers(tag);
    if (values === undefined) return undefined;
    if (values.length !== 1) this.#fail(tag, `has ${values.length} values, expected one`);
    return values[0];
  }
  bin(tag: number): Buffer | undefined {
    const data = this.#entries.get(tag)?.data;
    if (data === undefined) return undefined;
    if (data.type === TagType.Bin || data.type === TagType.Char || data.type === TagType.Int8) return data.value;
    return this.#fail(tag, `is of type ${data.type}, not binary`);
  }
}

function fail(context: DecodeContext, problem: string): never {
  throw new CorruptionError('E_RPM_MALFORMED', `package '${context.pkg}': ${context.part}: ${problem}`);
}

/**
 * Decodes the 96-byte lead: magic ed ab ee db, u8 major, u8 minor, u16 type, u16 archnum,
 * 66-byte NUL-terminated name, u16 osnum, u16 signature type (must be 5), 16 reserved bytes.
 */
export function decodeLead(bytes: Buffer, pkg: string): Lead {
  const context = { pkg, part: 'lead' };
  if (bytes.length < LEAD_BYTES)
    fail(context, `file is ${bytes.length} bytes, shorter than the ${LEAD_BYTES}-byte lead`);
  if (bytes.readUInt32BE(0) !== LEAD_MAGIC) fail(context, 'not an RPM package (bad lead magic)');
  const major = bytes.readUInt8(4);
  if (major !== 3 && major !== 4) fail(context, `unsupported package format version ${major}`);
  const signatureType = bytes.readUInt16BE(78);
  if (signatureType !== SIGNATURE_TYPE_HEADER) fail(context, `unsupported signature type ${signatureType}`);
  const nameField = bytes.subarray(10, 76);
  const nul = nameField.indexOf(0);
  if (nul < 0) fail(context, 'package name is not NUL-terminated');
  return {
    major,
    minor: bytes.readUInt8(5),
    type: bytes.readUInt16BE(6),
    archNum: bytes.readUInt16BE(8),
    name: nameField.subarray(0, nul).toString('latin1'),
    osNum: bytes.readUInt16BE(76),
  };
}

/** Total bytes of a header (preamble + index + store) from its first 16 bytes, checked against rpm's limits. */
export function headerLength(preamble: Buffer, context: DecodeContext): number {
  if (preamble.length < HEADER_PREAMBLE_BYTES)
    fail(context, `truncated: ${preamble.length} of ${HEADER_PREAMBLE_BYTES} preamble bytes`);
  if (preamble.readUInt32BE(0) !== HEADER_MAGIC) fail(context, 'bad header magic');
  if (preamble.readUInt32BE(4) !== 0) fail(context, 'reserved bytes after the magic are not zero');
  const indexCount = preamble.readUInt32BE(8);
  const storeBytes = preamble.readUInt32BE(12);
  if (indexCount < 1 || indexCount > MAX_INDEX_ENTRIES) fail(context, `index count ${indexCount} is out of range`);
  if (storeBytes > MAX_STORE_BYTES) fail(context, `store size ${storeBytes} is out of range`);
  return HEADER_PREAMBLE_BYTES + indexCount * INDEX_ENTRY_BYTES + storeBytes;
}

/** Padding after the signature header so the main header starts 8-aligned. */
export function signaturePadding(signatureLength: number): number {
  return (8 - (signatureLength % 8)) % 8;
}

const ALIGNMENT: Record<number, number> = { [TagType.Int16]: 2, [TagType.Int32]: 4, [TagType.Int64]: 8 };

/**
 * Decodes one header: preamble, n index entries (u32 tag, u32 type, i32 offset, u32 count), then
 * the store. Each entry's data lies inside the store, is aligned for its type, does not overlap
 * another's, and (strings) ends with NUL inside it. When the first entry is a region tag (61–63),
 * its 16 data bytes are a trailer entry whose negative offset says how many index entries the
 * immutable region covers. `bytes` must be exactly headerLength() long.
 */
export function decodeHeader(bytes: Buffer, context: DecodeContext): RpmHeader {
  const total = headerLength(bytes, context);
  if (bytes.length !== total) fail(context, `truncated: ${bytes.length} of ${total} bytes`);
  const indexCount = bytes.readUInt32BE(8);
  const storeBytes = bytes.readUInt32BE(12);
  const storeStart = HEADER_PREAMBLE_BYTES + indexCount * INDEX_ENTRY_BYTES;
  const store = bytes.subarray(storeStart);

  const raw: { tag: number; type: number; offset: number; count: number }[] = [];
  for (let i = 0; i < indexCount; i++) {
    const at = HEADER_PREAMBLE_BYTES + i * INDEX_ENTRY_BYTES;
    raw.push({
      tag: bytes.readUInt32BE(at),
      type: bytes.readUInt32BE(at + 4),
      offset: bytes.readInt32BE(at + 8),
      count: bytes.readUInt32BE(at + 12),
    });
  }

  let region: HeaderRegion | undefined;
  const first = raw[0];
  if (first !== undefined && first.tag >= RegionTag.Image && first.tag <= RegionTag.Immutable) {
    if (first.type !== TagType.Bin || first.count !== INDEX_ENTRY_BYTES)
      fail(context, `region tag ${first.tag} is not a 16-byte binary entry`);
    if (first.offset < 0 || first.offset + INDEX_ENTRY_BYTES > storeBytes)
      fail(context, `region trailer offset ${first.offset} is outside the ${storeBytes}-byte store`);
    const trailerTag = store.readUInt32BE(first.offset);
    const trailerType = store.readUInt32BE(first.offset + 4);
    const trailerOffset = store.readInt32BE(first.offset + 8);
    const trailerCount = store.readUInt32BE(first.offset + 12);
    if (trailerTag !== first.tag || trailerType !== TagType.Bin || trailerCount !== INDEX_ENTRY_BYTES)
      fail(context, `region trailer does not repeat region tag ${first.tag}`);
    const regionEntries = -trailerOffset / INDEX_ENTRY_BYTES;
    if (trailerOffset >= 0 || !Number.isInteger(regionEntries) || regionEntries > indexCount)
      fail(context, `region trailer claims ${-trailerOffset} index bytes of ${indexCount * INDEX_ENTRY_BYTES}`);
    region = { tag: first.tag, indexCount: regionEntries, storeBytes: first.offset + INDEX_ENTRY_BYTES };
  }

  const entries = new Map<number, HeaderEntry>();
  // Data spans, checked for overlap once all are known (rpm writes them in tag order, dribbles after).
  const spans: [number, number, number][] = [];
  if (region) spans.push([raw[0]!.offset, raw[0]!.offset + INDEX_ENTRY_BYTES, raw[0]!.tag]);
  for (let i = 0; i < raw.length; i++) {
    const e = raw[i]!;
    if (entries.has(e.tag)) fail(context, `tag ${e.tag} appears twice`);
    if (i > 0 && e.tag >= RegionTag.Image && e.tag <= 64) fail(context, `region tag ${e.tag} is not the first entry`);
    if (region && i === 0) {
      entries.set(e.tag, {
        tag: e.tag,
        count: e.count,
        offset: e.offset,
        end: e.offset + INDEX_ENTRY_BYTES,
        inRegion: true,
        data: { type: TagType.Bin, value: store.subarray(e.offset, e.offset + INDEX_ENTRY_BYTES) },
      });
      continue;
    }
    if (e.type > TagType.I18nString) fail(context, `tag ${e.tag} has unknown type ${e.type}`);
    if (e.offset < 0 || e.offset > storeBytes)
      fail(context, `tag ${e.tag} offset ${e.offset} is outside the ${storeBytes}-byte store`);
    const align = ALIGNMENT[e.type] ?? 1;
    if (e.offset % align !== 0) fail(context, `tag ${e.tag} offset ${e.offset} is not ${align}-byte aligned`);
    if (e.type !== TagType.Null && e.count === 0) fail(context, `tag ${e.tag} has count 0`);
    const { data, end } = decodeValue(store, e.tag, e.type as TagType, e.offset, e.count, context);
    spans.push([e.offset, end, e.tag]);
    entries.set(e.tag, {
      tag: e.tag,
      count: e.count,
      offset: e.offset,
      end,
      inRegion: region === undefined || i < region.indexCount,
      data,
    });
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur[0] < prev[1]) fail(context, `data of tags ${prev[2]} and ${cur[2]} overlap`);
  }
  return new RpmHeader(entries, region, bytes, context);
}

function decodeValue(
  store: Buffer,
  tag: number,
  type: TagType,
  offset: number,
  count: number,
  context: DecodeContext,
): { data: HeaderValue; end: number } {
  const left = store.length - offset;
  const need = (bytesEach: number): number => {
    // count is a u32: compare before multiplying so a huge count cannot overflow into "fits".
    if (count > left / bytesEach)
      fail(context, `tag ${tag}: ${count} values of ${bytesEach} bytes do not fit in the ${left} bytes left`);
    return count * bytesEach;
  };
  switch (type) {
    case TagType.Null:
      return { data: { type }, end: offset };
    case TagType.Char:
    case TagType.Int8:
    case TagType.Bin: {
      const n = need(1);
      return { data: { type, value: store.subarray(offset, offset + n) }, end: offset + n };
    }
    case TagType.Int16: {
      const n = need(2);
      const value: number[] = [];
      for (let at = offset; at < offset + n; at += 2) value.push(store.readUInt16BE(at));
      return { data: { type, value }, end: offset + n };
    }
    case TagType.Int32: {
      const n = need(4);
      const value: number[] = [];
      for (let at = offset; at < offset + n; at += 4) value.push(store.readUInt32BE(at));
      return { data: { type, value }, end: offset + n };
    }
    case TagType.Int64: {
      const n = need(8);
      const value: number[] = [];
      for (let at = offset; at < offset + n; at += 8) {
        const v = store.readBigUInt64BE(at);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(context, `tag ${tag}: 64-bit value ${v} is too large`);
        value.push(Number(v));
      }
      return { data: { type, value }, end: offset + n };
    }
    case TagType.String:
    case TagType.StringArray:
    case TagType.I18nString: {
      if (type === TagType.String && count !== 1) fail(context, `tag ${tag}: a string entry has count ${count}`);
      // Each string takes at least its NUL byte.
      need(1);
      const value: string[] = [];
      let at = offset;
      for (let i = 0; i < count; i++) {
        const nul = store.indexOf(0, at);
        if (nul < 0) fail(context, `tag ${tag}: string ${i} runs past the end of the store`);
        value.push(store.toString('utf8', at, nul));
        at = nul + 1;
      }
      const data: HeaderValue = type === TagType.String ? { type, value: value[0] ?? '' } : { type, value };
      return { data, end: at };
    }
  }
}

/** One entry to encode: a tag and its typed value (the count follows from the value). */
export interface HeaderField {
  readonly tag: number;
  readonly data: HeaderValue;
  /** The value's bytes as a decoded header stores them: copied as they are instead of encoding `data`. */
  readonly stored?: Buffer;
}

/**
 * Encodes a header as rpmbuild lays one out: the region entry first (when `regionTag` is given),
 * the other entries sorted by tag, their data in the same order, each aligned for its type with
 * zero padding, and the 16-byte region trailer last. decodeHeader() reads it back to `fields`.
 */
export function encodeHeader(fields: readonly HeaderField[], regionTag?: number): Buffer {
  const sorted = [...fields].sort((a, b) => a.tag - b.tag);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.tag === sorted[i - 1]!.tag) throw new RangeError(`tag ${sorted[i]!.tag} given twice`);
  }
  const index: [number, number, number, number][] = [];
  const store: Buffer[] = [];
  let size = 0;
  const put = (bytes: Buffer): void => {
    store.push(bytes);
    size += bytes.length;
  };
  for (const { tag, data, stored } of sorted) {
    const align = ALIGNMENT[data.type] ?? 1;
    if (size % align !== 0) put(Buffer.alloc(align - (size % align)));
    const offset = size;
    let count: number;
    if (stored !== undefined) {
      put(stored);
      index.push([tag, data.type, offset, countOf(data)]);
      continue;
    }
    switch (data.type) {
      case TagType.Null:
        count = 0;
        break;
      case TagType.Char:
      case TagType.Int8:
      case TagType.Bin:
        count = data.value.length;
        put(Buffer.from(data.value));
        break;
      case TagType.Int16:
      case TagType.Int32:
      case TagType.Int64: {
        const width = data.type === TagType.Int16 ? 2 : data.type === TagType.Int32 ? 4 : 8;
        const out = Buffer.alloc(width * data.value.length);
        data.value.forEach((v, i) => {
          if (width === 2) out.writeUInt16BE(v, i * 2);
          else if (width === 4) out.writeUInt32BE(v, i * 4);
          else out.writeBigUInt64BE(BigInt(v), i * 8);
        });
        count = data.value.length;
        put(out);
        break;
      }
      case TagType.String:
        count = 1;
        put(Buffer.from(`${data.value}\0`, 'utf8'));
        break;
      case TagType.StringArray:
      case TagType.I18nString:
        count = data.value.length;
        put(Buffer.from(data.value.map((s) => `${s}\0`).join(''), 'utf8'));
        break;
    }
    index.push([tag, data.type, offset, count]);
  }
  if (regionTag !== undefined) {
    const trailer = Buffer.alloc(INDEX_ENTRY_BYTES);
    trailer.writeUInt32BE(regionTag, 0);
    trailer.writeUInt32BE(TagType.Bin, 4);
    trailer.writeInt32BE(-(index.length + 1) * INDEX_ENTRY_BYTES, 8);
    trailer.writeUInt32BE(INDEX_ENTRY_BYTES, 12);
    index.unshift([regionTag, TagType.Bin, size, INDEX_ENTRY_BYTES]);
    put(trailer);
  }
  const head = Buffer.alloc(HEADER_PREAMBLE_BYTES + index.length * INDEX_ENTRY_BYTES);
  head.writeUInt32BE(HEADER_MAGIC, 0);
  head.writeUInt32BE(index.length, 8);
  head.writeUInt32BE(size, 12);
  index.forEach(([tag, type, offset, count], i) => {
    const at = HEADER_PREAMBLE_BYTES + i * INDEX_ENTRY_BYTES;
    head.writeUInt32BE(tag, at);
    head.writeUInt32BE(type, at + 4);
    head.writeInt32BE(offset, at + 8);
    head.writeUInt32BE(count, at + 12);
  });
  return Buffer.concat([head, ...store]);
}

/** The fields of a decoded header, region entry excluded: what encodeHeader() takes back. */
export function headerFields(header: RpmHeader): HeaderField[] {
  return header.tags
    .filter((tag) => !(header.region && tag === header.region.tag))
    .map((tag) => ({ tag, data: header.entry(tag)!.data }));
}

/**
 * headerFields() with each value's stored bytes: encodeHeader() copies them instead of encoding
 * the decoded values again (what makes rpm database blobs of big file lists cheap).
 */
export function storedHeaderFields(header: RpmHeader): HeaderField[] {
  const store = header.bytes.subarray(HEADER_PREAMBLE_BYTES + header.bytes.readUInt32BE(8) * INDEX_ENTRY_BYTES);
  return header.tags
    .filter((tag) => !(header.region && tag === header.region.tag))
    .map((tag) => {
      const entry = header.entry(tag)!;
      return { tag, data: entry.data, stored: store.subarray(entry.offset, entry.end) };
    });
}

/** The count an index entry gives for a value. */
function countOf(data: HeaderValue): number {
  switch (data.type) {
    case TagType.Null:
      return 0;
    case TagType.String:
      return 1;
    default:
      return data.value.length;
  }
}
