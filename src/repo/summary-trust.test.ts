// Freshness rules for accepted summaries: replayed and expired summaries are refused with their
// codes, and the record only advances.
import { describe, expect, it } from 'vitest';
import { ArborError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import type { MetadataValue, Summary } from './objects/index.js';
import { EXPIRY_SKEW_SECONDS, checkFreshness, readSummaryTrust } from './summary-trust.js';

const A = 'a'.repeat(64) as Checksum;
const B = 'b'.repeat(64) as Checksum;
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return error instanceof ArborError ? error.code : 'not an ArborError';
  }
  return undefined;
};

describe('checkFreshness', () => {
  const now = 2_000_000_000;
  it.each([
    ['the first summary of a remote', undefined, { timestamp: 10, checksum: A, expires: null }, true],
    ['a newer summary', { timestamp: 10, checksum: A }, { timestamp: 11, checksum: B, expires: null }, true],
    ['the same summary again', { timestamp: 10, checksum: A }, { timestamp: 10, checksum: A, expires: null }, false],
    ['a summary expiring within the skew tolerance', undefined, { timestamp: 10, checksum: A, expires: now - EXPIRY_SKEW_SECONDS }, true],
  ] as const)('accepts %s', (_what, recorded, candidate, advances) => {
    expect(checkFreshness('origin', recorded, candidate, now)).toBe(advances);
  });

  it.each([
    ['an older summary', { timestamp: 10, checksum: A }, { timestamp: 9, checksum: B, expires: null }, 'E_SUMMARY_REPLAYED'],
    ['another summary with the same timestamp', { timestamp: 10, checksum: A }, { timestamp: 10, checksum: B, expires: null }, 'E_SUMMARY_REPLAYED'],
    ['an expired summary', undefined, { timestamp: 10, checksum: A, expires: now - EXPIRY_SKEW_SECONDS - 1 }, 'E_SUMMARY_EXPIRED'],
    ['an expired summary even when newer', { timestamp: 10, checksum: A }, { timestamp: 11, checksum: B, expires: 12 }, 'E_SUMMARY_EXPIRED'],
  ] as const)('refuses %s', (_what, recorded, candidate, code) => {
    expect(codeOf(() => checkFreshness('origin', recorded, candidate, now))).toBe(code);
  });
});

describe('readSummaryTrust', () => {
  const summary = (metadata: [string, MetadataValue][]): Summary => ({ timestamp: 1, refs: [], deltas: [], metadata: new Map(metadata) });
  it('reads the expiry, and defaults to none', () => {
    expect(readSummaryTrust(summary([]), 's')).toEqual({ expires: null });
    expect(readSummaryTrust(summary([['arbor.expires', { type: 'int', value: 5 }]]), 's')).toEqual({ expires: 5 });
  });
  it.each([
    ['a string expiry', ['arbor.expires', { type: 'string', value: '5' }]],
    ['a negative expiry', ['arbor.expires', { type: 'int', value: -1 }]],
  ] as const)('refuses %s as malformed', (_what, entry) => {
    expect(codeOf(() => readSummaryTrust(summary([entry as [string, MetadataValue]]), 's'))).toBe('E_OBJECT_MALFORMED');
  });
});
