// repomd.xml, primary.xml and filelists.xml written here by hand: entities and CDATA, xml:base,
// every compressor by its magic bytes, ordering of records, and each way bad metadata is refused
// (file and line named; nothing handed out before the checksum is known to match).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ArborError, CorruptionError } from '../../common/errors.js';
import { streamFilelists, streamPrimary } from './primary.js';
import type { FilelistsPackage, RepoPackage } from './records.js';
import { readRepomd } from './repomd.js';

const root = mkdtempSync(join(tmpdir(), 'arbor-repodata-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let repoCount = 0;

const PKG = (name: string, extra = ''): string => `<package type="rpm">
  <name>${name}</name>
  <arch>x86_64</arch>
  <version epoch="2" ver="1.0" rel="3.fc40"/>
  <checksum type="sha256" pkgid="YES">${createHash('sha256').update(name).digest('hex')}</checksum>
  <summary>${name} summary</summary>
  <description>long text that is not kept</description>
  <size package="100" installed="200" archive="300"/>
  <location href="Packages/${name}.rpm"/>
  <format>
    <rpm:sourcerpm>${name}-1.0-3.fc40.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="4504" end="9000"/>
    <rpm:provides><rpm:entry name="${name}" flags="EQ" epoch="2" ver="1.0" rel="3.fc40"/></rpm:provides>
    ${extra}
  </format>
</package>`;

const primaryXml = (packages: string[], count = packages.length): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="${count}">\n${packages.join('\n')}\n</metadata>\n`;

interface RepoSpec {
  primary: string | Buffer;
  filelists?: string;
  compress?: (b: Buffer) => Buffer;
  /** Rewrites repomd.xml's text before it is written. */
  editRepomd?: (xml: string) => string;
  /** Replaces the primary file after repomd.xml was made. */
  corrupt?: (b: Buffer) => Buffer;
}

/** A repository directory with repomd.xml listing the given files (sha256 and size). */
function writeRepo(spec: RepoSpec): string {
  const dir = join(root, `repo-${++repoCount}`);
  mkdirSync(join(dir, 'repodata'), { recursive: true });
  const entries: string[] = [];
  const files: [string, string | Buffer | undefined][] = [
    ['primary', spec.primary],
    ['filelists', spec.filelists],
  ];
  for (const [type, content] of files) {
    if (content === undefined) continue;
    const bytes = (spec.compress ?? ((b) => b))(Buffer.from(content));
    const href = `repodata/${type}.xml.data`;
    writeFileSync(join(dir, href), type === 'primary' && spec.corrupt ? spec.corrupt(bytes) : bytes);
    entries.push(`  <data type="${type}">
    <checksum type="sha256">${createHash('sha256').update(bytes).digest('hex')}</checksum>
    <location href="${href}"/>
    <timestamp>1712000000</timestamp>
    <size>${bytes.length}</size>
  </data>`);
  }
  const repomd = `<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo">\n  <revision>42</revision>\n${entries.join('\n')}\n</repomd>\n`;
  writeFileSync(join(dir, 'repodata/repomd.xml'), (spec.editRepomd ?? ((x) => x))(repomd));
  return dir;
}

async function primaryOf(dir: string): Promise<RepoPackage[]> {
  const out: RepoPackage[] = [];
  await streamPrimary(dir, await readRepomd(dir), (p) => void out.push(p));
  return out;
}

async function failure(promise: Promise<unknown>): Promise<ArborError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ArborError);
  return error as ArborError;
}

