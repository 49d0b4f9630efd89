// readdirOrEmpty: a missing directory is empty, anything else that fails is an error naming it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import { readdirOrEmpty } from './readdir-or-empty.js';

describe('readdirOrEmpty', () => {
  const tmp = useTempDir('arbor-readdir-');

  it('lists the names in a directory', () => {
    mkdirSync(join(tmp.path, 'd/sub'), { recursive: true });
    writeFileSync(join(tmp.path, 'd/f'), '');
    expect(readdirOrEmpty(join(tmp.path, 'd')).sort()).toEqual(['f', 'sub']);
  });

  it('gives no names for a directory that does not exist, or whose parent does not', () => {
    expect(readdirOrEmpty(join(tmp.path, 'missing'))).toEqual([]);
    expect(readdirOrEmpty(join(tmp.path, 'missing/below'))).toEqual([]);
  });

  it('throws E_IO naming the path when it is not a directory', () => {
    writeFileSync(join(tmp.path, 'file'), '');
    expect(() => readdirOrEmpty(join(tmp.path, 'file'))).toThrow(
      expect.objectContaining({ code: 'E_IO', message: expect.stringContaining(`'${join(tmp.path, 'file')}'`) }),
    );
  });
});
