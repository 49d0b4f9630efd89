// The framing between a pull and its fetch helper (the unprivileged child that talks HTTP): each
// frame is u8 type, u32 request id, u32 payload length (big-endian), then the payload. Requests
// and the helper's reports are JSON; bodies, headers and content are raw bytes. Pure.
import { present } from '../common/errors.js';

/** Frame types: requests go to the helper, the rest come back tagged with the request's id. */
export const FrameType = {
  /** JSON HelperInit: the remote's URL, parallelism and transfer limits (id 0, first frame). */
  Init: 1,
  /** JSON GetRequest: a whole file of the remote (summary, metadata, delta parts) as raw bytes. */
  Get: 2,
  /** JSON SizeRequest: a file's length (HEAD). */
  Size: 3,
  /** JSON ObjectRequest: an archive file object, inflated by the helper within its bound. */
  Object: 4,
  /** An attempt starts: whatever came before for this request is void (a retry). Empty payload. */
  Begin: 16,
  /** The encoded file header of an object (raw bytes, at most MAX_FILE_HEADER_BYTES). */
  Header: 17,
  /** Body bytes (Get) or content bytes (Object). */
  Data: 18,
  /** JSON HelperEnd: the request is done. */
  End: 19,
  /** JSON HelperFailure: the request failed. */
  Fail: 20,
} as const;

/** u8 type, u32 id, u32 payload length. */
const FRAME_HEAD_BYTES = 9;

/** The largest payload the helper sends: a maximal file header, 1 MiB; data goes in smaller pieces. */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;

/** Data payloads are cut to at most this many bytes (a pipe carries a few of them at once). */
export const DATA_PIECE_BYTES = 128 * 1024;

export interface Frame {
  readonly type: number;
  readonly id: number;
  /** A view of the received bytes: copy it to keep it past the next push. */
  readonly payload: Buffer;
}

/** What the helper needs before its first request. */
export interface HelperInit {
  readonly url: string;
  readonly concurrency: number;
  readonly limits: {
    readonly lowSpeedBytesPerSecond: number;
    readonly lowSpeedTimeMs: number;
    readonly requestTimeoutMs: number;
  };
  /**
   * PEM certificates https trusts besides Node's bundled ones: the caller's NODE_EXTRA_CA_CERTS
   * file, read by the root side (the helper has an empty environment and may not read it).
   */
  readonly extraCa?: string;
}
export interface GetRequest {
  readonly path: string;
  readonly maxBytes: number;
  readonly allowMissing: boolean;
}
export interface SizeRequest {
  readonly path: string;
}
export interface ObjectRequest {
  readonly path: string;
  /** Content bytes its dirtree records: the object may not inflate past them. */
  readonly contentSize: number;
  /** Compressed bytes the server may send for it. */
  readonly maxBytes: number;
}

/** The end of a request: network bytes it took, and for Get/Size whether the file was missing, or its size. */
export interface HelperEnd {
  readonly fetched: number;
  readonly missing?: boolean;
  readonly size?: number;
}

/**
 * A failure: an ArborError of the fetch (`code`, `message`, `hint`, `url` for E_REMOTE_MISSING),
 * or `problem`, what is wrong with an object's bytes (worded to follow "file CHECKSUM from URL").
 */
export interface HelperFailure {
  readonly fetched: number;
  readonly code?: string;
  readonly message?: string;
  readonly hint?: string;
  readonly url?: string;
  readonly problem?: string;
}

/** The helper broke the framing: a frame too long, or input that is not what the protocol allows. */
export class FrameError extends Error {}

/** One frame's bytes. */
export function encodeFrame(type: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEAD_BYTES + payload.length);
  frame.writeUInt8(type, 0);
  frame.writeUInt32BE(id, 1);
  frame.writeUInt32BE(payload.length, 5);
  payload.copy(frame, FRAME_HEAD_BYTES);
  return frame;
}

/** A frame whose payload is `value` as JSON. */
export function encodeJsonFrame(type: number, id: number, value: unknown): Buffer {
  return encodeFrame(type, id, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** A JSON payload that must be an object; anything else is a FrameError. */
export function decodeJsonPayload(payload: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new FrameError('a JSON payload does not parse');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new FrameError('a JSON payload is not an object');
  return value as Record<string, unknown>;
}

/**
 * Splits a byte stream into frames. A payload length over `maxPayload` is refused from the frame
 * head, before its bytes are awaited, so the sender cannot make the reader buffer more. A payload
 * inside one pushed chunk is handed over without a copy.
 */
export class FrameDecoder {
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  /** The head of the frame whose payload is awaited, or null while a head is awaited. */
  #head: { type: number; id: number; length: number } | null = null;

  constructor(readonly maxPayload: number) {}

  /** True when no partial frame is buffered (a stream may end here). */
  get idle(): boolean {
    return this.#head === null && this.#buffered === 0;
  }

  /**
   * Decodes what `chunk` completes. Payloads are views of the chunk (valid until the next push);
   * with `reused`, the chunk's memory is read into again afterwards, so a partial frame left over
   * is copied out of it.
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => void, reused = false): void {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    this.#reused = reused;
    this.#decode(onFrame);
    if (reused && this.#buffered > 0) {
      // Into the spare carry buffer (the chunks may be views of the current one), then swapped.
      const rest = this.#gather(this.#spare, this.#buffered);
      this.#spare = this.#carry;
      this.#carry = rest.buffer;
      this.#chunks.length = 0;
      this.#chunks.push(rest.view);
    }
  }

  /** With reused input: what a partial frame left over is carried in until the next push, and a spare. */
  #carry: Buffer | null = null;
  #spare: Buffer | null = null;
  /** With reused input: where a frame split across pushes is joined (valid until the next push). */
  #scratch: Buffer | null = null;
  #reused = false;

  /** The first `n` buffered bytes copied into `into` (grown when short): the buffer and a view of them. */
  #gather(into: Buffer | null, n: number): { buffer: Buffer; view: Buffer } {
    const buffer = into !== null && into.length >= n ? into : Buffer.allocUnsafe(Math.max(n, 64 * 1024));
    let at = 0;
    for (const chunk of this.#chunks) {
      const used = Math.min(chunk.length, n - at);
      chunk.copy(buffer, at, 0, used);
      at += used;
      if (at === n) break;
    }
    return { buffer, view: buffer.subarray(0, n) };
  }

  #decode(onFrame: (frame: Frame) => void): void {
    for (;;) {
      if (this.#head === null) {
        if (this.#buffered < FRAME_HEAD_BYTES) return;
        const head = this.#take(FRAME_HEAD_BYTES);
        const length = head.readUInt32BE(5);
        if (length > this.maxPayload)
          throw new FrameError(`a frame announces ${length} bytes, more than the ${this.maxPayload} allowed`);
        this.#head = { type: head.readUInt8(0), id: head.readUInt32BE(1), length };
      }
      if (this.#buffered < this.#head.length) return;
      const { type, id, length } = this.#head;
      this.#head = null;
      onFrame({ type, id, payload: this.#take(length) });
    }
  }

  /** The first `n` buffered bytes: a view when one chunk holds them, else one copy. */
  #take(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    let out: Buffer;
    if (this.#reused) {
      // One frame per push can straddle the carry and the new chunk: joined in the scratch buffer.
      if (this.#scratch === null || this.#scratch.length < n)
        this.#scratch = Buffer.allocUnsafe(Math.max(n, 64 * 1024));
      out = this.#scratch.subarray(0, n);
    } else out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = present(this.#chunks[0], 'a buffered chunk');
      const used = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, used);
      at += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}
