// Yum repositories made by createrepo_c from the packages of fixtures/rpm (gz, xz and bz2, and zstd
// by recompressing, which Debian's createrepo_c 0.17 cannot write), read by src/rpm-compose/repodata
// and checked against what `rpm -qp` says about the same packages; then damaged repositories.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import { ArborError } from '../../src/common/errors.js';
import {
  type RepoDependency,
  type RepoPackage,
  readRepomd,
  streamFilelists,
  streamRepository,
} from '../../src/rpm-compose/repodata/index.js';
import {
  type FilelistsPackage,
  REPO_DEPENDENCY_KINDS,
  type RepoDependencyKind,
  type RepoFile,
  isPrimaryPath,
} from '../../src/rpm-compose/repodata/records.js';
import { streamPrimary } from '../../src/rpm-compose/repodata/primary.js';
import { streamRpmDirectory } from '../../src/rpm-compose/repodata/rpm-directory.js';
import { useTempDir } from '../support/temp.js';
import { HAVE_RPMBUILD, buildAllFixtures } from './rpm-fixtures.js';

const HAVE_CREATEREPO = spawnSync('createrepo_c', ['--version']).status === 0;

/** How each repository is made: createrepo_c's flags, then the suffix its files must carry. */
const VARIANTS: readonly (readonly [name: string, args: readonly string[], suffix: string])[] = [
  ['default', [], '.xml.gz'],
  ['gz', ['--general-compress-type=gz', '--no-database'], '.xml.gz'],
  ['xz', ['--general-compress-type=xz', '--no-database'], '.xml.xz'],
  ['bz2', ['--general-compress-type=bz2', '--no-database'], '.xml.bz2'],
  ['zstd', ['--no-database'], '.xml.zst'],
];
const VARIANT_NAMES = VARIANTS.map(([name]) => name);

const TAG_PREFIX: Record<RepoDependencyKind, string> = {
  provides: 'PROVIDE',
  requires: 'REQUIRE',
  conflicts: 'CONFLICT',
  obsoletes: 'OBSOLETE',
  recommends: 'RECOMMEND',
  suggests: 'SUGGEST',
  supplements: 'SUPPLEMENT',
  enhances: 'ENHANCE',
};
const FLAG_NAMES: Record<number, string> = { 2: 'LT', 4: 'GT', 8: 'EQ', 10: 'LE', 12: 'GE' };
// RPMSENSE_PREREQ | SCRIPT_PRE | SCRIPT_POST | PRETRANS | POSTTRANS, what primary.xml calls pre="1".
const PRE_BITS = 0x40 | 0x200 | 0x400 | 0x80 | 0x20;
const RPMFILE_GHOST = 64;

/** What `rpm -qp` says about a package, in the terms primary.xml uses. */
interface RpmView {
  name: string;
  epoch: number;
  version: string;
  release: string;
  arch: string;
  summary: string;
  installedBytes: number;
  sourceRpm: string | null;
  /** Dependency keys (`name|flags|epoch|ver|rel|pre`), after createrepo_c's documented filters. */
  dependencies: Record<RepoDependencyKind, string[]>;
  files: RepoFile[];
}

