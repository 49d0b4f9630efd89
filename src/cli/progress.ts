// A one-line progress display on stderr, drawn only on a terminal and at most 10 times a second.
import type { Writable } from 'node:stream';
import type { PullProgress } from '../repo/index.js';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/**
 * A pull's progress line after VERB: objects received (of how many, when known: a static delta
 * does not say), bytes, and the time left once it can be estimated from SECONDS so far.
 */
export function describePullProgress(verb: string, p: PullProgress, seconds: number): string {
  const known = p.objectsNeeded >= p.objects && p.objectsNeeded > 0;
  const count = known ? `${p.objects}/${p.objectsNeeded}${p.scanning ? '+' : ''}` : `${p.objects}`;
  const base = `${verb}: ${count} objects, ${formatBytes(p.bytes)}`;
  let eta = '';
  if (p.bytesTotal !== null && p.bytes > 0)
    eta = `, ${Math.max(0, Math.round(((p.bytesTotal - p.bytes) * seconds) / p.bytes))} s left`;
  else if (!p.scanning && p.objects > 0 && p.objectsNeeded > p.objects)
    eta = `, ~${Math.round(((p.objectsNeeded - p.objects) * seconds) / p.objects)} s left`;
  return base + eta;
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
