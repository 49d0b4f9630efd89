// Seeded randomness for soak, crash and concurrency tests: every random choice flows from one
// printed seed, so a failing run replays exactly with SEED=<seed>.
import { createCipheriv } from 'node:crypto';

/** The seed from $SEED (decimal or 0x-hex), or a fresh one; tests print it in their titles. */
export function seedFromEnv(): number {
  const text = process.env.SEED;
  if (text !== undefined && text !== '') {
    const seed = Number(text);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
      throw new Error(`SEED must be an integer in [0, 2^32), got '${text}'`);
    return seed;
  }
  return Math.floor(Math.random() * 0x1_0000_0000);
}

/** A small deterministic generator (mulberry32): fine for test choices, not for cryptography. */
export class Random {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** An independent generator for `label` (FNV-1a of it mixed into the seed): stable under test filtering. */
  derive(label: string): Random {
    let hash = 0x811c9dc5;
    for (const byte of Buffer.from(label)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    return new Random((this.seed ^ hash) >>> 0);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** `sizeBytes` pseudo-random bytes: an AES-CTR keystream keyed from this generator (fast for megabytes). */
  bytes(sizeBytes: number): Buffer {
    const key = Buffer.alloc(16);
    for (let i = 0; i < 16; i += 4) key.writeUInt32LE(this.int(0, 0xffffffff), i);
    const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
    return Buffer.concat([cipher.update(Buffer.alloc(sizeBytes)), cipher.final()]);
  }
}
