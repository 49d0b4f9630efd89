// `arbor rpm info|ls|check` against packages rpmbuild makes from fixtures/rpm/*.spec, compared with
// what rpm itself says about them, and against truncated, corrupted and edited packages.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import { encodeHeader, headerFields } from '../../src/rpm-compose/rpm/header.js';
import { DEPENDENCY_KINDS } from '../../src/rpm-compose/rpm/package.js';
import { readRpmHead } from '../../src/rpm-compose/rpm/read.js';
import { Tag } from '../../src/rpm-compose/rpm/tags.js';
import { HAVE_RPMBUILD, PAYLOADS, buildAllFixtures, layoutOf, resign, stringOffset } from './rpm-fixtures.js';

const FIXTURES = ['basic', ...PAYLOADS.map(([c]) => `payload-${c}`), 'source'];

function rpm(...args: string[]): string {
  const r = spawnSync('rpm', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rpm ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

interface Listing {
  path: string;
  size: number;
  mtime: number;
  digest: string | null;
  mode: number;
  owner: string;
  group: string;
  isConfig: boolean;
  isDoc: boolean;
  rdev: number;
  linkTo: string | null;
  caps: string | null;
  flags: string[];
}

/** Parses `rpm -qp --dump` with the paths known (they and link targets may hold spaces). */
function parseDump(text: string, paths: readonly string[]): Omit<Listing, 'caps' | 'flags'>[] {
  const lines = text.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(paths.length);
  return lines.map((line, i) => {
    const path = paths[i]!;
    expect(line.startsWith(`${path} `)).toBe(true);
    const f = line.slice(path.length + 1).split(' ');
    const link = f.slice(9).join(' ');
    return {
      path,
      size: Number(f[0]),
      mtime: Number(f[1]),
      digest: /^0+$/.test(f[2]!) ? null : f[2]!,
      mode: Number.parseInt(f[3]!, 8),
      owner: f[4]!,
      group: f[5]!,
      isConfig: f[6] === '1',
      isDoc: f[7] === '1',
      rdev: Number(f[8]),
      linkTo: link === 'X' ? null : link,
    };
  });
}

describe.skipIf(!HAVE_RPMBUILD)('arbor rpm on packages built from fixtures/rpm', () => {
  const dir = useTempDir('arbor-rpm-');
  let built: Map<string, string>;
  const pkgPath = (name: string): string => built.get(name)!;
  beforeAll(() => {
    built = buildAllFixtures(dir.path);
  });

  it.each(FIXTURES)('ls --json of %s equals rpm -qp --dump field by field', (name) => {
    const result = runCli(['rpm', 'ls', '--json', pkgPath(name)]);
    expect(result).toMatchObject({ exitCode: 0, stderr: '' });
    const listing = JSON.parse(result.stdout) as Listing[];
    const expected = parseDump(
      rpm('-qp', '--dump', pkgPath(name)),
      listing.map((l) => l.path),
    );
    expect(listing.map(({ caps: _c, flags: _f, ...rest }) => rest)).toEqual(expected);
  });

  it.each(FIXTURES)('ls of %s prints exactly what rpm -qp --dump prints', (name) => {
    expect(runCli(['rpm', 'ls', pkgPath(name)])).toMatchObject({
      exitCode: 0,
      stdout: rpm('-qp', '--dump', pkgPath(name)),
      stderr: '',
    });
  });

  it.each(FIXTURES)('check of %s reads every payload entry and finds every digest right', (name) => {
    const result = runCli(['rpm', 'check', pkgPath(name)]);
    expect(result).toMatchObject({ exitCode: 0, stderr: '' });
    expect(result.stdout).toMatch(/: ok \(\d+ entries, \d+ payload bytes\)\n {2}signatures: none\n$/);
  });

  it.each(FIXTURES)('info --json of %s names the package and its dependencies as rpm does', (name) => {
    const path = pkgPath(name);
    const result = runCli(['rpm', 'info', '--json', path]);
    expect(result).toMatchObject({ exitCode: 0, stderr: '' });
    const [info] = JSON.parse(result.stdout) as Record<string, any>[];
    const [n, e, v, r, a, compressor] = rpm(
      '-qp',
      '--qf',
      '%{NAME}\\n%{EPOCH}\\n%{VERSION}\\n%{RELEASE}\\n%{ARCH}\\n%{PAYLOADCOMPRESSOR}',
      path,
    ).split('\n');
    expect(info).toMatchObject({ name: n, version: v, release: r, arch: a });
    expect(info!.epoch ?? '(none)').toEqual(e === '(none)' ? '(none)' : Number(e));
    expect(info!.payload.compressor ?? '(none)').toBe(compressor);
    for (const kind of DEPENDENCY_KINDS) {
      const ours = (info!.dependencies[kind] as { name: string; cmp?: string; evr?: string }[]).map(
        (d) => `${d.name}${d.cmp ? ` ${d.cmp} ${d.evr}` : ''}`,
      );
      expect(ours, kind).toEqual(
        rpm('-qp', `--${kind}`, path)
          .split('\n')
          .filter((l) => l !== ''),
      );
    }
  });

  it('reads owners, setuid, devices, capabilities, flags, hardlinks and UTF-8 names of the basic fixture', () => {
    const listing = JSON.parse(runCli(['rpm', 'ls', '--json', pkgPath('basic')]).stdout) as Listing[];
    const byPath = new Map(listing.map((l) => [l.path, l]));
    expect(byPath.get('/usr/bin/arbor-suid')).toMatchObject({
      mode: 0o104755,
      owner: 'arbor-owner',
      group: 'arbor-group',
    });
    expect(byPath.get('/usr/bin/arbor-cap')).toMatchObject({ caps: 'cap_net_raw=ep' });
    expect(byPath.get('/dev/arbor-null')).toMatchObject({ mode: 0o020666, rdev: 0x0103 });
    expect(byPath.get('/etc/arbor/keep.conf')).toMatchObject({ isConfig: true, flags: ['config', 'noreplace'] });
    expect(byPath.get('/var/log/arbor.log')).toMatchObject({ flags: ['ghost'], digest: null });
    expect(byPath.get('/usr/share/arbor/LICENSE')).toMatchObject({ flags: ['license'] });
    expect(byPath.get('/usr/share/arbor/héllo wörld ✓.txt')).toMatchObject({ size: 8 });
    expect(byPath.get('/usr/share/arbor/dangling')).toMatchObject({ linkTo: '/nonexistent/target' });
    const links = ['/usr/share/arbor/link-one', '/usr/share/arbor/link-two', '/usr/share/arbor/sub/link-three'].map(
      (p) => byPath.get(p)!.digest,
    );
    expect(new Set(links).size).toBe(1);
  });

  it('reads scriptlets with their interpreters, triggers and rich dependencies of the basic fixture', () => {
    const [info] = JSON.parse(runCli(['rpm', 'info', '--json', pkgPath('basic')]).stdout) as Record<string, any>[];
    expect(info!.scripts).toMatchObject({
      pretrans: { body: 'print("pretrans")', interpreter: ['<lua>'] },
      prein: { body: 'echo pre "$1"', interpreter: ['/bin/sh'] },
      postun: { body: '', interpreter: ['/sbin/ldconfig'] },
    });
    expect(info!.triggers).toEqual([
      expect.objectContaining({ type: 'package', when: 'in', name: 'arbor-a', cmp: '>=', evr: '1.0' }),
      expect.objectContaining({
        type: 'package',
        when: 'un',
        name: 'arbor-b',
        script: expect.objectContaining({ interpreter: ['/bin/bash'] }),
      }),
      expect.objectContaining({ type: 'file', when: 'in', name: '/usr/lib/arbor-plugins', priority: 100 }),
    ]);
    const rich = (info!.dependencies.requires as { name: string; rich?: unknown }[]).find((d) =>
      d.name.startsWith('((arbor-c'),
    );
    expect(rich?.rich).toEqual({
      op: 'if',
      then: {
        op: 'and',
        args: [
          { op: 'dep', name: 'arbor-c' },
          { op: 'dep', name: 'arbor-d' },
        ],
      },
      cond: { op: 'dep', name: 'arbor-e' },
      else: { op: 'dep', name: 'arbor-f' },
    });
    expect(info).toMatchObject({
      epoch: 3,
      version: '1.2~rc1^git20260101',
      license: 'MIT',
      fileCount: 21,
      ghostCount: 1,
    });
  });

  it.each(FIXTURES)("re-encoding the decoded headers of %s gives rpmbuild's bytes back", async (name) => {
    const head = await readRpmHead(pkgPath(name));
    expect(encodeHeader(headerFields(head.header), head.header.region?.tag)).toEqual(head.header.bytes);
    expect(encodeHeader(headerFields(head.signature), head.signature.region?.tag)).toEqual(head.signature.bytes);
  });

  it('prints one block per package for several files', () => {
    const result = runCli(['rpm', 'info', pkgPath('payload-xz'), pkgPath('payload-zstd')]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.match(/^Name {8}: /gm)).toHaveLength(2);
  });

  describe('bad packages', () => {
    const edit = (name: string, label: string, change: (bytes: Buffer) => Buffer): string => {
      const target = join(dir.path, `${label}.rpm`);
      writeFileSync(target, change(readFileSync(pkgPath(name))));
      return target;
    };
    const expectFailure = (args: string[], exitCode: number, code: string, mention: RegExp): void => {
      const result = runCli(args);
      expect(result, result.stderr).toMatchObject({ exitCode, stdout: '' });
      expect(result.stderr).toMatch(new RegExp(`^error\\[${code}\\]: `));
      expect(result.stderr).toMatch(mention);
    };

    it.each([
      ['a file cut inside the payload', (b: Buffer) => b.subarray(0, b.length - 100), /truncated in the payload/],
      [
        'a file cut inside the header',
        (b: Buffer) => b.subarray(0, layoutOf(b).headerStart + 40),
        /truncated in the header/,
      ],
      ['a file cut inside the lead', (b: Buffer) => b.subarray(0, 50), /truncated in the lead/],
      ['bytes after the payload', (b: Buffer) => Buffer.concat([b, Buffer.from('junk')]), /4 bytes after the payload/],
      ['a wrong lead magic', (b: Buffer) => Buffer.concat([Buffer.from([0]), b.subarray(1)]), /not an RPM package/],
      ['a wrong header magic', (b: Buffer) => flip(b, layoutOf(b).headerStart), /bad header magic/],
      [
        'an index count beyond the file',
        (b: Buffer) => setU32(b, layoutOf(b).headerStart + 8, 60000),
        /truncated in the header|beyond|out of range/,
      ],
      [
        'a flipped byte in the header data',
        (b: Buffer) => flip(b, layoutOf(b).payloadStart - 20),
        /header SHA-256 mismatch/,
      ],
    ])('exits 3 naming the package for %s', (label, change, mention) => {
      const path = edit('payload-gzip', label.replace(/ /g, '-'), change);
      expectFailure(
        ['rpm', 'ls', path],
        3,
        'E_RPM_(MALFORMED|DIGEST)',
        new RegExp(`package '${path.replace(/[.^]/g, '\\$&')}'[^]*${mention.source}`),
      );
    });

    it.each(PAYLOADS.map(([c]) => c))('check exits 3 when a byte of the %s payload is flipped', (compressor) => {
      const path = edit(`payload-${compressor}`, `flipped-${compressor}`, (b) => flip(b, b.length - 30));
      expect(runCli(['rpm', 'ls', path]).exitCode).toBe(0); // the header is intact
      expectFailure(['rpm', 'check', path], 3, 'E_RPM_(PAYLOAD|DIGEST)', /package '.*flipped/);
    });

    // The uncompressed fixture can be edited in place and re-signed, which reaches the checks
    // behind the payload digests: every case below passes the header and payload digests.
    const editPayload = (label: string, from: string, to: string): string =>
      edit('payload-none', label, (original) => {
        const bytes = Buffer.from(original);
        const at = bytes.indexOf(from, layoutOf(bytes).payloadStart);
        expect(at).toBeGreaterThan(0);
        bytes.write(to, at, 'latin1');
        return resign(bytes, original);
      });

    it('exits 3 naming the path when a file content does not match its digest', () => {
      const path = editPayload('content', '19999\n20000', '19999\n2000X');
      expectFailure(
        ['rpm', 'check', path],
        3,
        'E_RPM_DIGEST',
        /digest mismatch in '\/usr\/share\/arbor-payload\/dir\/numbers\.txt'/,
      );
    });

    it.each([
      [
        'a .. component',
        '../sr/',
        /'\.\.\/sr\/share\/arbor-payload\/empty' has an empty, '\.' or '\.\.' path component/,
      ],
      ['an absolute path', '/usr/s', /'\/usr\/sshare\/arbor-payload\/empty' has an absolute path|not in the header/],
      ['a name not in the header', './usx/', /'\.\/usx\/share\/arbor-payload\/empty' is not in the header's file list/],
    ])('exits 3 when a cpio name has %s', (_label, replacement, mention) => {
      const path = editPayload(
        `name-${replacement.replace(/[./]/g, '_')}`,
        './usr/share/arbor-payload/empty',
        `${replacement}share/arbor-payload/empty`,
      );
      expectFailure(['rpm', 'check', path], 3, 'E_RPM_PAYLOAD', mention);
    });

    it('exits 3 when a cpio name holds a NUL byte', () => {
      const path = editPayload('name-nul', './usr/share/arbor-payload/empty', './usr/share/arbor-payload/em\0ty');
      expectFailure(['rpm', 'check', path], 3, 'E_RPM_PAYLOAD', /cpio name contains a NUL byte/);
    });

    it('exits 1 for an unknown payload compressor, naming it', () => {
      const path = edit('payload-xz', 'unknown-compressor', (original) => {
        const bytes = Buffer.from(original);
        bytes.write('xy', stringOffset(bytes, Tag.PayloadCompressor), 'latin1');
        return resign(bytes, original);
      });
      expectFailure(['rpm', 'check', path], 1, 'E_RPM_UNSUPPORTED', /unknown payload compressor 'xy'/);
    });

    it('exits 1 naming a package that does not exist', () => {
      expectFailure(['rpm', 'info', join(dir.path, 'missing.rpm')], 1, 'E_IO', /missing\.rpm/);
    });

    it('refuses a copy that rpm also refuses, and accepts one it accepts', () => {
      const copy = join(dir.path, 'copy.rpm');
      copyFileSync(pkgPath('basic'), copy);
      expect(runCli(['rpm', 'check', copy]).exitCode).toBe(0);
      truncateSync(copy, 200);
      expect(spawnSync('rpm', ['-qp', copy]).status).not.toBe(0);
      expect(runCli(['rpm', 'check', copy]).exitCode).toBe(3);
    });
  });
});

function flip(bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes);
  out[at] = out[at]! ^ 0xff;
  return out;
}

function setU32(bytes: Buffer, at: number, value: number): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt32BE(value, at);
  return out;
}
