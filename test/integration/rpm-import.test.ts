// `arbor rpm import`: every fixture imported and checked out equals what rpm2cpio | cpio extracts
// (content and type), with modes and owners from the header; imports are cached by header digest;
// a corrupted package fails with exit 3 and leaves its ref alone.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, runCli } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import { HAVE_RPMBUILD, PAYLOADS, buildAllFixtures, layoutOf, resign } from './rpm-fixtures.js';

const FIXTURES = ['basic', ...PAYLOADS.map(([c]) => `payload-${c}`), 'source'];
const USERS: Record<string, number> = { root: 0, 'arbor-owner': 1234 };
const GROUPS: Record<string, number> = { root: 0, 'arbor-group': 2345, disk: 6 };

function arbor(...args: string[]): string {
  const r = runCli(args);
  if (r.exitCode !== 0) throw new Error(`arbor ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

interface Entry {
  type: string;
  sha256?: string;
  target?: string;
  rdev?: number;
}

/** Every path under `root` (relative, '/'-separated) with its type and content digest or target. */
function snapshot(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const key = `${rel}/${name}`;
      const st = lstatSync(path);
      if (st.isDirectory()) {
        out.set(key, { type: 'dir' });
        walk(path, key);
      } else if (st.isSymbolicLink()) out.set(key, { type: 'symlink', target: readlinkSync(path) });
      else if (st.isFile())
        out.set(key, { type: 'file', sha256: createHash('sha256').update(readFileSync(path)).digest('hex') });
      else
        out.set(key, {
          type: st.isCharacterDevice() ? 'chr' : st.isBlockDevice() ? 'blk' : st.isFIFO() ? 'fifo' : 'other',
          rdev: st.rdev,
        });
    }
  };
  walk(root, '');
  return out;
}

interface HeaderFile {
  path: string;
  mode: number;
  user: string;
  group: string;
  ghost: boolean;
}

/** The header's file list as rpm reports it (what `rpm -qp --dump` shows, tab-separated here). */
function headerFiles(pkg: string): HeaderFile[] {
  const r = spawnSync(
    'rpm',
    [
      '-qp',
      '--qf',
      '[%{FILENAMES}\\t%{FILEMODES:octal}\\t%{FILEUSERNAME}\\t%{FILEGROUPNAME}\\t%{FILEFLAGS:fflags}\\n]',
      pkg,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`rpm -qp ${pkg}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const [path, mode, user, group, flags] = line.split('\t') as [string, string, string, string, string];
      return { path, mode: Number.parseInt(mode, 8), user, group, ghost: flags.includes('g') };
    });
}

