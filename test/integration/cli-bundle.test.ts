// The bundled CLI in dist/cli, what bin/arbor.js runs: the scripts the sources start by path (worker
// threads, the fetch helper) are entries beside its chunks, and the bundle finds the native addon, the
// package's version and data/ from there; and what `arbor status` loads at start-up.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARBOR, ROOT, arbor, runCli } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';

/** Script names the sources start beside themselves: compiledWorker('x.js', …) and new URL('./x.js', import.meta.url). */
function scriptsStartedByPath(): string[] {
  const names = new Set<string>();
  for (const file of readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
    const text = readFileSync(join(ROOT, 'src', file), 'utf8');
    for (const m of text.matchAll(/compiledWorker\('([\w-]+\.js)'|new URL\('\.\/([\w-]+\.js)', import\.meta\.url\)/g))
      names.add((m[1] ?? m[2]) as string);
  }
  return [...names].sort();
}

describe('the bundled CLI', () => {
  it('has every worker and helper script the sources start by path beside its chunks', () => {
    const scripts = scriptsStartedByPath();
    expect(scripts).toEqual(expect.arrayContaining(['commit-worker.js', 'fetch-helper.js']));
    expect(scripts.filter((name) => !existsSync(join(ROOT, 'dist/cli', name)))).toEqual([]);
  });

  it('is what bin/arbor.js runs, and it reports the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(readFileSync(join(ROOT, 'bin/arbor.js'), 'utf8')).toContain("'../dist/cli/main.js'");
    expect(runCli(['--version'])).toMatchObject({ exitCode: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('is CommonJS, loaded by require()', () => {
    expect(JSON.parse(readFileSync(join(ROOT, 'dist/cli/package.json'), 'utf8'))).toEqual({ type: 'commonjs' });
    expect(readFileSync(join(ROOT, 'dist/cli/main.js'), 'utf8')).toMatch(/\brequire\("/);
  });

  describe('start-up of `arbor status`', () => {
    const tmp = useTempDir('arbor-bundle-');

    it('loads neither node:crypto, node:child_process nor SQLite', () => {
      const sysroot = join(tmp.path, 'sysroot');
      arbor('admin', 'init-fs', sysroot);
      // Written at exit by a module preloaded into the CLI's process: Node's built-in modules and the files it required.
      const report = join(tmp.path, 'loaded.json');
      const preload = join(tmp.path, 'report-loaded.cjs');
      writeFileSync(
        preload,
        `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ builtins: process.moduleLoadList, files: Object.keys(require.cache) })));\n`,
      );
      const r = spawnSync(process.execPath, ['--require', preload, ARBOR, 'status', '--sysroot', sysroot], {
        encoding: 'utf8',
      });
      expect(r).toMatchObject({ status: 0, stderr: '' });
      const loaded = JSON.parse(readFileSync(report, 'utf8')) as { builtins: string[]; files: string[] };
      expect(loaded.files.some((f) => f.includes(join('dist', 'cli', 'main.js')))).toBe(true);
      expect(loaded.builtins.filter((m) => /^NativeModule (crypto|child_process)$/.test(m))).toEqual([]);
      expect(loaded.files.filter((f) => f.includes('better-sqlite3'))).toEqual([]);
    });
  });
});
