// Remotes in the repository config: transfer settings (defaults, checked values), trusted keys
// rewritten by rotation, and the freshness record that reset-freshness and delete drop.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import type { Checksum } from '../common/hash.js';
import { DEFAULT_TRANSFER_LIMITS } from './fetch.js';
import {
  DEFAULT_MAX_SUMMARY_BYTES,
  addRemote,
  deleteRemote,
  getRemote,
  resetRemoteFreshness,
  setTrustedKeys,
} from './remotes.js';
import { Repo } from './store.js';

describe('remotes', () => {
  const tmp = useTempDir('arbor-remotes-');
  let repos = 0;
  const repo = (): Repo => Repo.init(join(tmp.path, `r${repos++}`), 'bare-user');

  it('reads transfer settings set at add, and defaults the others', () => {
    const r = repo();
    addRemote(r, { name: 'a', url: 'http://h/repo', keys: [], signVerify: false });
    expect(getRemote(r, 'a')).toMatchObject({
      limits: DEFAULT_TRANSFER_LIMITS,
      maxSummaryBytes: DEFAULT_MAX_SUMMARY_BYTES,
    });
    addRemote(r, {
      name: 'b',
      url: 'http://h/repo',
      keys: [],
      signVerify: false,
      options: new Map([
        ['low-speed-limit', '0'],
        ['low-speed-time', '5'],
        ['request-timeout', '60'],
        ['max-summary-size', '4096'],
      ]),
    });
    expect(getRemote(Repo.open(r.path), 'b')).toMatchObject({
      limits: { lowSpeedBytesPerSecond: 0, lowSpeedTimeMs: 5000, requestTimeoutMs: 60_000 },
      maxSummaryBytes: 4096,
    });
  });

  it.each([
    ['a negative number', 'low-speed-limit', '-1', 'E_CONFIG_INVALID'],
    ['a fraction', 'request-timeout', '1.5', 'E_CONFIG_INVALID'],
    ['a zero window', 'low-speed-time', '0', 'E_CONFIG_INVALID'],
    ['an unknown key', 'speed', '1', 'E_USAGE'],
  ])('refuses %s at add, writing nothing', (_what, key, value, code) => {
    const r = repo();
    expect(() =>
      addRemote(r, { name: 'a', url: 'http://h/repo', keys: [], signVerify: false, options: new Map([[key, value]]) }),
    ).toThrow(expect.objectContaining({ code }));
    expect(() => getRemote(Repo.open(r.path), 'a')).toThrow(expect.objectContaining({ code: 'E_REMOTE_NOT_FOUND' }));
  });

  it.each([
    ['a line break', 'http://h/x\n[remote "other"]\nurl=http://attacker/'],
    ['a carriage return', 'http://h/x\rsign-verify=false'],
    ['a tab', 'http://h/x\ty'],
    ['a trailing space', 'http://h/x '],
  ])('refuses a URL with %s (E_REMOTE_INVALID) and leaves the config as it was', (_, url) => {
    const r = repo();
    const before = readFileSync(join(r.path, 'config'), 'utf8');
    expect(() => addRemote(r, { name: 'a', url, keys: [], signVerify: false })).toThrow(
      expect.objectContaining({ code: 'E_REMOTE_INVALID', exit: 2 }),
    );
    expect(readFileSync(join(r.path, 'config'), 'utf8')).toBe(before);
    expect(Repo.open(r.path).config.has('remote "other"')).toBe(false);
  });

  it('rewrites the trusted keys of one remote in the config on disk', () => {
    const r = repo();
    addRemote(r, { name: 'a', url: 'http://h/repo', keys: [Buffer.alloc(32, 1)], signVerify: true });
    expect(setTrustedKeys(r, 'a', [Buffer.alloc(32, 2), Buffer.alloc(32, 3)]).keys).toEqual([
      Buffer.alloc(32, 2),
      Buffer.alloc(32, 3),
    ]);
    expect(getRemote(Repo.open(r.path), 'a')).toMatchObject({
      signVerify: true,
      keys: [Buffer.alloc(32, 2), Buffer.alloc(32, 3)],
    });
  });

  it('keeps the newest summary record, which reset-freshness and delete drop', () => {
    const r = repo();
    addRemote(r, { name: 'a', url: 'http://h/repo', keys: [], signVerify: false });
    const A = 'a'.repeat(64) as Checksum;
    r.db.recordRemoteSummary('a', { timestamp: 10, checksum: A }, 100);
    r.db.recordRemoteSummary('a', { timestamp: 9, checksum: 'b'.repeat(64) as Checksum }, 101);
    expect(r.db.getRemoteSummary('a')).toEqual({ timestamp: 10, checksum: A });
    expect(resetRemoteFreshness(r, 'a')).toBe(true);
    expect(resetRemoteFreshness(r, 'a')).toBe(false);
    r.db.recordRemoteSummary('a', { timestamp: 9, checksum: A }, 102);
    deleteRemote(r, 'a');
    expect(r.db.getRemoteSummary('a')).toBeUndefined();
    expect(() => resetRemoteFreshness(r, 'a')).toThrow(expect.objectContaining({ code: 'E_REMOTE_NOT_FOUND' }));
  });
});
