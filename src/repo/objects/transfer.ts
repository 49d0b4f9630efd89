// What a server publishes beside its objects: the summary (refs and deltas), static-delta
// superblocks, and the operation streams inside delta parts (docs/format.md §Transfer).
import { ByteReader, ByteWriter, compareUtf8 } from '../../common/bytes.js';
import { type Checksum, bytesToChecksum, checksumToBytes } from '../../common/hash.js';
import { type Metadata, readMetadata, writeMetadata } from './commit.js';
import { type FileHeader, encodeFileHeader, readFileHeader } from './file-header.js';

/** First bytes of the transfer formats; object kinds use 1–5. */
export const TRANSFER_TAG = { summary: 0x10, superblock: 0x11, part: 0x12 } as const;

/** Version of the summary encoding: versioned apart from the objects it lists. */
const SUMMARY_FORMAT_VERSION = 1;
/**
 * Version of the superblock and part encodings. 2: a patch is a list of windows, each patched
 * against a bounded range of its source, so a client never holds a whole file.
 */
export const DELTA_FORMAT_VERSION = 2;

/** The most content bytes one patch window may rebuild: a client holds one window at a time. */
export const MAX_PATCH_WINDOW_BYTES = 16 * 1024 * 1024;
/** The most source bytes one patch window may refer to: a client reads them into memory. */
export const MAX_PATCH_SOURCE_BYTES = 48 * 1024 * 1024;

export interface SummaryRef {
  readonly name: string;
  readonly checksum: Checksum;
  /** The commit's own timestamp (seconds). */
  readonly timestamp: number;
  /** The commit's `version` metadata, '' when it has none. */
  readonly version: string;
}

export interface SummaryDelta {
  readonly from: Checksum | null;
  readonly to: Checksum;
  /** Checksum of the encoded superblock: a client verifies the superblock it fetches against it. */
  readonly superblock: Checksum;
  /** Bytes of the superblock and all its parts, what a client would download. */
  readonly size: number;
}

export interface Summary {
  /** When the summary was written (seconds). */
  readonly timestamp: number;
  readonly refs: readonly SummaryRef[];
  readonly deltas: readonly SummaryDelta[];
  readonly metadata: Metadata;
}

const writeOptionalChecksum = (out: ByteWriter, checksum: Checksum | null): void => {
  if (checksum === null) out.u8(0);
  else out.u8(1).raw(checksumToBytes(checksum));
};

function readOptionalChecksum(input: ByteReader): Checksum | null {
  const flag = input.u8();
  if (flag > 1) input.fail('presence flag is neither 0 nor 1');
  return flag === 1 ? bytesToChecksum(input.raw(32)) : null;
}

function readHeaderTag(input: ByteReader, tag: number, what: string, version: number): void {
  if (input.u8() !== tag) input.fail(`not ${what}`);
  const actual = input.u8();
  if (actual !== version) input.fail(`${what} of format version ${actual}, this arbor reads version ${version}`);
}

/**
 * u8 tag=0x10, u8 version=1, u64 timestamp, u32 n refs (sorted by name, unique) × (name, 32-byte
 * commit, u64 commit timestamp, version string), u32 n deltas (sorted by to, then from) × (u8
 * has-from [+32 from], 32 to, 32 superblock checksum, u64 size), metadata.
 */
export function encodeSummary(summary: Summary): Buffer {
  const out = new ByteWriter(1024).u8(TRANSFER_TAG.summary).u8(SUMMARY_FORMAT_VERSION).u64(summary.timestamp);
  const refs = [...summary.refs].sort((a, b) => compareUtf8(a.name, b.name));
  out.u32(refs.length);
  for (const ref of refs)
    out.string(ref.name).raw(checksumToBytes(ref.checksum)).u64(ref.timestamp).string(ref.version);
  const deltas = [...summary.deltas].sort(compareDeltas);
  out.u32(deltas.length);
  for (const d of deltas) {
    writeOptionalChecksum(out, d.from);
    out.raw(checksumToBytes(d.to)).raw(checksumToBytes(d.superblock)).u64(d.size);
  }
  writeMetadata(out, summary.metadata);
  return out.finish();
}

function compareDeltas(a: SummaryDelta, b: SummaryDelta): number {
  if (a.to !== b.to) return a.to < b.to ? -1 : 1;
  const fa = a.from ?? '';
  const fb = b.from ?? '';
  return fa === fb ? 0 : fa < fb ? -1 : 1;
}

