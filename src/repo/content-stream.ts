// Reading a regular file object's content in order, a piece at a time, in any repository mode, and
// checking it against its checksum once read to the end: for work on files bigger than is worth
// holding (a delta generator patching a 300 MB library holds ranges of it, never the whole).
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { ByteReader } from '../common/bytes.js';
import { CorruptionError, ioError } from '../common/errors.js';
import { type Checksum, StreamHasher } from '../common/hash.js';
import { MAX_FILE_HEADER_BYTES } from './bounded-inflate.js';
import { type FileHeader, encodeFileHeader, isRegular, readFileHeader } from './objects/index.js';
import type { Repo } from './store.js';
import { zstdBinding } from './zstd.js';

/** Compressed bytes read from an archive object per step. */
const READ_STEP = 256 * 1024;

/** A file object's content, read front to back. */
export interface ContentStream {
  readonly header: FileHeader;
  /**
   * Fills `into` with the next content bytes and returns how many: fewer than `into.length` only
   * at the end of the content.
   */
  read(into: Buffer): number;
  /** Reads what is left and checks the object against its checksum (E_OBJECT_CORRUPT). */
  verify(): void;
  close(): void;
}

/**
 * Opens a file object for reading its content in order; null when it is not a regular file. The
 * header is read (archive: inflated) up front; the content costs memory only as the caller reads it.
 */
export function openContentStream(repo: Repo, checksum: Checksum): ContentStream | null {
  const path = repo.objectPath(checksum, 'file');
  if (repo.mode !== 'archive') {
    const header = repo.readFileHeader(checksum, path);
    if (!isRegular(header.mode)) return null;
    return new ObjectStream(checksum, path, header, encodeFileHeader(header), null);
  }
  const inflater = new FrameReader(checksum, path);
  try {
    // A header is bounded (bounded-inflate.ts); what follows it in `head` is the content's start.
    const head = Buffer.allocUnsafe(MAX_FILE_HEADER_BYTES);
    const got = inflater.read(head);
    const reader = new ByteReader(head.subarray(0, got), `file ${checksum}`);
    let header: FileHeader;
    try {
      header = readFileHeader(reader);
    } catch (error) {
      throw corrupt(checksum, `has no valid header: ${(error as Error).message}`);
    }
    if (!isRegular(header.mode)) {
      inflater.close();
      return null;
    }
    const rest = head.subarray(reader.offset, got);
    return new ObjectStream(checksum, path, header, head.subarray(0, reader.offset), { inflater, rest });
  } catch (error) {
    inflater.close();
    throw error;
  }
}

function corrupt(checksum: Checksum, problem: string): CorruptionError {
  return new CorruptionError('E_OBJECT_CORRUPT', `file ${checksum} is corrupt: it ${problem}`);
}

/** One regular file object: its content read from the object file itself, or inflated from its zstd frame. */
class ObjectStream implements ContentStream {
  readonly #hasher = new StreamHasher();
  #fd: number | undefined;
  #archive: { inflater: FrameReader; rest: Buffer } | null;
  #done = 0;

  constructor(
    readonly checksum: Checksum,
    readonly path: string,
    readonly header: FileHeader,
    headerBytes: Buffer,
    archive: { inflater: FrameReader; rest: Buffer } | null,
  ) {
    this.#hasher.update(headerBytes);
    this.#archive = archive;
    if (archive === null) {
      try {
        this.#fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch (error) {
        throw ioError('read file object', path, error);
      }
    }
  }

