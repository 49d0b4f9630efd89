// The rpm database of a composed tree, written as rpm 4.18's SQLite backend does (rpmdb.sqlite):
// a Packages table of header blobs and one index table per indexed tag, so that
// `rpm --dbpath TREE/usr/share/rpm -qa`, `-qf`, `--whatprovides` and `-V` work on the tree.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ioError, present } from '../common/errors.js';
import { encodeHeader, storedHeaderFields } from './rpm/header.js';
import { type RichDep, type RpmHeader, Tag, TagType, parseRichDep } from './rpm/index.js';

/**
 * Index tables rpm keeps and the header tag each is built from (rpm 4.18's dbiTags). Rows are
 * (key, package, position in the tag's array); for file triggers the position is the trigger's
 * index. Rich dependencies also index each package name inside them (see richNames).
 */
const INDEXES: readonly (readonly [table: string, tag: number, rich: boolean])[] = [
  ['Name', Tag.Name, false],
  ['Basenames', Tag.BaseNames, false],
  ['Group', Tag.Group, false],
  ['Requirename', Tag.RequireName, true],
  ['Providename', Tag.ProvideName, false],
  ['Conflictname', Tag.ConflictName, true],
  ['Obsoletename', Tag.ObsoleteName, false],
  ['Triggername', Tag.TriggerName, false],
  ['Dirnames', Tag.DirNames, false],
  ['Filetriggername', Tag.FileTriggerName, false],
  ['Transfiletriggername', Tag.TransFileTriggerName, false],
  ['Recommendname', Tag.RecommendName, true],
  ['Suggestname', Tag.SuggestName, true],
  ['Supplementname', Tag.SupplementName, true],
  ['Enhancename', Tag.EnhanceName, true],
];

// Dependency flag bits (rpmsenseFlags) that decide whether rpm indexes a requirement.
const SENSE = {
  POSTTRANS: 1 << 5,
  PRETRANS: 1 << 7,
  SCRIPT_PRE: 1 << 9,
  SCRIPT_POST: 1 << 10,
  SCRIPT_PREUN: 1 << 11,
  SCRIPT_POSTUN: 1 << 12,
  PREUNTRANS: 1 << 20,
  POSTUNTRANS: 1 << 21,
  RPMLIB: 1 << 24,
  KEYRING: 1 << 26,
  META: 1 << 29,
};
const INSTALL_ONLY =
  SENSE.SCRIPT_PRE | SENSE.SCRIPT_POST | SENSE.RPMLIB | SENSE.KEYRING | SENSE.PRETRANS | SENSE.POSTTRANS;
const ERASE_ONLY = SENSE.SCRIPT_PREUN | SENSE.SCRIPT_POSTUN | SENSE.PREUNTRANS | SENSE.POSTUNTRANS;

/** A requirement needed only while installing (rpmlib(), %pre/%post, pretrans…): rpm does not index it. */
function isTransientRequire(flags: number): boolean {
  return (flags & INSTALL_ONLY) !== 0 && (flags & ERASE_ONLY) === 0 && (flags & SENSE.META) === 0;
}

/**
 * The package names inside a rich dependency, as rpm indexes them: sorted, without duplicates,
 * without rpmlib() names, and prefixed with '!' where they sit in a condition (the COND of
 * `if`/`unless`); an `else` branch also carries the condition's names unprefixed.
 */
