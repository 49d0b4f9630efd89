// Ref updates of the index database: compare-and-swap, and a ref already at its target.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Checksum } from '../common/hash.js';
import { IndexDb } from './index-db.js';

const A = 'a'.repeat(64) as Checksum;
const B = 'b'.repeat(64) as Checksum;
const C = 'c'.repeat(64) as Checksum;

describe('IndexDb.updateRefs', () => {
  let dir: string;
  let db: IndexDb;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'arbor-index-db-'));
    db = new IndexDb(join(dir, 'repo.db'));
    db.updateRefs([{ name: 'os/main', checksum: A }], 1);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('moves a ref that is where the update expects it', () => {
    db.updateRefs([{ name: 'os/main', checksum: B, expected: A }], 2);
    expect(db.getRef('os/main')).toBe(B);
  });

  it('fails with E_REF_MOVED when another writer moved the ref elsewhere', () => {
    db.updateRefs([{ name: 'os/main', checksum: C }], 2);
    expect(() => db.updateRefs([{ name: 'os/main', checksum: B, expected: A }], 3)).toThrow(
      expect.objectContaining({ code: 'E_REF_MOVED' }),
    );
    expect(db.getRef('os/main')).toBe(C);
  });

  it('succeeds when another writer already moved the ref to the same target', () => {
    // Two pulls of one ref: the second finds the ref at the commit it fetched.
    db.updateRefs([{ name: 'os/main', checksum: B, expected: A }], 2);
    expect(() => db.updateRefs([{ name: 'os/main', checksum: B, expected: A }], 3)).not.toThrow();
    expect(db.getRef('os/main')).toBe(B);
  });
});
