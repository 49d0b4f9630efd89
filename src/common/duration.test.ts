import { describe, expect, it } from 'vitest';
import { parseDuration, positiveDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['90', 90],
    ['90s', 90],
    ['30m', 1800],
    ['12h', 43_200],
    ['7d', 604_800],
    ['3 days', 259_200],
    ['1 week', 604_800],
    ['0s', 0],
  ])('%j is %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['', 'soon', '5 fortnights', '-1h', '1.5h', '9999999999s'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/cannot read .* as a duration/);
  });

  it('positiveDuration refuses zero, naming the option', () => {
    expect(() => positiveDuration('--expires', '0d')).toThrow(
      "--expires: expected a duration above zero, like 7d, got '0d'",
    );
  });
});