function rpmView(path: string): RpmView {
  const deps = REPO_DEPENDENCY_KINDS.map(
    (k) => `[${k}\\t%{${TAG_PREFIX[k]}NAME}\\t%{${TAG_PREFIX[k]}FLAGS}\\t%{${TAG_PREFIX[k]}VERSION}\\n]`,
  ).join('');
  const qf = `%{NAME}\\n%{EPOCHNUM}\\n%{VERSION}\\n%{RELEASE}\\n%|SOURCEPACKAGE?{src}:{%{ARCH}}|\\n%{SUMMARY}\\n%{LONGSIZE}\\n%{SOURCERPM}\\n${deps}[file\\t%{FILEMODES}\\t%{FILEFLAGS}\\t%{FILENAMES}\\n]`;
  const r = spawnSync('rpm', ['-qp', '--qf', qf, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rpm -qp ${path}: ${r.stderr}`);
  const [name, epoch, version, release, arch, summary, installed, sourceRpm, ...rest] = r.stdout.split('\n');
  const files: RepoFile[] = [];
  const raw: Record<RepoDependencyKind, { name: string; flags: number; evr: string }[]> = Object.fromEntries(
    REPO_DEPENDENCY_KINDS.map((k) => [k, []]),
  ) as never;
  for (const line of rest.filter((l) => l !== '')) {
    const [kind, a, b, c] = line.split('\t') as [string, string, string, string];
    if (kind === 'file') {
      const mode = Number(a);
      files.push({
        path: c,
        type: (mode & 0o170000) === 0o040000 ? 'dir' : (Number(b) & RPMFILE_GHOST) !== 0 ? 'ghost' : 'file',
      });
    } else {
      raw[kind as RepoDependencyKind].push({ name: a, flags: Number(b), evr: c });
    }
  }
  const own = new Set(files.map((f) => f.path));
  const provided = new Set(raw.provides.map((d) => `${d.name}|${d.flags & 0xf}|${d.evr}`));
  const dependencies = Object.fromEntries(
    REPO_DEPENDENCY_KINDS.map((kind) => {
      const keep = raw[kind].filter(
        (d) =>
          kind !== 'requires' ||
          !(
            d.name.startsWith('rpmlib(') ||
            (own.has(d.name) && isPrimaryPath(d.name)) ||
            provided.has(`${d.name}|${d.flags & 0xf}|${d.evr}`)
          ),
      );
      const keys = keep.map((d) => {
        const flag = FLAG_NAMES[d.flags & 0xf] ?? null;
        const m = /^(?:(\d*):)?([^-]*)(?:-(.*))?$/.exec(d.evr)!;
        const evr = flag === null ? [null, null, null] : [Number(m[1] ?? 0), m[2] || null, m[3] || null];
        return [d.name, flag, ...evr, kind === 'requires' && (d.flags & PRE_BITS) !== 0].join('|');
      });
      return [kind, [...new Set(keys)].sort()];
    }),
  ) as Record<RepoDependencyKind, string[]>;
  return {
    name: name!,
    epoch: Number(epoch),
    version: version!,
    release: release!,
    arch: arch!,
    summary: summary!,
    installedBytes: Number(installed),
    sourceRpm: sourceRpm === '(none)' ? null : sourceRpm!,
    dependencies,
    files,
  };
}

const depKeys = (deps: readonly RepoDependency[]): string[] =>
  [...new Set(deps.map((d) => [d.name, d.flags, d.epoch, d.ver, d.rel, d.pre].join('|')))].sort();
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const byPath = (a: RepoFile, b: RepoFile): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * Replaces the file of one data type with `bytes` (named `<sha256>-TYPE<suffix>`) and points
 * repomd.xml's checksum, location and size at it, as createrepo_c would have written them.
 */
function replaceData(dir: string, type: string, bytes: Buffer, suffix: string): string {
  const repomdFile = join(dir, 'repodata/repomd.xml');
  const repomd = readFileSync(repomdFile, 'utf8');
  const block = new RegExp(`<data type="${type}">[\\s\\S]*?</data>`).exec(repomd)![0];
  const oldHref = /<location href="([^"]+)"/.exec(block)![1]!;
  const checksum = createHash('sha256').update(bytes).digest('hex');
  const href = `repodata/${checksum}-${type}${suffix}`;
  unlinkSync(join(dir, oldHref));
  writeFileSync(join(dir, href), bytes);
  const updated = block
    .replace(/<checksum type="sha256">[0-9a-f]+</, `<checksum type="sha256">${checksum}<`)
    .replace(/<location href="[^"]+"/, `<location href="${href}"`)
    .replace(/<size>\d+</, `<size>${bytes.length}<`);
  writeFileSync(repomdFile, repomd.replace(block, updated));
  return join(dir, href);
}

/** The decompressed XML of a gzip data file of a repository made with the default flags. */
function xmlOf(dir: string, type: string): { path: string; xml: string } {
  const href = /<location href="([^"]+)"/.exec(
    new RegExp(`<data type="${type}">[\\s\\S]*?</data>`).exec(
      readFileSync(join(dir, 'repodata/repomd.xml'), 'utf8'),
    )![0],
  )![1]!;
  return { path: join(dir, href), xml: gunzipSync(readFileSync(join(dir, href))).toString('utf8') };
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

describe.skipIf(!HAVE_RPMBUILD || !HAVE_CREATEREPO)('yum repositories made by createrepo_c', () => {
  const tmp = useTempDir('arbor-repodata-');
  let packages: string[];
  const views = new Map<string, RpmView>();
  const repoDir = (variant: string): string => join(tmp.path, `repo-${variant}`);

  /** A fresh repository of every fixture package under Packages/, made with createrepo_c `args`. */
  function makeRepo(dir: string, args: readonly string[]): void {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'Packages'), { recursive: true });
    for (const pkg of packages) linkSync(pkg, join(dir, 'Packages', basename(pkg)));
    const r = spawnSync('createrepo_c', ['--quiet', ...args, dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`createrepo_c ${args.join(' ')}: ${r.stderr}`);
  }

  beforeAll(() => {
    packages = [...buildAllFixtures(join(tmp.path, 'build')).values()];
    for (const pkg of packages) views.set(`Packages/${basename(pkg)}`, rpmView(pkg));
    for (const [name, args] of VARIANTS) makeRepo(repoDir(name), args);
    // Debian's createrepo_c 0.17 has no zstd; newer ones (Fedora's default since 1.0) write what this does.
    for (const type of ['primary', 'filelists', 'other']) {
      const dir = repoDir('zstd');
      const href = /<location href="([^"]+)"/.exec(
        new RegExp(`<data type="${type}">[\\s\\S]*?</data>`).exec(
          readFileSync(join(dir, 'repodata/repomd.xml'), 'utf8'),
        )![0],
      )![1]!;
      replaceData(dir, type, zstdCompress(gunzipSync(readFileSync(join(dir, href)))), '.xml.zst');
    }
  });

  it.each(VARIANTS)(
    'repomd.xml of the %s repository lists primary, filelists and other',
    async (name, _args, suffix) => {
      const repomd = await readRepomd(repoDir(name));
      for (const data of [repomd.primary, repomd.filelists!, repomd.other!]) {
        expect(data.location.href).toMatch(
          new RegExp(`^repodata/[0-9a-f]{64}-${data.type}${suffix.replace('.', '\\.')}$`),
        );
        expect(data.checksum).toEqual({ type: 'sha256', value: sha256(join(repoDir(name), data.location.href)) });
        expect(data.sizeBytes).toBe(statSync(join(repoDir(name), data.location.href)).size);
      }
      expect(repomd.primary.openChecksum?.type).toBe('sha256');
    },
  );

  it.each(VARIANT_NAMES)('primary.xml of the %s repository agrees with rpm -qp on every package', async (name) => {
    const records = await primaryOf(repoDir(name));
    expect(records.map((r) => r.location.href).sort()).toEqual([...views.keys()].sort());
    for (const record of records) {
      const rpm = views.get(record.location.href)!;
      const path = join(repoDir(name), record.location.href);
      expect(record).toMatchObject({
        name: rpm.name,
        epoch: rpm.epoch,
        version: rpm.version,
        release: rpm.release,
        arch: rpm.arch,
        summary: rpm.summary,
        sourceRpm: rpm.sourceRpm,
        checksum: { type: 'sha256', value: sha256(path), pkgid: true },
        sizes: { packageBytes: statSync(path).size, installedBytes: rpm.installedBytes },
        filesComplete: false,
      });
      for (const kind of REPO_DEPENDENCY_KINDS)
        expect([kind, depKeys(record.dependencies[kind])]).toEqual([kind, rpm.dependencies[kind]]);
      expect([...record.files].sort(byPath)).toEqual(rpm.files.filter((f) => isPrimaryPath(f.path)).sort(byPath));
    }
  });

  it('reads the flags, EVR parts and pre of the dependencies of arbor-basic', async () => {
    const basic = (await primaryOf(repoDir('default'))).find((r) => r.name === 'arbor-basic' && r.arch !== 'src')!;
    expect(basic.dependencies.conflicts).toEqual([
      { name: 'arbor-old', flags: 'LT', epoch: 1, ver: '2.0', rel: '1', pre: false },
    ]);
    expect(basic.dependencies.obsoletes).toEqual([
      { name: 'arbor-legacy', flags: 'LE', epoch: 0, ver: '0.9', rel: null, pre: false },
    ]);
    expect(basic.dependencies.requires).toContainEqual({
      name: 'coreutils',
      flags: 'GE',
      epoch: 0,
      ver: '8',
      rel: null,
      pre: true,
    });
    expect(basic.dependencies.requires).toContainEqual({
      name: '(arbor-a >= 1.0 or arbor-b)',
      flags: null,
      epoch: null,
      ver: null,
      rel: null,
      pre: false,
    });
    expect(basic.dependencies.provides).toContainEqual({
      name: 'arbor-basic',
      flags: 'EQ',
      epoch: 3,
      ver: '1.2~rc1^git20260101',
      rel: '4.fc99',
      pre: false,
    });
    expect(basic.dependencies.supplements).toEqual([
      { name: '(arbor-core unless arbor-minimal)', flags: null, epoch: null, ver: null, rel: null, pre: false },
    ]);
    expect(basic.headerRange).toEqual({ start: expect.any(Number), end: expect.any(Number) });
  });

  it.each(VARIANT_NAMES)(
    'filelists.xml of the %s repository lists every file of every package with its type',
    async (name) => {
      const dir = repoDir(name);
      const repomd = await readRepomd(dir);
      const checksums = new Map<string, string>();
      await streamPrimary(dir, repomd, (p) => void checksums.set(p.checksum!.value, p.location.href));
      const lists: FilelistsPackage[] = [];
      expect(await streamFilelists(dir, repomd, (p) => void lists.push(p))).toBe(packages.length);
      for (const list of lists) {
        const rpm = views.get(checksums.get(list.pkgid)!)!;
        expect(list).toMatchObject({
          name: rpm.name,
          arch: rpm.arch,
          epoch: rpm.epoch,
          version: rpm.version,
          release: rpm.release,
        });
        expect([...list.files].sort(byPath)).toEqual([...rpm.files].sort(byPath));
      }
    },
  );

  it('a directory of the same .rpm files gives the records createrepo_c wrote, with every file', async () => {
    const fromXml = new Map((await primaryOf(repoDir('default'))).map((r) => [r.location.href, r]));
    const fromDir: RepoPackage[] = [];
    expect(await streamRpmDirectory(repoDir('default'), (p) => void fromDir.push(p))).toBe(packages.length);
    expect(fromDir.map((r) => r.location.href)).toEqual([...fromXml.keys()].sort());
    for (const record of fromDir) {
      const { headerRange: _h, files, filesComplete, ...rest } = record;
      const {
        headerRange: _x,
        files: primaryFiles,
        filesComplete: _c,
        ...expected
      } = fromXml.get(record.location.href)!;
      expect(rest).toEqual(expected);
      expect(filesComplete).toBe(true);
      expect([...files].sort(byPath)).toEqual([...views.get(record.location.href)!.files].sort(byPath));
      expect(files.filter((f) => isPrimaryPath(f.path))).toEqual(primaryFiles);
    }
  });

  it('streamRepository reads repodata when there is some, and the .rpm files otherwise', async () => {
    const names = async (dir: string): Promise<[string, string[]]> => {
      const seen: string[] = [];
      const { kind } = await streamRepository(dir, (p) => void seen.push(p.name), { packageChecksums: false });
      return [kind, seen.sort()];
    };
    const plain = join(tmp.path, 'plain');
    mkdirSync(join(plain, 'sub'), { recursive: true });
    for (const pkg of packages) linkSync(pkg, join(plain, 'sub', basename(pkg)));
    const [kindXml, fromXml] = await names(repoDir('xz'));
    const [kindDir, fromDir] = await names(plain);
    expect([kindXml, kindDir]).toEqual(['repodata', 'rpm-directory']);
    expect(fromDir).toEqual(fromXml);
  });

  describe('damaged repositories', () => {
    let dir: string;
    beforeAll(() => {
      dir = join(tmp.path, 'damaged');
    });
    const fresh = (): string => {
      makeRepo(dir, ['--no-database']);
      return dir;
    };

    it('fails with E_REPODATA_CHECKSUM before any package when a byte of primary.xml.gz is flipped', async () => {
      const { path } = xmlOf(fresh(), 'primary');
      const bytes = readFileSync(path);
      const expected = createHash('sha256').update(bytes).digest('hex');
      const at = bytes.length >> 1;
      bytes[at] = bytes[at]! ^ 0x01;
      writeFileSync(path, bytes);
      const seen: string[] = [];
      const error = await failure(
        readRepomd(dir).then((repomd) => streamPrimary(dir, repomd, (p) => void seen.push(p.name))),
      );
      expect(error).toMatchObject({ code: 'E_REPODATA_CHECKSUM', exit: 3 });
      expect(error.message).toBe(
        `repodata '${path}' has sha256 ${createHash('sha256').update(bytes).digest('hex')}, repomd.xml says ${expected}`,
      );
      expect(seen).toEqual([]);
    });

    it('fails with E_REPODATA_MISSING when there is no repomd.xml', async () => {
      rmSync(join(fresh(), 'repodata/repomd.xml'));
      const error = await failure(readRepomd(dir));
      expect(error).toMatchObject({
        code: 'E_REPODATA_MISSING',
        exit: 1,
        message: `no repository metadata at '${join(dir, 'repodata/repomd.xml')}'`,
      });
    });

    it('fails with E_REPODATA_MISSING naming the primary file repomd.xml lists but that is gone', async () => {
      const { path } = xmlOf(fresh(), 'primary');
      rmSync(path);
      const error = await failure(readRepomd(dir).then((repomd) => streamPrimary(dir, repomd, () => {})));
      expect(error).toMatchObject({ code: 'E_REPODATA_MISSING', message: `repodata '${path}' is missing` });
    });

    it('fails with E_REPODATA_INVALID naming file and line when primary.xml is cut short', async () => {
      const { xml } = xmlOf(fresh(), 'primary');
      const cut = xml.slice(0, xml.indexOf('<rpm:requires>'));
      const path = replaceData(dir, 'primary', gzipSync(cut), '.xml.gz');
      const error = await failure(primaryOf(dir));
      expect(error).toMatchObject({ code: 'E_REPODATA_INVALID', exit: 3 });
      expect(error.message).toMatch(new RegExp(`^repodata '${path}': line ${cut.split('\n').length}: unclosed tag: `));
    });

    it('fails with E_REPODATA_INVALID on the line of a mismatched tag', async () => {
      const { xml } = xmlOf(fresh(), 'primary');
      const at = xml.indexOf('</summary>');
      const path = replaceData(
        dir,
        'primary',
        gzipSync(`${xml.slice(0, at)}</name>${xml.slice(at + '</summary>'.length)}`),
        '.xml.gz',
      );
      const error = await failure(primaryOf(dir));
      expect(error.message).toBe(
        `repodata '${path}': line ${xml.slice(0, at).split('\n').length}: unexpected close tag`,
      );
    });

    it('fails with E_REPODATA_INVALID when the gzip stream itself is cut short', async () => {
      const { path: old } = xmlOf(fresh(), 'primary');
      const bytes = readFileSync(old);
      const path = replaceData(dir, 'primary', bytes.subarray(0, bytes.length - 40), '.xml.gz');
      const error = await failure(primaryOf(dir));
      expect(error).toMatchObject({ code: 'E_REPODATA_INVALID' });
      expect(error.message).toMatch(new RegExp(`^repodata '${path}': cannot decompress \\(gzip\\): `));
    });
  });
});
