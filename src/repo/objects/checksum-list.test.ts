import { describe, expect, it } from 'vitest';
import { hashBytes } from '../../common/hash.js';
import { ChecksumList } from './checksum-list.js';

describe('ChecksumList', () => {
  it('gives back every checksum added, duplicates too, grouped by first byte in prefix order', () => {
    // Enough to grow past the first buffer (1,024 entries) and fill most prefixes.
    const added = Array.from({ length: 3000 }, (_, i) => hashBytes(Buffer.from(`object ${i % 2500}`)));
    const list = new ChecksumList();
    for (const c of added) list.add(c);
    expect(list.size).toBe(3000);
    const groups = [...list.byPrefix()];
    expect(groups.map((g) => g.prefix)).toEqual(groups.map((g) => g.prefix).sort());
    for (const g of groups) for (const c of g.checksums) expect(c.slice(0, 2)).toBe(g.prefix);
    expect(groups.flatMap((g) => g.checksums).sort()).toEqual([...added].sort());
  });

  it('yields nothing when empty', () => {
    expect([...new ChecksumList().byPrefix()]).toEqual([]);
  });
});
