// The error codes are a contract (docs/errors.md): every code the sources name is in its tables,
// and every code there is still named somewhere in the sources.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every `E_…` code word in the non-test sources under src/ (literals, templates and comments alike). */
function codesInSources(): Map<string, string> {
  const codes = new Map<string, string>();
  const files = (readdirSync(join(ROOT, 'src'), { recursive: true }) as string[]).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
  );
  for (const file of files) {
    for (const [code] of readFileSync(join(ROOT, 'src', file), 'utf8').matchAll(/\bE_[A-Z][A-Z0-9_]*[A-Z0-9]\b/g)) {
      if (!codes.has(code)) codes.set(code, `src/${file}`);
    }
  }
  return codes;
}

/** The codes of the tables' first column in docs/errors.md. */
function codesInDocs(): Set<string> {
  const text = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  return new Set([...text.matchAll(/^\| `(E_[A-Z0-9_]+)` \|/gm)].map((m) => m[1] as string));
}

describe('error codes', () => {
  const sources = codesInSources();
  const docs = codesInDocs();

  it('finds the codes on both sides', () => {
    expect(sources.size).toBeGreaterThan(50);
    expect(docs.has('E_INTERNAL')).toBe(true);
  });

  it('documents every code the sources name in docs/errors.md', () => {
    expect([...sources].filter(([code]) => !docs.has(code)).map(([code, file]) => `${code} (${file})`)).toEqual([]);
  });

  it('names every documented code somewhere in the sources', () => {
    expect([...docs].filter((code) => !sources.has(code))).toEqual([]);
  });
});