export function decodeSummary(bytes: Buffer, what = 'summary'): Summary {
  const input = new ByteReader(bytes, what);
  readHeaderTag(input, TRANSFER_TAG.summary, 'a summary', SUMMARY_FORMAT_VERSION);
  const timestamp = input.u64();
  const refs: SummaryRef[] = [];
  const nRefs = input.count(4 + 32 + 8 + 4);
  for (let i = 0; i < nRefs; i++) {
    const ref: SummaryRef = {
      name: input.string(),
      checksum: bytesToChecksum(input.raw(32)),
      timestamp: input.u64(),
      version: input.string(),
    };
    const previous = refs[refs.length - 1];
    if (previous && compareUtf8(previous.name, ref.name) >= 0) input.fail(`ref '${ref.name}' is unsorted or duplicate`);
    refs.push(ref);
  }
  const deltas: SummaryDelta[] = [];
  const nDeltas = input.count(1 + 32 + 32 + 8);
  for (let i = 0; i < nDeltas; i++) {
    const delta: SummaryDelta = {
      from: readOptionalChecksum(input),
      to: bytesToChecksum(input.raw(32)),
      superblock: bytesToChecksum(input.raw(32)),
      size: input.u64(),
    };
    const previous = deltas[deltas.length - 1];
    if (previous && compareDeltas(previous, delta) >= 0) input.fail(`delta to ${delta.to} is unsorted or duplicate`);
    deltas.push(delta);
  }
  const metadata = readMetadata(input);
  input.end();
  return { timestamp, refs, deltas, metadata };
}

export interface DeltaPartInfo {
  /** Checksum of the stored (compressed) part bytes. */
  readonly checksum: Checksum;
  /** Stored bytes. */
  readonly size: number;
  /** Bytes of the operation stream once decompressed: a client refuses to inflate more. */
  readonly uncompressedSize: number;
  readonly objects: number;
  /** The stored part itself when the delta was generated with --inline. */
  readonly inline: Buffer | null;
}

export interface Superblock {
  readonly from: Checksum | null;
  readonly to: Checksum;
  /** The encoded `to` commit object (its checksum must be `to`). */
  readonly commit: Buffer;
  /** The encoded detached metadata of `to` (signatures), or null. */
  readonly commitMeta: Buffer | null;
  readonly parts: readonly DeltaPartInfo[];
  readonly metadata: Metadata;
}

/**
 * u8 tag=0x11, u8 version=2, u8 has-from [+32 from], 32 to, commit (u32 length + bytes), u8
 * has-commitmeta [+ u32 length + bytes], u32 n parts × (32 checksum, u64 size, u64 uncompressed
 * size, u32 objects, u8 inline [+ u32 length + bytes]), metadata.
 */
export function encodeSuperblock(sb: Superblock): Buffer {
  const out = new ByteWriter(4096).u8(TRANSFER_TAG.superblock).u8(DELTA_FORMAT_VERSION);
  writeOptionalChecksum(out, sb.from);
  out.raw(checksumToBytes(sb.to)).bytes(sb.commit);
  if (sb.commitMeta === null) out.u8(0);
  else out.u8(1).bytes(sb.commitMeta);
  out.u32(sb.parts.length);
  for (const p of sb.parts) {
    out.raw(checksumToBytes(p.checksum)).u64(p.size).u64(p.uncompressedSize).u32(p.objects);
    if (p.inline === null) out.u8(0);
    else {
      if (p.inline.length !== p.size)
        throw new RangeError(`inline part is ${p.inline.length} bytes, size says ${p.size}`);
      out.u8(1).bytes(p.inline);
    }
  }
  writeMetadata(out, sb.metadata);
  return out.finish();
}

export function decodeSuperblock(bytes: Buffer, what = 'delta superblock'): Superblock {
  const input = new ByteReader(bytes, what);
  readHeaderTag(input, TRANSFER_TAG.superblock, 'a delta superblock', DELTA_FORMAT_VERSION);
  const from = readOptionalChecksum(input);
  const to = bytesToChecksum(input.raw(32));
  const commit = Buffer.from(input.bytes());
  const hasMeta = input.u8();
  if (hasMeta > 1) input.fail('commitmeta flag is neither 0 nor 1');
  const commitMeta = hasMeta === 1 ? Buffer.from(input.bytes()) : null;
  const parts: DeltaPartInfo[] = [];
  const n = input.count(32 + 8 + 8 + 4 + 1);
  for (let i = 0; i < n; i++) {
    const checksum = bytesToChecksum(input.raw(32));
    const size = input.u64();
    const uncompressedSize = input.u64();
    const objects = input.u32();
    const flag = input.u8();
    if (flag > 1) input.fail('inline flag is neither 0 nor 1');
    const inline = flag === 1 ? Buffer.from(input.bytes()) : null;
    if (inline !== null && inline.length !== size)
      input.fail(`inline part ${i} is ${inline.length} bytes, its size says ${size}`);
    parts.push({ checksum, size, uncompressedSize, objects, inline });
  }
  const metadata = readMetadata(input);
  input.end();
  return { from, to, commit, commitMeta, parts, metadata };
}

/** One operation of a delta part; each produces one object of the target commit. */
export type DeltaOp =
  | { readonly op: 'meta'; readonly kind: 'dirtree' | 'dirmeta'; readonly bytes: Buffer }
  | { readonly op: 'new'; readonly checksum: Checksum; readonly header: FileHeader; readonly content: Buffer }
  | { readonly op: 'copy'; readonly checksum: Checksum; readonly header: FileHeader; readonly source: Checksum }
  | {
      readonly op: 'patch';
      readonly checksum: Checksum;
      readonly header: FileHeader;
      readonly source: Checksum;
      readonly windows: readonly PatchWindow[];
    };