describe('streamPrimary', () => {
  it('reads every field of a package, decoding entities and CDATA', async () => {
    const deps = `<rpm:requires>
      <rpm:entry name="(a &gt;= 1 or b)"/>
      <rpm:entry name="libc.so.6()(64bit)"/>
      <rpm:entry name="sh" pre="1"/>
      <rpm:entry name="c" flags="LT" epoch="1" ver="2.0"/>
    </rpm:requires>
    <rpm:conflicts><rpm:entry name="old" flags="LE" epoch="0" ver="1" rel="2"/></rpm:conflicts>
    <rpm:suggests><rpm:entry name="&#x263A;&amp;more"/></rpm:suggests>
    <file>/usr/bin/tool</file>
    <file type="dir">/etc/tool.d</file>
    <file type="ghost"><![CDATA[/etc/<ghost>]]></file>`;
    const [pkg, ...rest] = await primaryOf(writeRepo({ primary: primaryXml([PKG('tool', deps)]) }));
    expect(rest).toEqual([]);
    expect(pkg).toEqual({
      name: 'tool',
      arch: 'x86_64',
      epoch: 2,
      version: '1.0',
      release: '3.fc40',
      summary: 'tool summary',
      location: { href: 'Packages/tool.rpm', base: null },
      checksum: { type: 'sha256', value: createHash('sha256').update('tool').digest('hex'), pkgid: true },
      sizes: { packageBytes: 100, installedBytes: 200, archiveBytes: 300 },
      sourceRpm: 'tool-1.0-3.fc40.src.rpm',
      headerRange: { start: 4504, end: 9000 },
      dependencies: {
        provides: [{ name: 'tool', flags: 'EQ', epoch: 2, ver: '1.0', rel: '3.fc40', pre: false }],
        requires: [
          { name: '(a >= 1 or b)', flags: null, epoch: null, ver: null, rel: null, pre: false },
          { name: 'libc.so.6()(64bit)', flags: null, epoch: null, ver: null, rel: null, pre: false },
          { name: 'sh', flags: null, epoch: null, ver: null, rel: null, pre: true },
          { name: 'c', flags: 'LT', epoch: 1, ver: '2.0', rel: null, pre: false },
        ],
        conflicts: [{ name: 'old', flags: 'LE', epoch: 0, ver: '1', rel: '2', pre: false }],
        obsoletes: [],
        recommends: [],
        suggests: [{ name: '☺&more', flags: null, epoch: null, ver: null, rel: null, pre: false }],
        supplements: [],
        enhances: [],
      },
      files: [
        { path: '/usr/bin/tool', type: 'file' },
        { path: '/etc/tool.d', type: 'dir' },
        { path: '/etc/<ghost>', type: 'ghost' },
      ],
      filesComplete: false,
    });
  });

  it.each<[string, (b: Buffer) => Buffer]>([
    ['plain', (b) => b],
    ['gzip', (b) => gzipSync(b)],
  ])('finds the compressor by magic bytes, not by name (%s)', async (_name, compress) => {
    const packages = await primaryOf(writeRepo({ primary: primaryXml([PKG('a'), PKG('b')]), compress }));
    expect(packages.map((p) => p.name)).toEqual(['a', 'b']);
  });

  it('awaits an async consumer before handing out the next package', async () => {
    const dir = writeRepo({ primary: primaryXml(['a', 'b', 'c', 'd'].map((n) => PKG(n))) });
    const events: string[] = [];
    const count = await streamPrimary(dir, await readRepomd(dir), async (p) => {
      events.push(`start ${p.name}`);
      await new Promise((resolve) => setImmediate(resolve));
      events.push(`end ${p.name}`);
    });
    expect(count).toBe(4);
    expect(events).toEqual(['a', 'b', 'c', 'd'].flatMap((n) => [`start ${n}`, `end ${n}`]));
  });

  it('keeps xml:base of a location', async () => {
    const xml = primaryXml([
      PKG('a').replace('<location href', '<location xml:base="https://mirror.example/f40" href'),
    ]);
    const [pkg] = await primaryOf(writeRepo({ primary: xml }));
    expect(pkg!.location).toEqual({ href: 'Packages/a.rpm', base: 'https://mirror.example/f40' });
  });

  it('hands out no package when the checksum does not match, and names file, expected and actual', async () => {
    const dir = writeRepo({
      primary: primaryXml([PKG('a')]),
      corrupt: (b) => Buffer.from(b.toString().replace('<name>a<', '<name>b<')),
    });
    const seen: string[] = [];
    const error = await failure(
      readRepomd(dir).then((repomd) => streamPrimary(dir, repomd, (p) => void seen.push(p.name))),
    );
    expect(error).toBeInstanceOf(CorruptionError);
    expect(error.code).toBe('E_REPODATA_CHECKSUM');
    expect(error.message).toMatch(
      /^repodata '.*\/repodata\/primary\.xml\.data' has sha256 [0-9a-f]{64}, repomd\.xml says [0-9a-f]{64}$/,
    );
    expect(seen).toEqual([]);
  });

  it('reports a size that differs from repomd.xml as E_REPODATA_CHECKSUM', async () => {
    const dir = writeRepo({ primary: primaryXml([PKG('a')]), corrupt: (b) => Buffer.concat([b, Buffer.from(' ')]) });
    const error = await failure(readRepomd(dir).then((repomd) => streamPrimary(dir, repomd, () => {})));
    expect(error.code).toBe('E_REPODATA_CHECKSUM');
    expect(error.message).toMatch(/is \d+ bytes, repomd\.xml says \d+$/);
  });

  it.each<[string, string, RegExp]>([
    [
      'a mismatched close tag',
      primaryXml([PKG('a')]).replace('</summary>', '</name>'),
      /line 8: unexpected close tag$/,
    ],
    ['a truncated document', primaryXml([PKG('a')]).slice(0, 300), /line \d+: unclosed tag: /],
    ['an unknown entity', primaryXml([PKG('a')]).replace('a summary', 'a &nbsp; summary'), /line 8: undefined entity$/],
    ['text after the root', `${primaryXml([PKG('a')])}<x/>`, /documents may contain only one root/],
    ['another root element', '<filelists/>', /line 1: the root element is <filelists>, not <metadata>/],
    [
      'bad dependency flags',
      primaryXml([PKG('a', '<rpm:requires>\n<rpm:entry name="x" flags="NE"/></rpm:requires>')]),
      /line 17: <rpm:entry name="x"> has flags 'NE'/,
    ],
    [
      'an entry without a name',
      primaryXml([PKG('a', '<rpm:requires><rpm:entry flags="EQ"/></rpm:requires>')]),
      /an <rpm:entry> has no name attribute/,
    ],
    [
      'a non-numeric epoch',
      primaryXml([PKG('a').replace('epoch="2"', 'epoch="x"')]),
      /line 6: epoch 'x' is not a non-negative integer/,
    ],
    ['a package without <name>', primaryXml([PKG('a').replace('<name>a</name>', '')]), /a <package> has no <name>/],
    [
      'a bad file type',
      primaryXml([PKG('a', '<file type="socket">/x</file>')]),
      /<file type="socket"> is not file, dir or ghost/,
    ],
    ['a wrong package count', primaryXml([PKG('a')], 2), /<metadata packages="2"> but the file holds 1 packages/],
    [
      'an href outside the repository',
      primaryXml([PKG('a').replace('Packages/a.rpm', '../../etc/passwd')]),
      /location href '..\/..\/etc\/passwd' is not a relative path inside the repository/,
    ],
    [
      'a short package checksum',
      primaryXml([PKG('a').replace(/>[0-9a-f]{64}</, '>abc<')]),
      /sha256 checksum 'abc' is not 64 hex digits/,
    ],
  ])('fails with E_REPODATA_INVALID, naming file and line, on %s', async (_what, xml, message) => {
    const error = await failure(primaryOf(writeRepo({ primary: xml })));
    expect(error).toBeInstanceOf(CorruptionError);
    expect(error.code).toBe('E_REPODATA_INVALID');
    expect(error.message).toMatch(/^repodata '.*\/repodata\/primary\.xml\.data': line \d+: /);
    expect(error.message).toMatch(message);
  });

  it('rejects bytes that are not UTF-8', async () => {
    const xml = Buffer.concat([
      Buffer.from(primaryXml([PKG('a')]).slice(0, 200)),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(primaryXml([PKG('a')]).slice(200)),
    ]);
    const error = await failure(primaryOf(writeRepo({ primary: xml })));
    expect(error.message).toMatch(/line \d+: the text is not valid UTF-8$/);
  });

  it('reports a gzip stream cut short (with a matching checksum) as undecompressible', async () => {
    const error = await failure(
      primaryOf(
        writeRepo({ primary: primaryXml([PKG('a'), PKG('b')]), compress: (b) => gzipSync(b).subarray(0, 200) }),
      ),
    );
    expect(error.code).toBe('E_REPODATA_INVALID');
    expect(error.message).toMatch(/^repodata '.*primary\.xml\.data': cannot decompress \(gzip\): /);
  });

  it('refuses an unknown checksum type as unsupported', async () => {
    const dir = writeRepo({ primary: primaryXml([PKG('a').replace('type="sha256"', 'type="blake2"')]) });
    const error = await failure(primaryOf(dir));
    expect(error.code).toBe('E_REPODATA_UNSUPPORTED');
    expect(error.exit).toBe(1);
  });
});

