// Bounded zstd decompression: a frame is inflated in fixed-size steps and refused at the first
// byte past the size that signed metadata vouches for, or as soon as its header declares more;
// archive file objects are split into header and content as they inflate. Nothing here allocates
// in proportion to what a frame claims (docs/format.md §6.8).
import { zstdBinding } from './zstd.js';
import { ByteReader } from '../common/bytes.js';
import { type FileHeader, readFileHeader } from './objects/index.js';
import { present } from '../common/errors.js';

/**
 * The largest encoded file header a pull accepts: symlink targets are at most PATH_MAX (4 KiB) and
 * Linux lists at most 64 KiB of xattr names, each value at most 64 KiB; 1 MiB holds a target,
 * every name and a dozen maximal values. A file object's inflated size is bounded by this plus
 * the content size its dirtree records.
 */
export const MAX_FILE_HEADER_BYTES = 1024 * 1024;

/** ZSTD_FRAMEHEADERSIZE_MAX: enough bytes to read a frame's declared content size. */
const FRAME_HEADER_MAX = 18;

/** Decompressed bytes handed to the sink per step (the buffer is reused). */
const STEP_BYTES = 128 * 1024;

/** Idle streaming contexts kept for reuse: about as many as a pull has objects in flight. */
const MAX_IDLE_CONTEXTS = 16;

interface StreamContext {
  readonly dctx: InstanceType<ReturnType<typeof zstdBinding>['DCtx']>;
  /** Where a step's output goes (the sink sees views of it). */
  readonly out: Buffer;
}

/**
 * Contexts of finished frames, ready for the next. A context's window buffer lives outside V8's
 * heap until its wrapper is collected, so one per object piles up tens of MiB between full GCs
 * of a pull; reused, a pull holds only as many as it has frames in flight.
 */
const idleContexts: StreamContext[] = [];

function takeContext(): StreamContext {
  return idleContexts.pop() ?? { dctx: new (zstdBinding().DCtx)(), out: Buffer.allocUnsafe(STEP_BYTES) };
}

function giveBack(context: StreamContext): void {
  if (idleContexts.length >= MAX_IDLE_CONTEXTS) return;
  // Abandons a frame cut short by an error; a finished one has nothing left to drop.
  context.dctx.reset(zstdBinding().ResetDirective.sessionOnly);
  idleContexts.push(context);
}

/** A frame that cannot be inflated within its bound: corrupt or hostile input, worded by the caller. */
export class InflateError extends Error {}

/**
 * ZSTD_COMPRESSBOUND: the most bytes zstd's one-shot compressor writes for `size` input bytes, so
 * the most a server may send for content of that size.
 */
export function zstdCompressBound(size: number): number {
  const small = 128 * 1024;
  return size + Math.floor(size / 256) + (size < small ? Math.floor((small - size) / 2048) : 0);
}

/** The content size a zstd frame declares in its header, null when it declares none. */
export function frameContentSize(frame: Buffer): number | null {
  try {
    return zstdBinding().getFrameContentSize(frame);
  } catch (error) {
    throw new InflateError(`is not a zstd frame: ${(error as Error).message}`);
  }
}

export interface InflateOptions {
  /** The output must be exactly `limit` bytes (a delta part), not merely at most. */
  readonly exact?: boolean;
}

/**
 * Inflates one zstd frame pushed in pieces, handing each decompressed chunk to a sink and refusing
 * to produce more than `limit` bytes in all. The sink's chunk is a view of a reused buffer.
 */
export class BoundedInflater {
  /** Taken from the idle contexts; given back when the frame ends or fails, null after. */
  #context: StreamContext | null = takeContext();
  /** Input held back until the frame header can be read. */
  #head: Buffer | null = Buffer.alloc(0);
  #produced = 0;
  #ended = false;

  constructor(
    readonly limit: number,
    readonly options: InflateOptions = {},
  ) {}

  /** Decompressed bytes so far. */
  get produced(): number {
    return this.#produced;
  }

