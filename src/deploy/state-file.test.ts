// State files beside deployments: read only when they are regular files, never through a link,
// and never quoted in an error.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ORIGIN_FILE, parseStateJson, readStateFile } from './state-file.js';

const base = mkdtempSync(join(tmpdir(), 'arbor-state-file-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const CANARY = 'canary-5b0e7a91-never-quoted';
const outside = join(base, 'outside');
mkdirSync(outside);
writeFileSync(join(outside, 'secret'), `${CANARY}\n`);

describe('readStateFile', () => {
  const dir = join(base, 'state');
  mkdirSync(dir);
  it('reads a regular file and returns null for a missing one', () => {
    writeFileSync(join(dir, 'ok.origin'), '[origin]\n');
    expect(readStateFile(join(dir, 'ok.origin'), ORIGIN_FILE)).toBe('[origin]\n');
    expect(readStateFile(join(dir, 'none.origin'), ORIGIN_FILE)).toBeNull();
  });

  it.each<[string, (path: string) => void, string]>([
    ['a directory', (p) => mkdirSync(p), 'is a directory'],
    ['a symlink to a secret', (p) => symlinkSync(join(outside, 'secret'), p), 'is a symlink'],
    ['a dangling symlink', (p) => symlinkSync(join(outside, 'none'), p), 'is a symlink'],
    ['a fifo', (p) => void spawnSync('mkfifo', [p]), 'is a special file'],
    ['too large', (p) => writeFileSync(p, 'x'.repeat(64 * 1024 + 1)), 'is larger than 65536 bytes'],
  ])('refuses %s with exit 3, naming the path and not the content', (name, make, what) => {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.origin`);
    make(path);
    let error: unknown;
    try {
      readStateFile(path, ORIGIN_FILE);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'E_ORIGIN_INVALID', exit: 3, message: `origin file '${path}' ${what}` });
    expect(String((error as Error).message)).not.toContain(CANARY);
  });

  it('keeps the JSON parser message, which quotes the text, out of the error', () => {
    expect(() => parseStateJson(`{"a": ${CANARY}}`, '/x', ORIGIN_FILE)).toThrow("origin file '/x' is not valid JSON");
  });
});