function richNames(dep: RichDep): string[] {
  const out: string[] = [];
  const walk = (d: RichDep, neg: boolean): void => {
    switch (d.op) {
      case 'dep':
        if (!d.name.startsWith('rpmlib(')) out.push(`${neg ? '!' : ' '}${d.name}`);
        return;
      case 'and':
      case 'or':
      case 'with':
      case 'without':
        for (const a of d.args) walk(a, neg);
        return;
      case 'if':
      case 'unless': {
        walk(d.then, neg);
        const start = out.length;
        walk(d.cond, !neg);
        if (d.else) {
          for (const name of out.slice(start)) out.push(`${name.startsWith('!') ? ' ' : '!'}${name.slice(1)}`);
          walk(d.else, neg);
        }
      }
    }
  };
  walk(dep, false);
  const sorted = [...new Set(out)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sorted.map((n) => (n.startsWith(' ') ? n.slice(1) : n));
}
/** Indexes of blob keys: the install transaction id, and the signature header's MD5 (which a package commit does not keep: left empty). */
const BLOB_INDEXES = ['Installtid', 'Sigmd5'];
const TEXT_UNINDEXED = ['Sha1header'];
/** Tables that also get an index on hnum (rpm makes one where a package has many rows). */
const HNUM_INDEXED = new Set([
  'Basenames',
  'Requirename',
  'Providename',
  'Conflictname',
  'Obsoletename',
  'Triggername',
  'Dirnames',
  'Filetriggername',
  'Transfiletriggername',
  'Recommendname',
  'Suggestname',
  'Supplementname',
  'Enhancename',
]);

function schema(): string[] {
  const out = ["CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)"];
  const table = (name: string, keyType: string): string =>
    `CREATE TABLE '${name}' (key '${keyType}' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))`;
  for (const [name] of INDEXES) {
    out.push(table(name, 'TEXT'), `CREATE INDEX '${name}_key_idx' ON '${name}'(key ASC)`);
    if (HNUM_INDEXED.has(name)) out.push(`CREATE INDEX '${name}_hnum_idx' ON '${name}'(hnum ASC)`);
  }
  for (const name of BLOB_INDEXES) out.push(table(name, 'BLOB'));
  for (const name of TEXT_UNINDEXED)
    out.push(table(name, 'TEXT'), `CREATE INDEX '${name}_key_idx' ON '${name}'(key ASC)`);
  return out;
}

export interface RpmdbPackage {
  readonly header: RpmHeader;
}

// Tags rpm adds when it installs a package (rpmtag.h numbers).
const INSTALL_TIME = 1008;
const INSTALL_TID = 1128;

/**
 * The header as rpm stores an installed package: the package's own entries plus what installing
 * adds, FILESTATES (every file "normal"), INSTALLTIME and INSTALLTID; without the 8-byte magic.
 */
function installedBlob(header: RpmHeader, tid: number): Buffer {
  const files = (header.strings(Tag.BaseNames) ?? []).length;
  const fields = storedHeaderFields(header).filter(
    (f) => f.tag !== Tag.FileStates && f.tag !== INSTALL_TIME && f.tag !== INSTALL_TID,
  );
  if (files > 0) fields.push({ tag: Tag.FileStates, data: { type: TagType.Char, value: Buffer.alloc(files) } });
  fields.push(
    { tag: INSTALL_TIME, data: { type: TagType.Int32, value: [tid] } },
    { tag: INSTALL_TID, data: { type: TagType.Int32, value: [tid] } },
  );
  return encodeHeader(fields, header.region?.tag).subarray(8);
}

/** Index rows go in by this many per statement: a call into SQLite per row costs more than the insert. */
const ROWS_PER_INSERT = 128;

/**
 * Inserts (key, hnum, idx) rows, given flat and in order, into an index table: the rows and their
 * order are those of one insert per row, and so are the file's bytes.
 */
function rowInserter(db: Database.Database, table: string): (rows: readonly (string | number)[]) => void {
  const sql = (n: number): string =>
    `INSERT INTO '${table}' (key, hnum, idx) VALUES ${Array.from({ length: n }, () => '(?, ?, ?)').join(', ')}`;
  const many = db.prepare(sql(ROWS_PER_INSERT));
  const one = db.prepare(sql(1));
  return (rows) => {
    const full = rows.length - (rows.length % (3 * ROWS_PER_INSERT));
    for (let at = 0; at < full; at += 3 * ROWS_PER_INSERT) many.run(rows.slice(at, at + 3 * ROWS_PER_INSERT));
    for (let at = full; at < rows.length; at += 3) one.run(rows.slice(at, at + 3));
  };
}

/**
 * Writes DIR/rpmdb.sqlite (replacing it) for the packages, in order. The file is left in rollback
 * journal mode, a single file, as an image should ship it.
 */
export function writeRpmdb(
  dir: string,
  packages: readonly RpmdbPackage[],
  installTime = Math.floor(Date.now() / 1000),
): string {
  const path = join(dir, 'rpmdb.sqlite');
  try {
    mkdirSync(dir, { recursive: true });
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true });
  } catch (error) {
    throw ioError('create the rpm database in', dir, error);
  }
  const db = new Database(path);
  try {
    db.pragma('journal_mode = DELETE');
    // The file is scratch, read back into an object the store makes durable: no fsync here. The
    // cache holds the whole database, so nothing is spilled to disk before the transaction ends.
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -262144');
    db.transaction(() => {
      for (const statement of schema()) db.exec(statement);
      const insertPackage = db.prepare<[Buffer]>('INSERT INTO Packages (blob) VALUES (?)');
      const insertTid = db.prepare<[Buffer, number]>("INSERT INTO 'Installtid' (key, hnum, idx) VALUES (?, ?, 0)");
      const inserts = new Map(INDEXES.map(([table]) => [table, rowInserter(db, table)]));
      for (const { header } of packages) {
        const hnum = Number(insertPackage.run(installedBlob(header, installTime)).lastInsertRowid);
        // The transaction id is indexed as rpm does: its 4 bytes in the machine's (little-endian) order.
        const tid = Buffer.alloc(4);
        tid.writeUInt32LE(installTime >>> 0);
        insertTid.run(tid, hnum);
        for (const [table, tag, rich] of INDEXES) {
          const insert = present(inserts.get(table), 'the insert statement of an index');
          const single = header.string(tag);
          let values = header.strings(tag) ?? (single !== undefined ? [single] : []);
          if (values.length === 0 && tag === Tag.Group) values = ['Unknown'];
          const requireFlags = tag === Tag.RequireName ? (header.numbers(Tag.RequireFlags) ?? []) : [];
          const triggerIndex =
            tag === Tag.FileTriggerName
              ? header.numbers(Tag.FileTriggerIndex)
              : tag === Tag.TransFileTriggerName
                ? header.numbers(Tag.TransFileTriggerIndex)
                : undefined;
          const rows: (string | number)[] = [];
          values.forEach((key, i) => {
            if (tag === Tag.RequireName && isTransientRequire(requireFlags[i] ?? 0)) return;
            if (tag === Tag.TriggerName && values.indexOf(key) < i) return;
            const idx = triggerIndex?.[i] ?? i;
            rows.push(key, hnum, idx);
            if (rich && key.startsWith('(')) {
              try {
                for (const name of richNames(parseRichDep(key))) rows.push(name, hnum, idx);
              } catch {
                // rpm indexes the names of rich dependencies it can parse; so do we.
              }
            }
          });
          insert(rows);
        }
      }
    })();
    db.exec('ANALYZE');
  } finally {
    db.close();
  }
  return path;
}