describe('readRepomd', () => {
  it('reads each data entry and the revision', async () => {
    const dir = writeRepo({ primary: primaryXml([]), filelists: '<filelists packages="0"/>' });
    const repomd = await readRepomd(dir);
    expect(repomd.revision).toBe('42');
    expect([...repomd.data.keys()]).toEqual(['primary', 'filelists']);
    expect(repomd.primary).toMatchObject({
      type: 'primary',
      location: { href: 'repodata/primary.xml.data', base: null },
      timestamp: 1712000000,
      openChecksum: null,
    });
    expect(repomd.other).toBeNull();
  });

  it.each<[string, (xml: string) => string, string, RegExp]>([
    [
      'no primary entry',
      (x) => x.replace('type="primary"', 'type="updateinfo"'),
      'E_REPODATA_INVALID',
      /lists no primary metadata/,
    ],
    [
      'a type listed twice',
      (x) => x.replace('type="filelists"', 'type="primary"'),
      'E_REPODATA_INVALID',
      /line \d+: <data type="primary"> is listed twice/,
    ],
    [
      'an absolute href',
      (x) => x.replace('href="repodata/primary.xml.data"', 'href="/etc/shadow"'),
      'E_REPODATA_INVALID',
      /location href '\/etc\/shadow' is not a relative path/,
    ],
    [
      'a checksum without type',
      (x) => x.replace('<checksum type="sha256">', '<checksum>'),
      'E_REPODATA_INVALID',
      /line 5: a checksum has no type attribute/,
    ],
    [
      'a bad size',
      (x) => x.replace(/<size>\d+</, '<size>-1<'),
      'E_REPODATA_INVALID',
      /<size> '-1' is not a non-negative integer/,
    ],
    [
      'broken XML',
      (x) => x.replace('</repomd>', '</repo>'),
      'E_REPODATA_INVALID',
      /repomd\.xml': line \d+: unexpected close tag/,
    ],
  ])('fails on %s', async (_what, edit, code, message) => {
    const error = await failure(
      readRepomd(writeRepo({ primary: primaryXml([]), filelists: '<filelists packages="0"/>', editRepomd: edit })),
    );
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it('fails with E_REPODATA_MISSING and a hint when there is no repomd.xml', async () => {
    const error = await failure(readRepomd(join(root, 'nowhere')));
    expect(error.code).toBe('E_REPODATA_MISSING');
    expect(error.message).toBe(`no repository metadata at '${join(root, 'nowhere', 'repodata', 'repomd.xml')}'`);
    expect(error.hint).toMatch(/createrepo_c/);
  });
});

describe('streamFilelists', () => {
  it('reads every file of every package with its type', async () => {
    const filelists = `<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="2">
<package pkgid="${'A'.repeat(64)}" name="a" arch="noarch">
  <version epoch="0" ver="1" rel="1"/>
  <file>/usr/share/a</file>
  <file type="dir">/usr/share/a.d</file>
  <file type="ghost">/var/log/a.log</file>
</package>
<package pkgid="${'b'.repeat(64)}" name="b" arch="x86_64">
  <version epoch="1" ver="2" rel="3"/>
</package>
</filelists>`;
    const dir = writeRepo({ primary: primaryXml([]), filelists, compress: (b) => gzipSync(b) });
    const out: FilelistsPackage[] = [];
    await streamFilelists(dir, await readRepomd(dir), (p) => void out.push(p));
    expect(out).toEqual([
      {
        pkgid: 'a'.repeat(64),
        name: 'a',
        arch: 'noarch',
        epoch: 0,
        version: '1',
        release: '1',
        files: [
          { path: '/usr/share/a', type: 'file' },
          { path: '/usr/share/a.d', type: 'dir' },
          { path: '/var/log/a.log', type: 'ghost' },
        ],
      },
      { pkgid: 'b'.repeat(64), name: 'b', arch: 'x86_64', epoch: 1, version: '2', release: '3', files: [] },
    ]);
  });

  it('fails with E_REPODATA_MISSING when repomd.xml lists no filelists', async () => {
    const dir = writeRepo({ primary: primaryXml([]) });
    const error = await failure(readRepomd(dir).then((repomd) => streamFilelists(dir, repomd, () => {})));
    expect(error.code).toBe('E_REPODATA_MISSING');
  });
});
