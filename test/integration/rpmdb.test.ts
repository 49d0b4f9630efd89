// The rpm database Arbor writes for a composed tree, read back by the real rpm: every index table
// holds exactly the rows rpm itself writes for the same packages (except the three that come
// from install time and signature headers), and rpm's queries and -V work on it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRpmHead } from '../../src/rpm-compose/rpm/index.js';
import { writeRpmdb } from '../../src/rpm-compose/rpmdb.js';
import { IS_ROOT, tempDir } from '../support/cli.js';
import { HAVE_RPMBUILD, buildAllFixtures } from './rpm-fixtures.js';

const rpm = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync('rpm', args, { encoding: 'utf8' });
/**
 * Tables filled from the signature header (SIGMD5, SHA1HEADER), which a package commit does not
 * keep, and from the install transaction id (a time, so it differs between any two installs).
 */
const NOT_FROM_THE_HEADER = new Set(['Installtid', 'Sigmd5', 'Sha1header']);

describe.skipIf(!HAVE_RPMBUILD || !IS_ROOT)('the rpm database of a composed tree', () => {
  const tmp = tempDir();
  let packages: string[] = [];
  const ours = join(tmp.path, 'ours');
  const theirs = join(tmp.path, 'theirs');
  beforeAll(async () => {
    const built = buildAllFixtures(join(tmp.path, 'build'));
    // One payload variant is enough: they are the same package built with other compressors.
    packages = [built.get('basic')!, built.get('payload-xz')!];
    mkdirSync(theirs);
    expect(rpm('--dbpath', theirs, '--initdb').status).toBe(0);
    const r = rpm('--dbpath', theirs, '-i', '--justdb', '--nodeps', '--noscripts', '--nosignature', ...packages);
    expect(r.status, r.stderr).toBe(0);
    const heads = await Promise.all(packages.map((p) => readRpmHead(p)));
    writeRpmdb(
      ours,
      heads.map((h) => ({ header: h.header })),
    );
  });
  afterAll(() => tmp.cleanup());

  it('is one SQLite file whose index tables equal what rpm writes', () => {
    expect(readdirSync(ours)).toEqual(['rpmdb.sqlite']);
    const a = new Database(join(theirs, 'rpmdb.sqlite'), { readonly: true });
    const b = new Database(join(ours, 'rpmdb.sqlite'), { readonly: true });
    try {
      const tables = (db: Database.Database): string[] =>
        db
          .prepare<[], { name: string }>(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
          )
          .all()
          .map((r) => r.name)
          .sort();
      expect(tables(b)).toEqual(tables(a));
      const nevraOf = (db: Database.Database): Map<number, string> =>
        new Map(
          db
            .prepare<[], { hnum: number; key: string }>('SELECT hnum, key FROM Name')
            .all()
            .map((r) => [r.hnum, r.key]),
        );
      const [na, nb] = [nevraOf(a), nevraOf(b)];
      for (const table of tables(a)) {
        if (table === 'Packages' || NOT_FROM_THE_HEADER.has(table)) continue;
        const rows = (db: Database.Database, names: Map<number, string>): string[] =>
          db
            .prepare<[], { key: string; hnum: number; idx: number }>(`SELECT key, hnum, idx FROM '${table}'`)
            .all()
            .map((r) => `${names.get(r.hnum)} ${r.key} ${r.idx}`)
            .sort();
        expect(rows(b, nb), table).toEqual(rows(a, na));
      }
    } finally {
      a.close();
      b.close();
    }
  });

  it("answers rpm queries as rpm's own database does", () => {
    const query = (db: string, ...args: string[]): string => {
      const r = rpm('--dbpath', db, ...args);
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    const qf =
      '%{NEVRA} %{SIZE} [%{REQUIRENAME} ][%{PROVIDENAME} ][%{FILENAMES}:%{FILEMODES:octal}:%{FILEDIGESTS}:%{FILESTATES:fstate} ]\\n';
    const sorted = (text: string): string[] => text.split('\n').sort();
    expect(sorted(query(ours, '-qa', '--qf', qf))).toEqual(sorted(query(theirs, '-qa', '--qf', qf)));
    expect(query(ours, '-qa', '--qf', '%{INSTALLTIME} %{INSTALLTID}\\n')).toMatch(/^(\d+) \1\n(\d+) \2\n$/);
    expect(query(ours, '-qf', '/usr/share/arbor/dangling')).toBe(query(theirs, '-qf', '/usr/share/arbor/dangling'));
    expect(query(ours, '-q', '--whatprovides', 'arbor-basic')).toBe(
      query(theirs, '-q', '--whatprovides', 'arbor-basic'),
    );
    expect(query(ours, '-q', '--whatrequires', '/bin/sh')).toBe(query(theirs, '-q', '--whatrequires', '/bin/sh'));
  });

  it('lets rpm -V check an installed tree against it', () => {
    const root = join(tmp.path, 'root');
    mkdirSync(root);
    const installed = rpm('--root', root, '-i', '--nodeps', '--noscripts', '--nosignature', packages[0]!);
    expect(installed.status, installed.stderr).toBe(0);
    // Replace rpm's database in the tree with ours, at the path an Arbor tree keeps it.
    mkdirSync(join(root, 'usr/share/rpm'), { recursive: true });
    renameSync(join(ours, 'rpmdb.sqlite'), join(root, 'usr/share/rpm/rpmdb.sqlite'));
    rmSync(join(root, 'root/.rpmdb'), { recursive: true, force: true });
    const verify = rpm('--root', root, '--dbpath', '/usr/share/rpm', '-V', '--nodeps', 'arbor-basic');
    expect(verify.stdout + verify.stderr).toBe('');
    expect(verify.status).toBe(0);
  });
});