/**
 * One window of a patched file: `outputSize` content bytes (following the previous window's) rebuilt
 * by a zstd frame whose raw-content dictionary is bytes [sourceOffset, sourceOffset + sourceSize)
 * of the source object's content.
 */
export interface PatchWindow {
  readonly sourceOffset: number;
  readonly sourceSize: number;
  readonly outputSize: number;
  readonly frame: Buffer;
}

const OP_TAG = { meta: 1, new: 2, copy: 3, patch: 4 } as const;
const META_KIND_TAG = { dirtree: 2, dirmeta: 3 } as const;

/** Streams operations into one part body (before compression): u8 tag=0x12, u8 version=2, then ops. */
export class DeltaPartWriter {
  readonly #out = new ByteWriter(1 << 20);
  #count = 0;
  constructor() {
    this.#out.u8(TRANSFER_TAG.part).u8(DELTA_FORMAT_VERSION);
  }
  get objects(): number {
    return this.#count;
  }
  get length(): number {
    return this.#out.length;
  }
  /**
   * meta: u8 1, u8 kind (2 dirtree, 3 dirmeta), bytes. new: u8 2, 32 checksum, header, u64 length
   * + content. copy: u8 3, 32 checksum, header, 32 source. patch: u8 4, 32 checksum, header, 32
   * source, u32 n windows × (u64 source offset, u32 source size, u32 output size, u32 length + zstd
   * frame). A header is the encoded file header (its own length fields).
   */
  add(op: DeltaOp): void {
    const out = this.#out.u8(OP_TAG[op.op]);
    if (op.op === 'meta') {
      out.u8(META_KIND_TAG[op.kind]).bytes(op.bytes);
    } else {
      out.raw(checksumToBytes(op.checksum)).raw(encodeFileHeader(op.header));
      if (op.op === 'new') out.u64(op.content.length).raw(op.content);
      else if (op.op === 'copy') out.raw(checksumToBytes(op.source));
      else {
        out.raw(checksumToBytes(op.source)).u32(op.windows.length);
        for (const w of op.windows) out.u64(w.sourceOffset).u32(w.sourceSize).u32(w.outputSize).bytes(w.frame);
      }
    }
    this.#count++;
  }
  finish(): Buffer {
    return this.#out.finish();
  }
}

/** Reads the operations of a decompressed part body, strictly. */
export function* readDeltaPart(body: Buffer, what = 'delta part'): Generator<DeltaOp> {
  const input = new ByteReader(body, what);
  readHeaderTag(input, TRANSFER_TAG.part, 'a delta part', DELTA_FORMAT_VERSION);
  while (input.remaining > 0) {
    const tag = input.u8();
    if (tag === OP_TAG.meta) {
      const kindTag = input.u8();
      const kind =
        kindTag === META_KIND_TAG.dirtree
          ? 'dirtree'
          : kindTag === META_KIND_TAG.dirmeta
            ? 'dirmeta'
            : input.fail(`unknown metadata kind ${kindTag}`);
      yield { op: 'meta', kind, bytes: input.bytes() };
      continue;
    }
    if (tag !== OP_TAG.new && tag !== OP_TAG.copy && tag !== OP_TAG.patch) input.fail(`unknown delta operation ${tag}`);
    const checksum = bytesToChecksum(input.raw(32));
    const header = readFileHeader(input);
    if (tag === OP_TAG.new) {
      const n = input.u64();
      if (n !== header.size) input.fail(`content is ${n} bytes, header says ${header.size}`);
      yield { op: 'new', checksum, header, content: input.raw(n) };
    } else if (tag === OP_TAG.copy) {
      yield { op: 'copy', checksum, header, source: bytesToChecksum(input.raw(32)) };
    } else {
      const source = bytesToChecksum(input.raw(32));
      yield { op: 'patch', checksum, header, source, windows: readPatchWindows(input, header.size) };
    }
  }
}

/**
 * A patch's windows, strictly: at least one, none empty or past the bounds a client holds in
 * memory, and their outputs adding up to the content size the header says.
 */
function readPatchWindows(input: ByteReader, contentSize: number): PatchWindow[] {
  const n = input.count(8 + 4 + 4 + 4);
  if (n === 0) input.fail('patch has no windows');
  const windows: PatchWindow[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const sourceOffset = input.u64();
    const sourceSize = input.u32();
    const outputSize = input.u32();
    if (sourceSize > MAX_PATCH_SOURCE_BYTES)
      input.fail(`patch window ${i} reads ${sourceSize} source bytes, more than ${MAX_PATCH_SOURCE_BYTES}`);
    if (outputSize === 0 || outputSize > MAX_PATCH_WINDOW_BYTES)
      input.fail(`patch window ${i} rebuilds ${outputSize} bytes, not 1 to ${MAX_PATCH_WINDOW_BYTES}`);
    total += outputSize;
    if (total > contentSize) input.fail(`patch windows rebuild more than the ${contentSize} bytes the header says`);
    windows.push({ sourceOffset, sourceSize, outputSize, frame: input.bytes() });
  }
  if (total !== contentSize) input.fail(`patch windows rebuild ${total} bytes, the header says ${contentSize}`);
  return windows;
}