describe.skipIf(!HAVE_RPMBUILD || !IS_ROOT)('arbor rpm import', () => {
  const tmp = useTempDir('arbor-rpm-import-');
  let built: Map<string, string>;
  let repo: string;
  let owners: string[];

  beforeAll(() => {
    built = buildAllFixtures(join(tmp.path, 'build'));
    repo = join(tmp.path, 'repo');
    arbor('init', '--repo', repo);
    writeFileSync(
      join(tmp.path, 'passwd'),
      Object.entries(USERS)
        .map(([n, id]) => `${n}:x:${id}:${id}::/:/bin/sh\n`)
        .join(''),
    );
    writeFileSync(
      join(tmp.path, 'group'),
      Object.entries(GROUPS)
        .map(([n, id]) => `${n}:x:${id}:\n`)
        .join(''),
    );
    owners = ['--passwd', join(tmp.path, 'passwd'), '--group', join(tmp.path, 'group')];
  }, 120_000);

  it.each(FIXTURES)(
    '%s: the checked-out import equals the rpm2cpio extraction, modes and owners from the header',
    (fixture) => {
      const pkg = built.get(fixture)!;
      const [line, ...rest] = arbor('rpm', 'import', '--repo', repo, ...owners, pkg)
        .trim()
        .split('\n');
      expect(rest).toEqual([]);
      const [ref, commit] = line!.split(' ') as [string, string];
      expect(ref).toMatch(/^pkg\//);
      expect(arbor('rev-parse', '--repo', repo, ref).trim()).toBe(commit);

      const co = join(tmp.path, `co-${fixture}`);
      arbor('checkout', '--repo', repo, '--copy', ref, co);
      const ex = join(tmp.path, `cpio-${fixture}`);
      mkdirSync(ex);
      const r = spawnSync('sh', ['-c', `rpm2cpio "${pkg}" | cpio -idm --quiet --no-absolute-filenames`], {
        cwd: ex,
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const got = snapshot(co);
      const want = snapshot(ex);
      expect([...got.keys()]).toEqual([...want.keys()]);
      expect(got).toEqual(want);

      const files = headerFiles(pkg);
      expect(files.length).toBeGreaterThan(0);
      expect(got.size).toBeGreaterThanOrEqual(files.filter((f) => !f.ghost).length);
      for (const file of files) {
        const path = join(co, file.path.startsWith('/') ? file.path : `/${file.path}`);
        if (file.ghost) {
          expect(() => lstatSync(path), file.path).toThrow();
          continue;
        }
        const st = lstatSync(path);
        expect({ path: file.path, mode: st.mode, uid: st.uid, gid: st.gid }).toEqual({
          path: file.path,
          mode: file.mode,
          uid: USERS[file.user],
          gid: GROUPS[file.group],
        });
      }
      const meta = JSON.parse(arbor('show', '--repo', repo, '--json', ref)) as unknown;
      expect(JSON.stringify(meta)).toContain('rpm.header-sha256');
      // %caps become the security.capability xattr, read back by the real getcap(8).
      if (fixture === 'basic') {
        const caps = spawnSync('getcap', [join(co, 'usr/bin/arbor-cap')], { encoding: 'utf8' });
        expect(caps.stdout).toMatch(/arbor-cap cap_net_raw=ep/);
      }
    },
  );

  it('keeps hardlink sets as one object', () => {
    const ref = arbor('rpm', 'import', '--repo', repo, built.get('payload-gzip')!).trim().split(' ')[0]!;
    const co = join(tmp.path, 'co-hardlinks');
    arbor('checkout', '--repo', repo, ref, co);
    const a = lstatSync(join(co, 'usr/share/arbor-payload/hello.txt'));
    const b = lstatSync(join(co, 'usr/share/arbor-payload/dir/hello-link.txt'));
    expect(a.ino).toBe(b.ino);
  });

  it('streams a file bigger than the in-memory limit through a spill file', () => {
    const dir = join(tmp.path, 'big');
    mkdirSync(dir);
    const spec = join(dir, 'big.spec');
    writeFileSync(
      spec,
      [
        'Name: arbor-big',
        'Version: 1',
        'Release: 1',
        'Summary: big',
        'License: MIT',
        'BuildArch: noarch',
        '%define _binary_payload w1.gzdio',
        '%description',
        'big',
        '%install',
        'mkdir -p %{buildroot}/opt',
        'seq 1 900000 > %{buildroot}/opt/big.txt',
        '%files',
        '/opt/big.txt',
        '',
      ].join('\n'),
    );
    const b = spawnSync(
      'rpmbuild',
      [
        '-bb',
        '--quiet',
        '--define',
        `_topdir ${dir}/top`,
        '--define',
        `_rpmdir ${dir}/rpms`,
        '--define',
        '_build_name_fmt %{NAME}.rpm',
        spec,
      ],
      { encoding: 'utf8' },
    );
    expect(b.status, b.stderr).toBe(0);
    const [ref] = arbor('rpm', 'import', '--repo', repo, join(dir, 'rpms/arbor-big.rpm')).trim().split(' ') as [string];
    const co = join(tmp.path, 'co-big');
    arbor('checkout', '--repo', repo, '--copy', ref, co);
    const seq = spawnSync('seq', ['1', '900000'], { maxBuffer: 64 * 1024 * 1024 }).stdout as Buffer;
    expect(seq.length).toBeGreaterThan(4 * 1024 * 1024);
    expect(readFileSync(join(co, 'opt/big.txt')).equals(seq)).toBe(true);
    expect(readdirSync(join(repo, 'tmp')).filter((n) => n.startsWith('staging'))).toEqual([]);
  });

  it('reports a package imported before as cached and makes no new commit', () => {
    const pkg = built.get('payload-xz')!;
    const first = JSON.parse(arbor('rpm', 'import', '--repo', repo, '--json', pkg)) as {
      ref: string;
      commit: string;
      cached: boolean;
    }[];
    const second = JSON.parse(arbor('rpm', 'import', '--repo', repo, '--json', pkg)) as {
      ref: string;
      commit: string;
      cached: boolean;
    }[];
    expect(second).toEqual([{ ...first[0]!, cached: true }]);
    expect(arbor('rev-parse', '--repo', repo, first[0]!.ref).trim()).toBe(first[0]!.commit);
    expect(arbor('rpm', 'import', '--repo', repo, pkg).trim()).toBe(`${first[0]!.ref} ${first[0]!.commit}`);
  });

  it('names the package and path when an owner is unknown', () => {
    const r = runCli(['rpm', 'import', '--repo', repo, built.get('basic')!]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/E_RPM_OWNER.*arbor-basic\.rpm.*'\/(dev|usr|var|etc)\//);
  });

  it('fails with exit 3 on a corrupted package and leaves the ref unchanged', () => {
    const pkg = built.get('payload-none')!;
    const [ref, commit] = arbor('rpm', 'import', '--repo', repo, pkg).trim().split(' ') as [string, string];
    const original = readFileSync(pkg);
    const bytes = Buffer.from(original);
    const at = bytes.indexOf('19999\n20000', layoutOf(bytes).payloadStart);
    expect(at).toBeGreaterThan(0);
    bytes.write('19999\n2000X', at, 'latin1');
    // Re-signed: the header digest changes (no cache hit), the file's digest no longer matches.
    const edited = join(tmp.path, 'edited.rpm');
    writeFileSync(edited, resign(bytes, original));
    const r = runCli(['rpm', 'import', '--repo', repo, edited]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/E_RPM_DIGEST.*numbers\.txt/);
    expect(arbor('rev-parse', '--repo', repo, ref).trim()).toBe(commit);

    // Not re-signed, into a fresh repository: the ref never appears.
    const fresh = join(tmp.path, 'fresh');
    arbor('init', '--repo', fresh);
    const flipped = join(tmp.path, 'flipped.rpm');
    writeFileSync(flipped, bytes);
    const f = runCli(['rpm', 'import', '--repo', fresh, flipped]);
    expect(f.exitCode).toBe(3);
    expect(arbor('refs', '--repo', fresh).trim()).toBe('');
  });
});
