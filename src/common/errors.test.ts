// present(): the asserting narrowing used instead of `x as T` for values our own invariants promise.
import { describe, expect, it } from 'vitest';
import { ArborError, present } from './errors.js';

describe('present', () => {
  it('returns a value that is there, falsy ones included', () => {
    expect(present(new Map([['a', 1]]).get('a'), 'entry a')).toBe(1);
    expect(present([0][0], 'index 0')).toBe(0);
    expect(present('', 'empty text')).toBe('');
    expect(present(null, 'a null')).toBeNull();
  });

  it('throws a plain internal error (exit 70) naming what is missing', () => {
    let error: unknown;
    try {
      present(new Map<string, number>().get('b'), 'entry b');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ArborError);
    expect((error as Error).message).toBe('internal error: entry b is missing');
  });
});
