// Pulls exact byte counts out of a stream of chunks of any size, holding at most one chunk plus
// the few bytes a small read needs: how the cpio reader walks a payload with bounded memory.

/** Reads from an async chunk source; `position` counts the bytes consumed so far. */
export class ChunkReader {
  readonly #source: AsyncIterator<Buffer>;
  #chunk: Buffer = Buffer.alloc(0);
  #ended = false;
  #position = 0;
  constructor(
    source: AsyncIterable<Buffer>,
    /** Called with what the source threw, returns what to throw instead (adds context). */
    private readonly translate: (error: unknown) => unknown = (error) => error,
  ) {
    this.#source = source[Symbol.asyncIterator]();
  }
  get position(): number {
    return this.#position;
  }
  async #fill(): Promise<boolean> {
    while (this.#chunk.length === 0) {
      if (this.#ended) return false;
      let next: IteratorResult<Buffer>;
      try {
        next = await this.#source.next();
      } catch (error) {
        throw this.translate(error);
      }
      if (next.done) {
        this.#ended = true;
        return false;
      }
      this.#chunk = next.value;
    }
    return true;
  }
  /** Exactly `n` bytes, or undefined when the source ends first (the bytes read are then lost). */
  async read(n: number): Promise<Buffer | undefined> {
    if (this.#chunk.length >= n || ((await this.#fill()) && this.#chunk.length >= n)) {
      const out = this.#chunk.subarray(0, n);
      this.#chunk = this.#chunk.subarray(n);
      this.#position += n;
      return out;
    }
    const parts: Buffer[] = [];
    let missing = n;
    while (missing > 0) {
      if (!(await this.#fill())) return undefined;
      const take = this.#chunk.subarray(0, missing);
      parts.push(take);
      this.#chunk = this.#chunk.subarray(take.length);
      this.#position += take.length;
      missing -= take.length;
    }
    return Buffer.concat(parts, n);
  }
  /** Yields exactly `n` bytes in pieces as they arrive; `onShort` builds the error if the source ends first. */
  async *stream(n: number, onShort: () => unknown): AsyncGenerator<Buffer> {
    let missing = n;
    while (missing > 0) {
      if (!(await this.#fill())) throw onShort();
      const take = this.#chunk.subarray(0, missing);
      this.#chunk = this.#chunk.subarray(take.length);
      this.#position += take.length;
      missing -= take.length;
      yield take;
    }
  }
  /** Consumes everything left, calling `visit` on each piece. */
  async drain(visit: (piece: Buffer) => void): Promise<void> {
    while (await this.#fill()) {
      visit(this.#chunk);
      this.#position += this.#chunk.length;
      this.#chunk = Buffer.alloc(0);
    }
  }
}
