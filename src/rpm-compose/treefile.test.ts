// Treefile loading: keys and defaults, includes, and errors that name FILE:LINE:COL.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import { loadTreefile } from './treefile.js';

describe('loadTreefile', () => {
  const tmp = useTempDir('arbor-treefile-');
  const write = (name: string, text: string): string => {
    const path = join(tmp.path, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
    return path;
  };
  const error = (name: string, text: string): string => {
    try {
      loadTreefile(write(name, text));
    } catch (e) {
      expect((e as { code?: string }).code).toBe('E_TREEFILE_INVALID');
      return (e as Error).message;
    }
    throw new Error('expected an error');
  };

  it('reads every key, with defaults, resolving paths against the treefile', () => {
    const t = loadTreefile(
      write(
        'full.yaml',
        `ref: os/x86_64/main
repos: [repo-a, /abs/repo-b]
packages:
  - bash coreutils
  - kernel
exclude-packages: [nano]
install-weak-deps: false
arch: x86_64
remove-files: [usr/share/doc/*]
remove-from-packages:
  - [filesystem, "^/usr/share/backgrounds/.*"]
postprocess-script: post.sh
postprocess:
  - |
    #!/bin/sh
    echo hi
add-commit-metadata: {vendor: Example, build: 7, beta: true}
units: [sshd.service]
default-target: multi-user.target
etc-group-members: [wheel]
initramfs: {generator: dracut, args: [--no-hostonly]}
container: false
automatic-version-prefix: "40"
`,
      ),
    );
    expect(t.ref).toBe('os/x86_64/main');
    expect(t.repos).toEqual([join(tmp.path, 'repo-a'), '/abs/repo-b']);
    expect(t.packages).toEqual(['bash', 'coreutils', 'kernel']);
    expect(t.installWeakDeps).toBe(false);
    expect(t.removeFromPackages).toEqual([['filesystem', '^/usr/share/backgrounds/.*']]);
    expect(t.postprocessScript).toBe(join(tmp.path, 'post.sh'));
    expect(t.postprocess[0]).toContain('echo hi');
    expect([...t.addCommitMetadata]).toEqual([
      ['vendor', 'Example'],
      ['build', 7],
      ['beta', true],
    ]);
    expect(t.initramfs).toEqual({ generator: 'dracut', args: ['--no-hostonly'] });
    expect(t.automaticVersionPrefix).toBe('40');
    expect(t.version).toBeNull();
    expect(t.sources.map((s) => s.path)).toEqual([join(tmp.path, 'full.yaml')]);
  });

  it('defaults: weak deps on, not a container', () => {
    const t = loadTreefile(write('min.json', JSON.stringify({ ref: 'a/b', repos: ['r'], packages: ['p'] })));
    expect(t.installWeakDeps).toBe(true);
    expect(t.container).toBe(false);
    expect(t.units).toEqual([]);
  });

  it('merges includes: lists concatenate, the including file wins for scalars', () => {
    write(
      'inc/base.yaml',
      'ref: base/ref\nrepos: [repo]\npackages: [bash]\nunits: [a.service]\nadd-commit-metadata: {x: 1, y: 2}\n',
    );
    const t = loadTreefile(
      write('top.yaml', 'include: inc/base.yaml\nref: top/ref\npackages: [vim]\nadd-commit-metadata: {y: 3}\n'),
    );
    expect(t.ref).toBe('top/ref');
    expect(t.packages).toEqual(['bash', 'vim']);
    expect(t.repos).toEqual([join(tmp.path, 'inc/repo')]);
    expect([...t.addCommitMetadata]).toEqual([
      ['x', 1],
      ['y', 3],
    ]);
    expect(t.sources.map((s) => s.path)).toEqual([join(tmp.path, 'inc/base.yaml'), join(tmp.path, 'top.yaml')]);
  });

  it.each([
    [
      'unknown key, with its line and a suggestion',
      'ref: a\nrepos: [r]\npakages: [bash]\n',
      /unknown.yaml:3:1: unknown key 'pakages' \(did you mean 'packages'\?\)/,
    ],
    [
      "wrong type, with the value's line",
      'ref: a\nrepos: [r]\npackages: [bash]\ninstall-weak-deps: "yes"\n',
      /:4:20: 'install-weak-deps' must be true or false, got the string "yes"/,
    ],
    [
      'a list item of the wrong type',
      'ref: a\nrepos: [r]\npackages:\n  - bash\n  - 3\n',
      /:5:5: 'packages' must be a list of strings, got number 3/,
    ],
    ['missing ref', 'repos: [r]\npackages: [bash]\n', /'ref' is required/],
    ['no packages', 'ref: a\nrepos: [r]\npackages: []\n', /'packages' is required/],
    ['a bad ref name', 'ref: "a..b"\nrepos: [r]\npackages: [p]\n', /ref|invalid/i],
    ['duplicate keys', 'ref: a\nref: b\nrepos: [r]\npackages: [p]\n', /:2:1: .*[Mm]ap keys must be unique/],
    [
      'a bad regex',
      'ref: a\nrepos: [r]\npackages: [p]\nremove-from-packages: [[pkg, "(unclosed"]]\n',
      /valid regular expressions; "\(unclosed" is not/,
    ],
    ['YAML syntax', 'ref: a\npackages: [bash\n', /:\d+:\d+: /],
    [
      'collections nested deeper than the parser goes',
      `ref: ${'{a: '.repeat(20_000)}1${'}'.repeat(20_000)}\n`,
      /:1:\d+: collections nested too deeply$/,
    ],
    ['not a mapping', '- a\n- b\n', /a treefile is a mapping/],
  ])('refuses %s', (_what, text, message) => {
    const m = error(_what.includes('unknown') ? 'unknown.yaml' : 'bad.yaml', text);
    expect(m).toMatch(message);
  });

  it('resolves an include against the directory of the file that names it', () => {
    write('nest/a/b/leaf.yaml', 'packages: [leaf]\n');
    write('nest/a/mid.yaml', 'include: b/leaf.yaml\npackages: [mid]\n');
    const t = loadTreefile(write('nest/top.yaml', 'include: [a/mid.yaml]\nref: a/b\nrepos: [r]\n'));
    expect(t.packages).toEqual(['leaf', 'mid']);
    expect(t.sources.map((s) => s.path)).toEqual(
      ['nest/a/b/leaf.yaml', 'nest/a/mid.yaml', 'nest/top.yaml'].map((p) => join(tmp.path, p)),
    );
  });

  // An include may name any file: what it holds must not reach a message (exit 2 is printed).
  const SECRET = '$6$rounds=5000$SECRETSALT$SECRETHASH';
  it.each([
    [
      'a shadow(5) file',
      `root:${SECRET}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n`,
      /:1:1: unknown key, not shown/,
    ],
    ['an unexpected token', `ref: a\n]${SECRET}\n`, /:2:1: /],
    ['a bad escape', `ref: "\\q${SECRET}"\n`, /invalid escape sequence/],
    ['a block scalar header', `ref: |x${SECRET}\n  a\n`, /:\d+:\d+: /],
  ])('does not quote the content of %s in its error', (_what, text, message) => {
    write('secret', text);
    const m = error('leaks.yaml', 'include: secret\nref: a\n');
    expect(m).toMatch(message);
    expect(m).not.toMatch(/SECRET|rounds/);
  });

  it('quotes a value at most 40 characters long, escaped', () => {
    const m = error(
      'long.yaml',
      `ref: a\nrepos: [r]\npackages: [p]\ncontainer: "${'x'.repeat(30)}\\u0007${'y'.repeat(30)}"\n`,
    );
    expect(m).toContain(`got the string "${'x'.repeat(30)}\\u0007${'y'.repeat(9)}"…`);
    expect(error('badref.yaml', `ref: "a..b${'z'.repeat(60)}"\nrepos: [r]\npackages: [p]\n`)).toMatch(
      /'ref' is not a valid ref name: "a\.\.bz{36}"…$/,
    );
  });

  it('refuses a treefile that is not UTF-8 text', () => {
    write('latin1.yaml', '');
    writeFileSync(join(tmp.path, 'latin1.yaml'), Buffer.from('ref: caf\xe9\n', 'latin1'));
    expect(() => loadTreefile(join(tmp.path, 'latin1.yaml'))).toThrow(/latin1\.yaml' is not UTF-8 text$/);
  });

  it.each(['/dev/zero', '/dev/null', '/'])('refuses to include %s', (path) => {
    expect(error('special.yaml', `include: ${path}\nref: a\n`)).toMatch(
      new RegExp(`treefile '${path}' \\(included by .*special\\.yaml\\) is not a regular file`),
    );
  });

  it('refuses an include cycle and a missing include, naming the chain', () => {
    write('cy/a.yaml', 'include: b.yaml\nref: a\n');
    write('cy/b.yaml', 'include: a.yaml\n');
    expect(() => loadTreefile(join(tmp.path, 'cy/a.yaml'))).toThrow(/include cycle: .*a\.yaml → .*b\.yaml → .*a\.yaml/);
    expect(() => loadTreefile(write('miss.yaml', 'include: nowhere.yaml\nref: a\n'))).toThrow(
      /nowhere\.yaml' \(included by .*miss\.yaml\) does not exist/,
    );
  });
});
