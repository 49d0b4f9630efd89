// Big-endian byte writer and strict reader: the primitives of every Arbor binary format
// (docs/format.md). The reader bounds every length by the bytes left before allocating.
import { CorruptionError } from './errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();
// With the u flag a surrogate pair is one code point, so \p{Cs} only matches unpaired halves.
const LONE_SURROGATE = /\p{Cs}/u;

/** Growable big-endian writer; `finish()` returns exactly the bytes written. */
export class ByteWriter {
  #buf: Buffer;
  #len = 0;
  constructor(initialBytes = 256) {
    this.#buf = Buffer.allocUnsafe(initialBytes);
  }
  #reserve(n: number): number {
    if (this.#len + n > this.#buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + n));
      this.#buf.copy(next, 0, 0, this.#len);
      this.#buf = next;
    }
    const at = this.#len;
    this.#len += n;
    return at;
  }
  u8(value: number): this {
    const at = this.#reserve(1); // reserve first: it may replace #buf
    this.#buf.writeUInt8(value, at);
    return this;
  }
  u32(value: number): this {
    const at = this.#reserve(4);
    this.#buf.writeUInt32BE(value, at);
    return this;
  }
  /** Unsigned 64-bit; `value` must be a safe integer. */
  u64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 out of range: ${value}`);
    const at = this.#reserve(8);
    this.#buf.writeBigUInt64BE(BigInt(value), at);
    return this;
  }
  /** Signed 64-bit; `value` must be a safe integer. */
  i64(value: number): this {
    if (!Number.isSafeInteger(value)) throw new RangeError(`i64 out of range: ${value}`);
    const at = this.#reserve(8);
    this.#buf.writeBigInt64BE(BigInt(value), at);
    return this;
  }
  raw(bytes: Uint8Array): this {
    const at = this.#reserve(bytes.length);
    this.#buf.set(bytes, at);
    return this;
  }
  /** u32 length + the bytes. */
  bytes(bytes: Uint8Array): this {
    return this.u32(bytes.length).raw(bytes);
  }
  /** u32 length + UTF-8; `text` must be well-formed (no lone surrogates). */
  string(text: string): this {
    // TextEncoder turns a lone surrogate into U+FFFD, so two distinct strings could encode equal
    // and canonical order (compareUtf8) would disagree with the bytes: refuse instead.
    if (LONE_SURROGATE.test(text)) throw new RangeError('string contains a lone surrogate');
    return this.bytes(encoder.encode(text));
  }
  get length(): number {
    return this.#len;
  }
  finish(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }
}

/** Strict reader: every read checks the bytes left; `end()` rejects trailing bytes. */
export class ByteReader {
  #at = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  get offset(): number {
    return this.#at;
  }
  get remaining(): number {
    return this.buf.length - this.#at;
  }
  fail(problem: string): never {
    throw new CorruptionError('E_OBJECT_MALFORMED', `${this.what}: ${problem} at byte ${this.#at}`);
  }
  #take(n: number): number {
    if (n > this.remaining) this.fail(`needs ${n} bytes, only ${this.remaining} left`);
    const at = this.#at;
    this.#at += n;
    return at;
  }
  u8(): number {
    return this.buf.readUInt8(this.#take(1));
  }
  u32(): number {
    return this.buf.readUInt32BE(this.#take(4));
  }
  u64(): number {
    const value = this.buf.readBigUInt64BE(this.#take(8));
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) this.fail('64-bit value too large');
    return Number(value);
  }
  i64(): number {
    const value = this.buf.readBigInt64BE(this.#take(8));
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER))
      this.fail('64-bit value out of range');
    return Number(value);
  }
  raw(n: number): Buffer {
    const at = this.#take(n);
    return this.buf.subarray(at, at + n);
  }
  bytes(): Buffer {
    const n = this.u32();
    if (n > this.remaining) this.fail(`length ${n} exceeds the ${this.remaining} bytes left`);
    return this.raw(n);
  }
  string(): string {
    const bytes = this.bytes();
    try {
      return utf8.decode(bytes);
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }
  /** A count of items each at least `minItemBytes` long, bounded by what is left. */
  count(minItemBytes: number): number {
    const n = this.u32();
    if (n * minItemBytes > this.remaining) this.fail(`count ${n} cannot fit in the ${this.remaining} bytes left`);
    return n;
  }
  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} trailing bytes`);
  }
}

/** Orders strings by their UTF-8 bytes (JS `<` orders by UTF-16 units, which differs above U+FFFF). */
export function compareUtf8(a: string, b: string): number {
  // UTF-8 byte order equals code point order, so compare code points without encoding.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (0xD800-0xDFFF) stands for a code point above 0xFFFF: it sorts after every BMP unit.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}
