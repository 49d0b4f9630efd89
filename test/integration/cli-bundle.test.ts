// The bundled CLI in dist/cli, what bin/arbor.js runs: the scripts the sources start by path (worker
// threads, the fetch helper) are entries beside its chunks, and the bundle finds the native addon, the
// package's version and data/ from there.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../support/cli.js';

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
});
