import { describe, expect, it } from 'vitest';
import { Fifo } from './fifo.js';

describe('Fifo', () => {
  it('gives items back in the order they were pushed, across compactions', () => {
    const q = new Fifo<number>();
    const out: number[] = [];
    for (let i = 0; i < 5000; i++) {
      q.push(i);
      if (i % 3 === 0) out.push(q.take() as number);
    }
    expect(q.length).toBe(5000 - out.length);
    for (let v = q.take(); v !== undefined; v = q.take()) out.push(v);
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(q.length).toBe(0);
    expect(q.take()).toBeUndefined();
  });
});