  /** Feeds compressed bytes; throws InflateError when the frame would exceed the limit. */
  push(input: Buffer, sink: (chunk: Buffer) => void): void {
    if (this.#head !== null) {
      this.#head = this.#head.length === 0 ? input : Buffer.concat([this.#head, input]);
      if (this.#head.length < FRAME_HEADER_MAX) return;
      input = this.#takeHead();
    }
    this.#inflate(input, sink);
  }

  /** Ends the input: the frame must be complete (and, with `exact`, exactly `limit` bytes). */
  end(sink: (chunk: Buffer) => void): number {
    if (this.#head !== null) this.#inflate(this.#takeHead(), sink);
    if (!this.#ended)
      throw new InflateError(`is cut short: its zstd frame ends after ${this.#produced} bytes without its end mark`);
    if (this.options.exact && this.#produced !== this.limit)
      throw new InflateError(`inflates to ${this.#produced} bytes, not the ${this.limit} its metadata says`);
    return this.#produced;
  }

  /** Checks the declared content size against the limit before a byte is inflated. */
  #takeHead(): Buffer {
    const head = present(this.#head ?? undefined, 'the buffered frame header');
    this.#head = null;
    try {
      const declared = frameContentSize(head);
      if (declared !== null && declared > this.limit)
        throw new InflateError(`declares ${declared} bytes, more than the ${this.limit} its metadata allows`);
      if (declared !== null && this.options.exact && declared !== this.limit)
        throw new InflateError(`declares ${declared} bytes, not the ${this.limit} its metadata says`);
    } catch (error) {
      this.#release();
      throw error;
    }
    return head;
  }

  #inflate(input: Buffer, sink: (chunk: Buffer) => void): void {
    try {
      this.#steps(input, sink);
    } catch (error) {
      this.#release();
      throw error;
    }
    if (this.#ended) this.#release();
  }

  #steps(input: Buffer, sink: (chunk: Buffer) => void): void {
    let src = input;
    for (;;) {
      if (this.#ended) {
        if (src.length > 0) throw new InflateError('has bytes after the end of its zstd frame');
        return;
      }
      const { dctx, out } = present(this.#context ?? undefined, 'the inflater of an unfinished frame');
      let result: [number, number, number];
      try {
        result = dctx.decompressStream(out, src);
      } catch (error) {
        throw new InflateError(`does not decompress: ${(error as Error).message}`);
      }
      const [remaining, produced, consumed] = result;
      src = src.subarray(consumed);
      if (produced > 0) {
        this.#produced += produced;
        if (this.#produced > this.limit)
          throw new InflateError(`inflates to more than the ${this.limit} bytes its metadata allows`);
        sink(out.subarray(0, produced));
      }
      if (remaining === 0) this.#ended = true;
      // More output may be pending only when the output buffer was filled.
      else if (src.length === 0 && produced < out.length) return;
    }
  }

  #release(): void {
    if (this.#context !== null) giveBack(this.#context);
    this.#context = null;
  }
}

/** A context for one-shot decompression: it allocates no window, the output buffer is the window. */
let windowContext: InstanceType<ReturnType<typeof zstdBinding>['DCtx']> | undefined;

/** Inflates a whole frame held in memory into a new buffer of at most `limit` bytes. */
export function inflateBounded(frame: Buffer, limit: number, options: InflateOptions = {}): Buffer {
  if (options.exact && frameContentSize(frame) === limit) {
    // The frame declares exactly the expected size: inflate it in one shot into a buffer of that
    // size, with no zstd window buffer beside it and no chunks to join (a part may be 32 MiB).
    const out = Buffer.allocUnsafe(limit);
    windowContext ??= new (zstdBinding().DCtx)();
    let produced: number;
    try {
      produced = windowContext.decompress(out, frame);
    } catch (error) {
      throw new InflateError(`does not decompress: ${(error as Error).message}`);
    }
    if (produced !== limit) throw new InflateError(`inflates to ${produced} bytes, not the ${limit} its metadata says`);
    return out;
  }
  const inflater = new BoundedInflater(limit, options);
  const chunks: Buffer[] = [];
  const sink = (chunk: Buffer): void => void chunks.push(Buffer.from(chunk));
  inflater.push(frame, sink);
  return Buffer.concat(chunks, inflater.end(sink));
}

/** Where an ArchiveObjectInflater hands what it inflates. */
export interface ArchiveObjectSink {
  /** The header, once: its exact encoded bytes and their decoding (untrusted until hashed). */
  header(bytes: Buffer, header: FileHeader): void;
  /** A piece of content (a view of a reused buffer: copy it to keep it). */
  content(chunk: Buffer): void;
}

/**
 * Inflates an archive-mode file object (one zstd frame of header ‖ content) pushed in pieces and
 * splits it: the header must decode within MAX_FILE_HEADER_BYTES and say `contentSize` bytes (the
 * size its dirtree records), and no content byte past that is produced. Throws InflateError with
 * what is wrong (worded to follow "file CHECKSUM"). Hashing is the caller's: it sees every byte.
 */
export class ArchiveObjectInflater {
  readonly #inflater: BoundedInflater;
  /** Inflated bytes held until the header decodes; null after. */
  #head: Buffer | null = Buffer.alloc(0);
  #headError: Error | undefined;
  #header: FileHeader | undefined;
  #content = 0;
  readonly #onInflated = (chunk: Buffer): void => this.#split(chunk);

  constructor(
    readonly contentSize: number,
    readonly sink: ArchiveObjectSink,
    readonly what = 'file object',
  ) {
    this.#inflater = new BoundedInflater(MAX_FILE_HEADER_BYTES + contentSize);
  }

  push(compressed: Buffer): void {
    this.#inflater.push(compressed, this.#onInflated);
  }

  /** Ends the input: the frame must be complete and hold exactly the content its header says. */
  end(): FileHeader {
    this.#inflater.end(this.#onInflated);
    const header = this.#header;
    if (!header) throw new InflateError(`is malformed: ${this.#headError?.message ?? 'it is empty'}`);
    if (this.#content !== header.size)
      throw new InflateError(`holds ${this.#content} content bytes, its header says ${header.size}`);
    return header;
  }

  #split(chunk: Buffer): void {
    let rest = chunk;
    if (this.#head !== null) {
      const head = Buffer.concat([this.#head, chunk]);
      const reader = new ByteReader(head, this.what);
      try {
        this.#header = readFileHeader(reader);
      } catch (error) {
        // Most likely the header goes on in the next chunk; a real one is never this long.
        this.#head = head;
        this.#headError = error as Error;
        if (head.length > MAX_FILE_HEADER_BYTES)
          throw new InflateError(
            `has no valid header in its first ${MAX_FILE_HEADER_BYTES} bytes: ${this.#headError.message}`,
          );
        return;
      }
      if (this.#header.size !== this.contentSize)
        throw new InflateError(
          `has a header saying ${this.#header.size} content bytes, but its dirtree records ${this.contentSize}`,
        );
      this.#head = null;
      this.sink.header(head.subarray(0, reader.offset), this.#header);
      rest = head.subarray(reader.offset);
    }
    this.#content += rest.length;
    if (this.#content > this.contentSize)
      throw new InflateError(`holds more than the ${this.contentSize} content bytes its header says`);
    if (rest.length > 0) this.sink.content(rest);
  }
}

/**
 * Inflates one patch window (a zstd frame against a raw-content `dictionary`) into exactly `out`:
 * one-shot, so zstd neither copies the dictionary nor allocates a window, and it cannot write past
 * `out`. The frame must declare exactly `out.length` bytes.
 */
export function inflateWindow(frame: Buffer, dictionary: Buffer, out: Buffer): void {
  inflateOneShot(frame, dictionary, out, 'its window says');
}

/**
 * Inflates a whole frame into exactly `out` (a caller's reused buffer), one-shot as inflateWindow:
 * the frame must declare exactly `out.length` bytes.
 */
export function inflateInto(frame: Buffer, out: Buffer): void {
  inflateOneShot(frame, null, out, 'its metadata says');
}

function inflateOneShot(frame: Buffer, dictionary: Buffer | null, out: Buffer, says: string): void {
  const declared = frameContentSize(frame);
  if (declared !== out.length)
    throw new InflateError(
      declared === null
        ? `declares no content size, ${says} ${out.length} bytes`
        : `declares ${declared} bytes, not the ${out.length} ${says}`,
    );
  windowContext ??= new (zstdBinding().DCtx)();
  let produced: number;
  try {
    produced =
      dictionary === null
        ? windowContext.decompress(out, frame)
        : windowContext.decompressUsingDict(out, frame, dictionary);
  } catch (error) {
    throw new InflateError(`does not decompress: ${(error as Error).message}`);
  }
  if (produced !== out.length) throw new InflateError(`inflates to ${produced} bytes, not the ${out.length} ${says}`);
}
