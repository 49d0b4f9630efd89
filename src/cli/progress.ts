// A one-line progress display on stderr, drawn only on a terminal and at most 10 times a second.
import type { Writable } from 'node:stream';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export class ProgressLine {
  readonly #out: Writable & { isTTY?: boolean };
  readonly #enabled: boolean;
  readonly #start = Date.now();
  #last = 0;
  #drawn = false;

  constructor(out: Writable & { isTTY?: boolean }) {
    this.#out = out;
    this.#enabled = out.isTTY === true;
  }

  get elapsedSeconds(): number {
    return (Date.now() - this.#start) / 1000;
  }

  /** Redraws with `text`; `rateBytes` (bytes so far) adds a rate when given. */
  update(text: string, rateBytes?: number): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    const seconds = Math.max(this.elapsedSeconds, 0.001);
    const rate = rateBytes === undefined ? '' : `, ${formatBytes(rateBytes / seconds)}/s`;
    this.#out.write(`\r\x1b[K${text}${rate}`);
    this.#drawn = true;
  }

  done(): void {
    if (this.#drawn) this.#out.write('\r\x1b[K');
    this.#drawn = false;
  }
}
