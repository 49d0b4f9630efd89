// `arbor db list` and `arbor db diff` on commits whose trees carry an rpm database: the list equals
// what the real rpm lists from the same database, and the diff sorts changes as rpm orders versions.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHeader, readRpmHead, type RpmHeader, Tag, TagType } from '../../src/rpm-compose/rpm/index.js';
import { encodeHeader, headerFields } from '../../src/rpm-compose/rpm/header.js';
import { writeRpmdb } from '../../src/rpm-compose/rpmdb.js';
import { arbor, runCli, tempDir } from '../support/cli.js';
import { HAVE_RPMBUILD, buildAllFixtures } from './rpm-fixtures.js';

/** The same header with another version and/or release. */
function withEvr(header: RpmHeader, version: string, release: string): RpmHeader {
  const fields = headerFields(header).map((f) =>
    f.tag === Tag.Version
      ? { tag: f.tag, data: { type: TagType.String, value: version } as const }
      : f.tag === Tag.Release
        ? { tag: f.tag, data: { type: TagType.String, value: release } as const }
        : f,
  );
  return decodeHeader(encodeHeader(fields, header.region?.tag), { pkg: 'test', part: 'header' });
}

describe.skipIf(!HAVE_RPMBUILD)('arbor db list / diff', () => {
  const tmp = tempDir();
  const repo = join(tmp.path, 'repo');
  beforeAll(async () => {
    const built = buildAllFixtures(join(tmp.path, 'build'));
    const h = async (name: string): Promise<RpmHeader> => (await readRpmHead(built.get(name)!)).header;
    const basic = await h('basic');
    const gz = await h('payload-gzip');
    const xz = await h('payload-xz');
    const zst = await h('payload-zstd');
    writeRpmdb(
      join(tmp.path, 'a/usr/share/rpm'),
      [basic, gz, xz].map((header) => ({ header })),
    );
    // basic upgraded (the caret sorts after the plain version), gzip downgraded, xz removed, zstd added.
    writeRpmdb(
      join(tmp.path, 'b/usr/share/rpm'),
      [withEvr(basic, '1.2^post1', '4.fc99'), withEvr(gz, '2.0', '0.9'), zst].map((header) => ({ header })),
    );
    arbor('init', '--repo', repo, '--mode', 'bare-user');
    arbor('commit', '--repo', repo, '-b', 'os', '--tree', `dir=${join(tmp.path, 'a')}`);
    arbor('commit', '--repo', repo, '-b', 'os', '--tree', `dir=${join(tmp.path, 'b')}`);
  });
  afterAll(() => tmp.cleanup());

  it('lists what rpm lists from the same database', () => {
    for (const [rev, dir] of [
      ['os^', 'a'],
      ['os', 'b'],
    ] as const) {
      const rpm = spawnSync('rpm', ['--dbpath', join(tmp.path, dir, 'usr/share/rpm'), '-qa', '--qf', '%{NEVRA}\\n'], {
        encoding: 'utf8',
      });
      expect(rpm.status, rpm.stderr).toBe(0);
      const expected = rpm.stdout.trim().split('\n').sort();
      const ours = arbor('db', 'list', '--repo', repo, rev).split('\n').sort();
      expect(ours).toEqual(expected);
    }
    const json = JSON.parse(arbor('db', 'list', '--repo', repo, 'os', '--json')) as {
      name: string;
      epoch: number | null;
    }[];
    expect(json.find((p) => p.name === 'arbor-basic')?.epoch).toBe(3);
  });

  it('diffs two commits: added, removed, upgraded, downgraded', () => {
    const diff = JSON.parse(arbor('db', 'diff', '--repo', repo, 'os^', 'os', '--json'));
    expect(diff.upgraded).toEqual([
      { name: 'arbor-basic', arch: 'noarch', from: '3:1.2~rc1^git20260101-4.fc99', to: '3:1.2^post1-4.fc99' },
    ]);
    expect(diff.downgraded).toEqual([{ name: 'arbor-payload-gzip', arch: 'noarch', from: '2.0-1', to: '2.0-0.9' }]);
    expect(diff.removed.map((p: { name: string }) => p.name)).toEqual(['arbor-payload-xz']);
    expect(diff.added.map((p: { name: string }) => p.name)).toEqual(['arbor-payload-zstd']);
    const text = arbor('db', 'diff', '--repo', repo, 'os^', 'os');
    expect(text).toContain('Upgraded:\n  arbor-basic.noarch 3:1.2~rc1^git20260101-4.fc99 -> 3:1.2^post1-4.fc99');
    expect(arbor('db', 'diff', '--repo', repo, 'os', 'os')).toBe('no package changes');
  });

  it('says plainly when a commit has no rpm database', () => {
    arbor('commit', '--repo', repo, '-b', 'plain', '--tree', `dir=${join(tmp.path, 'build', 'rpms')}`);
    const r = runCli(['db', 'list', '--repo', repo, 'plain']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /^error\[E_DB_MISSING\]: commit [0-9a-f]{64} has no rpm database at \/usr\/share\/rpm\/rpmdb\.sqlite/,
    );
  });
});
