// A compact list of checksums (32 bytes each, not 64-character strings), read back grouped by the
// objects/XX directory they live in: checking tens of thousands of objects for presence one
// directory at a time needs the list, and as strings it would cost the heap several times as much.
import type { Checksum } from '../../common/hash.js';

const BYTES = 32;

export class ChecksumList {
  #bytes = Buffer.allocUnsafe(BYTES * 1024);
  #count = 0;

  get size(): number {
    return this.#count;
  }

  add(checksum: Checksum): void {
    if ((this.#count + 1) * BYTES > this.#bytes.length) {
      const grown = Buffer.allocUnsafe(this.#bytes.length * 2);
      this.#bytes.copy(grown, 0, 0, this.#count * BYTES);
      this.#bytes = grown;
    }
    this.#bytes.write(checksum, this.#count * BYTES, BYTES, 'hex');
    this.#count++;
  }

  /**
   * The checksums grouped by their first byte, in prefix order, one group at a time (a counting
   * sort: one pass to count, one to place indexes, so only one group's strings exist at once).
   */
  *byPrefix(): Generator<{ prefix: string; checksums: Checksum[] }> {
    const bytes = this.#bytes;
    const starts = new Uint32Array(257);
    for (let i = 0; i < this.#count; i++) {
      const p = (bytes[i * BYTES] ?? 0) + 1;
      starts[p] = (starts[p] ?? 0) + 1;
    }
    for (let p = 0; p < 256; p++) starts[p + 1] = (starts[p + 1] ?? 0) + (starts[p] ?? 0);
    const next = starts.slice(0, 256);
    const order = new Uint32Array(this.#count);
    for (let i = 0; i < this.#count; i++) {
      const p = bytes[i * BYTES] ?? 0;
      order[next[p] ?? 0] = i;
      next[p] = (next[p] ?? 0) + 1;
    }
    for (let p = 0; p < 256; p++) {
      const from = starts[p] ?? 0;
      const to = starts[p + 1] ?? 0;
      if (from === to) continue;
      const checksums: Checksum[] = [];
      for (let k = from; k < to; k++) {
        const at = (order[k] ?? 0) * BYTES;
        checksums.push(bytes.toString('hex', at, at + BYTES) as Checksum);
      }
      yield { prefix: p.toString(16).padStart(2, '0'), checksums };
    }
  }
}
