// Freshness and key-rotation rules for accepted summaries: replayed and expired summaries are
// refused with their codes, the record only advances, and only a vouched-for summary retires keys.
import { describe, expect, it } from 'vitest';
import type { Checksum } from '../common/hash.js';
import type { MetadataValue, Summary } from './objects/index.js';
import { keyId } from './sign.js';
import { EXPIRY_SKEW_SECONDS, checkFreshness, planTrustedKeys, readSummaryTrust } from './summary-trust.js';

const A = 'a'.repeat(64) as Checksum;
const B = 'b'.repeat(64) as Checksum;
const key = (n: number): Buffer => Buffer.alloc(32, n);
const check = (k: Buffer, valid = true, trusted = true): { keyId: string; valid: boolean; trusted: boolean } => ({
  keyId: keyId(k),
  valid,
  trusted,
});

describe('checkFreshness', () => {
  const now = 2_000_000_000;
  it.each([
    ['the first summary of a remote', undefined, { timestamp: 10, checksum: A, expires: null }, true],
    ['a newer summary', { timestamp: 10, checksum: A }, { timestamp: 11, checksum: B, expires: null }, true],
    ['the same summary again', { timestamp: 10, checksum: A }, { timestamp: 10, checksum: A, expires: null }, false],
    [
      'a summary expiring within the skew tolerance',
      undefined,
      { timestamp: 10, checksum: A, expires: now - EXPIRY_SKEW_SECONDS },
      true,
    ],
  ] as const)('accepts %s', (_what, recorded, candidate, advances) => {
    expect(checkFreshness('origin', recorded, candidate, now)).toBe(advances);
  });

  it.each([
    [
      'an older summary',
      { timestamp: 10, checksum: A },
      { timestamp: 9, checksum: B, expires: null },
      'E_SUMMARY_REPLAYED',
    ],
    [
      'another summary with the same timestamp',
      { timestamp: 10, checksum: A },
      { timestamp: 10, checksum: B, expires: null },
      'E_SUMMARY_REPLAYED',
    ],
    [
      'an expired summary',
      undefined,
      { timestamp: 10, checksum: A, expires: now - EXPIRY_SKEW_SECONDS - 1 },
      'E_SUMMARY_EXPIRED',
    ],
    [
      'an expired summary even when newer',
      { timestamp: 10, checksum: A },
      { timestamp: 11, checksum: B, expires: 12 },
      'E_SUMMARY_EXPIRED',
    ],
  ] as const)('refuses %s', (_what, recorded, candidate, code) => {
    expect(() => checkFreshness('origin', recorded, candidate, now)).toThrow(expect.objectContaining({ code }));
  });
});

describe('readSummaryTrust', () => {
  const summary = (metadata: [string, MetadataValue][]): Summary => ({
    timestamp: 1,
    refs: [],
    deltas: [],
    metadata: new Map(metadata),
  });
  it('reads expiry and key lists, and defaults to none', () => {
    expect(readSummaryTrust(summary([]), 's')).toEqual({ expires: null, nextKeys: [], retiredKeys: [] });
    const read = readSummaryTrust(
      summary([
        ['arbor.expires', { type: 'int', value: 5 }],
        ['arbor.next-keys', { type: 'bytes-list', value: [key(1)] }],
        ['arbor.retired-keys', { type: 'bytes-list', value: [key(2)] }],
      ]),
      's',
    );
    expect(read).toEqual({ expires: 5, nextKeys: [key(1)], retiredKeys: [key(2)] });
  });
  it.each([
    ['a string expiry', ['arbor.expires', { type: 'string', value: '5' }]],
    ['a negative expiry', ['arbor.expires', { type: 'int', value: -1 }]],
    ['a short next key', ['arbor.next-keys', { type: 'bytes-list', value: [Buffer.alloc(31)] }]],
    ['retired keys as bytes', ['arbor.retired-keys', { type: 'bytes', value: key(1) }]],
  ] as const)('refuses %s as malformed', (_what, entry) => {
    expect(() => readSummaryTrust(summary([entry as [string, MetadataValue]]), 's')).toThrow(
      expect.objectContaining({ code: 'E_OBJECT_MALFORMED' }),
    );
  });
});

describe('planTrustedKeys', () => {
  const [old, next, other] = [key(1), key(2), key(3)];
  it('adds announced keys once, and changes nothing when there is nothing new', () => {
    expect(planTrustedKeys([old], [check(old)], { nextKeys: [next, next], retiredKeys: [] })).toEqual([old, next]);
    expect(planTrustedKeys([old, next], [check(old)], { nextKeys: [next], retiredKeys: [] })).toBeNull();
  });
  it('retires a key when a trusted key that stays vouches for the summary', () => {
    expect(planTrustedKeys([old, next], [check(next)], { nextKeys: [], retiredKeys: [old] })).toEqual([next]);
  });
  it('ignores a retirement signed only by the key being retired, or by an untrusted or invalid signature', () => {
    expect(planTrustedKeys([old, next], [check(old)], { nextKeys: [], retiredKeys: [old] })).toBeNull();
    expect(
      planTrustedKeys([old], [check(old), check(next, true, false)], { nextKeys: [next], retiredKeys: [old] }),
    ).toEqual([old, next]);
    expect(
      planTrustedKeys([old, other], [check(old), check(other, false)], { nextKeys: [], retiredKeys: [old] }),
    ).toBeNull();
  });
});
