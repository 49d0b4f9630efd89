// Reading inside a deployment: layout directories with no link followed, files through chroot-style
// links, never a byte of a file outside the root.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quoteText } from '../common/errors.js';
import { readFileInRoot, realDirInRoot, resolveInRoot } from './in-root.js';

const base = mkdtempSync(join(tmpdir(), 'arbor-in-root-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
// A file outside every root below: nothing may read it.
const outside = join(base, 'outside');
mkdirSync(join(outside, 'etc'), { recursive: true });
const CANARY = 'canary-7d1f0c2b-outside-the-root';
writeFileSync(join(outside, 'etc/os-release'), `NAME="${CANARY}"\n`);
writeFileSync(join(outside, 'secret'), `${CANARY}\n`);

/** A deployment root whose `usr` is what `make` puts there. */
function root(name: string, make: (dir: string) => void): string {
  const dir = join(base, name);
  mkdirSync(dir);
  make(dir);
  return dir;
}

describe('resolveInRoot', () => {
  const root = mkdtempSync(join(tmpdir(), 'arbor-resolve-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'usr/sbin'), { recursive: true });
  mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
  writeFileSync(join(root, 'usr/lib/systemd/systemd'), 'x');
  symlinkSync('usr/sbin', join(root, 'sbin'));
  symlinkSync('/usr/lib', join(root, 'lib'));
  symlinkSync('/lib/systemd/systemd', join(root, 'usr/sbin/init'));
  symlinkSync('../../../../../../usr/lib/systemd/systemd', join(root, 'usr/sbin/up'));
  symlinkSync('/etc/passwd', join(root, 'usr/sbin/host-file'));

  it('follows relative and absolute links inside the tree', () => {
    expect(resolveInRoot(root, '/sbin/init')).toEqual({
      ok: true,
      path: join(root, 'usr/lib/systemd/systemd'),
      chain: ['/sbin -> usr/sbin', '/usr/sbin/init -> /lib/systemd/systemd', '/lib -> /usr/lib'],
    });
  });

  it('stops .. at the root of the tree, as a chroot does', () => {
    expect(resolveInRoot(root, '/usr/sbin/up')).toMatchObject({
      ok: true,
      path: join(root, 'usr/lib/systemd/systemd'),
    });
  });

  it('never resolves an absolute target on the host', () => {
    expect(resolveInRoot(root, '/usr/sbin/host-file')).toMatchObject({
      ok: false,
      missing: true,
      why: '/etc does not exist',
    });
  });

  it('reports a file used as a directory, and does not follow the last link when asked not to', () => {
    expect(resolveInRoot(root, '/usr/lib/systemd/systemd/more')).toMatchObject({
      ok: false,
      missing: false,
      why: '/usr/lib/systemd/systemd is not a directory',
    });
    expect(resolveInRoot(root, '/sbin/init', false)).toMatchObject({ ok: true, path: join(root, 'usr/sbin/init') });
  });
});

describe('realDirInRoot', () => {
  it('finds real directories and reports a missing one', () => {
    const r = root('real', (d) => mkdirSync(join(d, 'usr/etc'), { recursive: true }));
    expect(realDirInRoot(r, 'usr/etc')).toEqual({ kind: 'dir', path: join(r, 'usr/etc') });
    expect(realDirInRoot(r, 'etc')).toEqual({ kind: 'missing' });
  });

  it.each<[string, (d: string) => void, string, string]>([
    ['/usr -> /', (d) => symlinkSync('/', join(d, 'usr')), '/usr', "a symlink to '/'"],
    ['/usr -> ../outside', (d) => symlinkSync('../outside', join(d, 'usr')), '/usr', "a symlink to '../outside'"],
    [
      '/usr/etc -> /etc',
      (d) => (mkdirSync(join(d, 'usr')), symlinkSync('/etc', join(d, 'usr/etc'))),
      '/usr/etc',
      "a symlink to '/etc'",
    ],
    [
      '/usr/etc a file',
      (d) => (mkdirSync(join(d, 'usr')), writeFileSync(join(d, 'usr/etc'), '')),
      '/usr/etc',
      'a regular file',
    ],
    ['a target with a newline', (d) => symlinkSync('/x\nfake', join(d, 'usr')), '/usr', "a symlink to '/x\\nfake'"],
  ])('follows no link: %s', (name, make, at, what) => {
    const r = root(`bad-${name.replace(/\W+/g, '-')}`, make);
    expect(realDirInRoot(r, 'usr/etc')).toEqual({ kind: 'not-dir', at, what });
  });
});

describe('readFileInRoot', () => {
  it('resolves absolute and relative links inside the root, never on the host', () => {
    const r = root('files', (d) => {
      mkdirSync(join(d, 'usr/lib'), { recursive: true });
      mkdirSync(join(d, 'etc'));
      writeFileSync(join(d, 'usr/lib/os-release'), 'NAME=inside\n');
      symlinkSync('../usr/lib/os-release', join(d, 'etc/os-release'));
      symlinkSync(join(outside, 'secret'), join(d, 'etc/abs'));
      symlinkSync(`${'../'.repeat(30)}${outside.slice(1)}/secret`, join(d, 'etc/rel'));
      symlinkSync(outside, join(d, 'out'));
    });
    expect(readFileInRoot(r, '/etc/os-release', 1024)?.toString()).toBe('NAME=inside\n');
    for (const path of ['/etc/abs', '/etc/rel', '/out/secret', '/out/etc/os-release'])
      expect(readFileInRoot(r, path, 1024)).toBeNull();
    expect(readFileInRoot(r, '/usr/lib/os-release', 4)).toBeNull();
  });
});

describe('quoteText', () => {
  it('escapes control characters, quotes and backslashes', () => {
    expect(quoteText("a\nb\tc\u001b'\\")).toBe("'a\\nb\\tc\\x1b\\'\\\\'");
  });
});
