// Reading files a treefile names: regular files within the size bound only; FIFOs, devices and
// directories are refused without being read (a FIFO without a writer would block the open).
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import { readTreefileInput } from './treefile-input.js';

describe('readTreefileInput', () => {
  const tmp = useTempDir('arbor-treefile-input-');
  const refusal = (path: string, maxBytes?: number): { code: string; message: string } => {
    try {
      readTreefileInput(path, `treefile '${path}'`, maxBytes);
    } catch (error) {
      return { code: (error as { code: string }).code, message: (error as Error).message };
    }
    throw new Error(`${path} was read`);
  };

  it('reads a regular file, and one behind a symlink', () => {
    writeFileSync(join(tmp.path, 'a.yaml'), 'ref: a\n');
    symlinkSync('a.yaml', join(tmp.path, 'link.yaml'));
    expect(readTreefileInput(join(tmp.path, 'a.yaml'), 'x').toString()).toBe('ref: a\n');
    expect(readTreefileInput(join(tmp.path, 'link.yaml'), 'x').toString()).toBe('ref: a\n');
  });

  it('reads a file of exactly the limit and refuses one byte more', () => {
    writeFileSync(join(tmp.path, 'limit'), 'x'.repeat(64));
    writeFileSync(join(tmp.path, 'over'), 'x'.repeat(65));
    expect(readTreefileInput(join(tmp.path, 'limit'), 'x', 64)).toHaveLength(64);
    expect(refusal(join(tmp.path, 'over'), 64)).toEqual({
      code: 'E_TREEFILE_INVALID',
      message: expect.stringMatching(/is larger than 64 bytes \(65\)$/),
    });
  });

  it.each([
    ['a character device', '/dev/zero'],
    ['a character device', '/dev/null'],
    ['a directory', '/'],
  ])('refuses %s (%s)', (type, path) => {
    expect(refusal(path)).toEqual({
      code: 'E_TREEFILE_INVALID',
      message: `treefile '${path}' is not a regular file but ${type}`,
    });
  });

  it('refuses a FIFO without opening it (no writer: an open would block)', () => {
    const fifo = join(tmp.path, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expect(refusal(fifo).message).toMatch(/is not a regular file but a FIFO$/);
  });

  it('says a missing file does not exist, and names errno otherwise', () => {
    mkdirSync(join(tmp.path, 'd'));
    expect(refusal(join(tmp.path, 'missing.yaml')).message).toMatch(/missing\.yaml' does not exist$/);
    expect(refusal(join(tmp.path, 'd', 'x', 'y')).message).toMatch(/does not exist$/);
    writeFileSync(join(tmp.path, 'file'), '');
    expect(refusal(join(tmp.path, 'file', 'below')).message).toMatch(/cannot be read: not a directory \(ENOTDIR\)$/);
  });
});