  read(into: Buffer): number {
    const want = Math.min(into.length, this.header.size - this.#done);
    let got = 0;
    if (this.#archive !== null) {
      const { rest } = this.#archive;
      got = rest.copy(into, 0, 0, Math.min(want, rest.length));
      this.#archive.rest = rest.subarray(got);
      if (got < want) got += this.#archive.inflater.read(into.subarray(got, want));
    } else {
      const fd = this.#fd;
      if (fd === undefined) throw new Error(`internal error: file ${this.checksum} read after close`);
      while (got < want) {
        const n = readSync(fd, into, got, want - got, this.#done + got);
        if (n === 0) break;
        got += n;
      }
    }
    if (got < want)
      throw corrupt(this.checksum, `ends after ${this.#done + got} content bytes, its header says ${this.header.size}`);
    this.#hasher.update(into.subarray(0, got));
    this.#done += got;
    return got;
  }

  verify(): void {
    const scratch = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, this.header.size - this.#done)));
    while (this.#done < this.header.size) this.read(scratch);
    // Nothing may follow the content: the frame must end here (the object file's size is the content's otherwise).
    if (this.#archive !== null && (this.#archive.rest.length > 0 || !this.#archive.inflater.atEnd()))
      throw corrupt(this.checksum, `holds more than the ${this.header.size} content bytes its header says`);
    const actual = this.#hasher.digest();
    if (actual !== this.checksum) throw corrupt(this.checksum, `hashes to ${actual}`);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#archive?.inflater.close();
  }
}

/** One zstd frame in a file, inflated on demand into the caller's buffers (no window of its own beyond zstd's). */
class FrameReader {
  readonly #dctx = new (zstdBinding().DCtx)();
  readonly #input = Buffer.allocUnsafe(READ_STEP);
  #pending: Buffer = Buffer.alloc(0);
  #fd: number | undefined;
  #offset = 0;
  #ended = false;

  constructor(
    readonly checksum: Checksum,
    readonly path: string,
  ) {
    try {
      this.#fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      throw ioError('read file object', path, error);
    }
  }

  /** Fills `into` as far as the frame goes; returns the bytes inflated. */
  read(into: Buffer): number {
    let got = 0;
    while (got < into.length && !this.#ended) {
      if (this.#pending.length === 0) this.#pending = this.#fill();
      let result: [number, number, number];
      try {
        result = this.#dctx.decompressStream(into.subarray(got), this.#pending);
      } catch (error) {
        throw corrupt(this.checksum, `does not decompress: ${(error as Error).message}`);
      }
      const [remaining, produced, consumed] = result;
      this.#pending = this.#pending.subarray(consumed);
      got += produced;
      if (remaining === 0) this.#ended = true;
    }
    return got;
  }

  /** The frame has ended and no byte follows it in the file. */
  atEnd(): boolean {
    return this.#ended && this.#pending.length === 0 && this.#fill().length === 0;
  }

  #fill(): Buffer {
    const fd = this.#fd;
    if (fd === undefined) throw new Error(`internal error: file ${this.checksum} read after close`);
    const n = readSync(fd, this.#input, 0, this.#input.length, this.#offset);
    this.#offset += n;
    if (n === 0 && !this.#ended) throw corrupt(this.checksum, 'is cut short: its zstd frame has no end');
    return this.#input.subarray(0, n);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/**
 * Ranges of a content stream asked for at non-decreasing offsets (a patch's windows and their
 * source ranges), served from one buffer of `capacityBytes`: bytes before a range's start are dropped.
 */
export class SlidingRange {
  readonly #buf: Buffer;
  /** Content offsets of the bytes held in #buf[0, #end - #start). */
  #start = 0;
  #end = 0;

  constructor(
    readonly stream: ContentStream,
    capacityBytes: number,
  ) {
    this.#buf = Buffer.allocUnsafe(capacityBytes);
  }

  /** Content bytes [offset, offset + size): a view of the reused buffer, valid until the next call. */
  range(offset: number, size: number): Buffer {
    if (offset < this.#start || size > this.#buf.length)
      throw new Error(
        `internal error: range ${offset}+${size} of a stream held from ${this.#start} in ${this.#buf.length} bytes`,
      );
    if (offset >= this.#end) {
      // Skipped content is still read: the stream hashes every byte.
      while (this.#end < offset)
        this.#end += this.#next(this.#buf.subarray(0, Math.min(this.#buf.length, offset - this.#end)));
      this.#start = this.#end;
    } else if (offset > this.#start) {
      this.#buf.copyWithin(0, offset - this.#start, this.#end - this.#start);
      this.#start = offset;
    }
    while (this.#end < offset + size)
      this.#end += this.#next(this.#buf.subarray(this.#end - this.#start, offset + size - this.#start));
    return this.#buf.subarray(offset - this.#start, offset - this.#start + size);
  }

  #next(into: Buffer): number {
    const n = this.stream.read(into);
    if (n === 0) throw new Error(`internal error: range past the end of a ${this.stream.header.size}-byte stream`);
    return n;
  }
}
