// A temporary directory per describe block: made when the block starts running (so blocks that a
// filter or skipIf leaves out make none) and removed after it, even when its tests fail.
import { afterAll, beforeAll } from 'vitest';
import { tempDir } from './cli.js';

/** Registers beforeAll/afterAll hooks; `path` is valid inside hooks and tests of the calling block. */
export function useTempDir(prefix: string): { readonly path: string } {
  let dir: ReturnType<typeof tempDir> | undefined;
  beforeAll(() => {
    dir = tempDir(prefix);
  });
  afterAll(() => dir?.cleanup());
  return {
    get path(): string {
      if (!dir) throw new Error(`temporary directory '${prefix}' used outside its describe block's hooks and tests`);
      return dir.path;
    },
  };
}
