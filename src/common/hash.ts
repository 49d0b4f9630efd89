// BLAKE3-256 through @napi-rs/blake-hash (the fastest binding measured here: docs/dependencies.md).
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';

/** A BLAKE3-256 digest as 64 lowercase hex digits: the name of every object. */
export type Checksum = string & { readonly __brand: 'Checksum' };

export const isChecksum = (text: string): text is Checksum => /^[0-9a-f]{64}$/.test(text);

/** One-shot digest of a buffer (≈ 5 µs per small object: the per-call cost dominates). */
export function hashBytes(...parts: Uint8Array[]): Checksum {
  const [only] = parts;
  if (parts.length === 1 && only !== undefined) return blake3(only).toString('hex') as Checksum;
  const hasher = new Blake3Hasher();
  for (const part of parts) hasher.update(part);
  return hasher.digestBuffer().toString('hex') as Checksum;
}

/** Incremental hasher for streamed content (large files, network bodies). */
export class StreamHasher {
  readonly #hasher = new Blake3Hasher();
  update(chunk: Uint8Array): this {
    this.#hasher.update(chunk);
    return this;
  }
  digest(): Checksum {
    return this.#hasher.digestBuffer().toString('hex') as Checksum;
  }
}

/** The 32 raw bytes of a checksum. */
export function checksumToBytes(checksum: Checksum): Buffer {
  const bytes = Buffer.from(checksum, 'hex');
  // Buffer.from stops silently at the first non-hex digit: a short result would shift every later field.
  if (bytes.length !== 32 || checksum.length !== 64) throw new RangeError(`not a checksum: '${checksum}'`);
  return bytes;
}

export function bytesToChecksum(bytes: Uint8Array): Checksum {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') as Checksum;
}
