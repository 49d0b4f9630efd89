// repo.db: refs (the truth for refs), and rebuildable caches: the commit index for fast log and the
// devino cache (device+inode → file checksum) that lets a hardlinked checkout be re-committed unread.
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { ArborError, BusyError, errnoCode } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';

const SCHEMA_VERSION = 1;
// The binding is loaded when an index is first opened, not with this module: commands that never open
// one (`status`) skip loading it. `rollback` opens it to check the deployment refs.
const load = createRequire(import.meta.url);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refs (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
  checksum TEXT PRIMARY KEY, parent TEXT, timestamp INTEGER NOT NULL, subject TEXT NOT NULL, version TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devino (
  dev INTEGER NOT NULL, ino INTEGER NOT NULL, mtime REAL NOT NULL, size INTEGER NOT NULL,
  mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, checksum TEXT NOT NULL,
  PRIMARY KEY (dev, ino)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partial (checksum TEXT PRIMARY KEY, since INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS remote_summaries (
  remote TEXT PRIMARY KEY, timestamp INTEGER NOT NULL, checksum TEXT NOT NULL, accepted INTEGER NOT NULL
) WITHOUT ROWID;
`;

export interface CommitIndexRow {
  readonly checksum: Checksum;
  readonly parent: Checksum | null;
  readonly timestamp: number;
  readonly subject: string;
  readonly version: string | null;
}

/** What the devino cache remembers of an inode that is an object file. */
export interface DevinoRow {
  readonly dev: number;
  readonly ino: number;
  readonly mtime: number;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly checksum: Checksum;
}

/**
 * True when ROW describes the inode as it is now: mtime, size, mode and owner unchanged since the
 * object was written (objects have mtime 0, so an in-place write is noticed).
 */
export function devinoMatches(
  row: DevinoRow | undefined,
  st: {
    readonly mtimeMs: number;
    readonly size: number;
    readonly mode: number;
    readonly uid: number;
    readonly gid: number;
  },
): row is DevinoRow {
  return (
    row !== undefined &&
    row.mtime === st.mtimeMs &&
    row.size === st.size &&
    row.mode === st.mode &&
    row.uid === st.uid &&
    row.gid === st.gid
  );
}

/** Wraps SQLITE_BUSY into BusyError (exit 75). */
function translate<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw new BusyError('E_REPO_BUSY', `repository index is busy while ${what}`, {
        cause: error,
        hint: 'retry when the other arbor process is done',
      });
    }
    if (code === 'SQLITE_FULL')
      throw new ArborError('E_NO_SPACE', `no space left on device for the repository index while ${what}`, {
        cause: error,
        hint: 'free space, then run the command again',
      });
    throw error;
  }
}

/**
 * Opens the index for reading and writing, in WAL mode (readers never wait for the writer). On a
 * read-only file system SQLite cannot do that (it must create the -shm file even to read a WAL
 * database): E_REPO_READ_ONLY, not an internal error.
 */
function openWritable(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new (load('better-sqlite3') as typeof Database)(path, { timeout: 30_000 });
    db.pragma('journal_mode = WAL');
    return db;
  } catch (error) {
    db?.close();
    const code = (error as { code?: string }).code;
    if (
      code === 'SQLITE_CANTOPEN' ||
      code === 'SQLITE_READONLY' ||
      code === 'SQLITE_READONLY_DIRECTORY' ||
      code === 'SQLITE_IOERR_SHMOPEN'
    ) {
      let readOnly = false;
      try {
        accessSync(dirname(path), constants.W_OK);
      } catch (access) {
        readOnly = errnoCode(access) === 'EROFS' || errnoCode(access) === 'EACCES';
      }
      if (readOnly) {
        throw new ArborError(
          'E_REPO_READ_ONLY',
          `the repository index '${path}' cannot be opened: its file system is read-only (or not writable by this user)`,
          {
            cause: error,
            hint: 'this command changes or indexes the repository: run it where the sysroot is mounted read-write',
          },
        );
      }
    }
    return translate('opening the repository index', () => {
      throw error;
    });
  }
}

/**
 * Lookups of the devino cache on a read-only connection of their own: what a commit worker uses to
 * recognise hardlinks of objects without asking the main thread (WAL: the main thread's writes
 * never wait for it, nor it for them).
 */
export class DevinoReader {
  readonly #db: Database.Database;
  readonly #get: Database.Statement<[number, number], DevinoRow>;
  #reading = false;

  constructor(path: string) {
    this.#db = new (load('better-sqlite3') as typeof Database)(path, {
      readonly: true,
      fileMustExist: true,
      timeout: 30_000,
    });
    this.#get = this.#db.prepare<[number, number], DevinoRow>('SELECT * FROM devino WHERE dev = ? AND ino = ?');
  }

  /**
   * Looks up one inode. Lookups share one read transaction until `release()`: a transaction per
   * statement cost more than the lookup itself. Rows written meanwhile are not seen (a miss: the
   * file is read).
   */
  get(dev: number, ino: number): DevinoRow | undefined {
    return translate('reading the devino cache', () => {
      if (!this.#reading) {
        this.#db.exec('BEGIN');
        this.#reading = true;
      }
      return this.#get.get(dev, ino);
    });
  }

  /** Ends the read transaction, if any: the main thread's checkpoints can then reclaim the WAL. */
  release(): void {
    if (!this.#reading) return;
    this.#reading = false;
    this.#db.exec('COMMIT');
  }

  close(): void {
    this.#db.close();
  }
}

export class IndexDb {
  readonly #db: Database.Database;
  readonly #getRef;
  readonly #putDevino;
  #getDevino: Database.Statement<[number, number], DevinoRow> | undefined;
  readonly #putCommit;

  constructor(path: string) {
    this.#db = openWritable(path);
    this.#db.pragma('synchronous = FULL');
    translate('creating the schema', () => this.#db.exec(SCHEMA));
    const version = this.#db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema'").get();
    if (!version) this.#db.prepare("INSERT OR IGNORE INTO meta VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (Number(version.value) !== SCHEMA_VERSION) {
      throw new ArborError(
        'E_REPO_FORMAT',
        `repo.db schema ${version.value} is not supported (this arbor knows ${SCHEMA_VERSION})`,
      );
    }
    this.#getRef = this.#db.prepare<[string], { checksum: Checksum }>('SELECT checksum FROM refs WHERE name = ?');
    this.#putDevino = this.#db.prepare<[number, number, number, number, number, number, number, string]>(
      'INSERT OR REPLACE INTO devino VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#putCommit = this.#db.prepare<[string, string | null, number, string, string | null]>(
      'INSERT OR REPLACE INTO commits VALUES (?, ?, ?, ?, ?)',
    );
  }

  close(): void {
    this.#db.close();
  }

  /**
   * Writes a compacted copy of the index to `dest` (which must not exist) for a disk image: the
   * caches tied to this machine are dropped (devino rows name this filesystem's inodes, partial
   * marks and summary freshness its pulls), and every ref's update time becomes `updated`
   * (seconds), so the same refs give the same bytes. Changes this index too: call it last.
   */
  writeImageCopy(dest: string, updated: number): void {
    translate('copying the repository index', () => {
      this.#db.transaction(() => {
        this.#db.exec('DELETE FROM devino; DELETE FROM partial; DELETE FROM remote_summaries;');
        this.#db.prepare('UPDATE refs SET updated = ?').run(updated);
      })();
      this.#db.prepare('VACUUM INTO ?').run(dest);
    });
  }

  getRef(name: string): Checksum | undefined {
    return this.#getRef.get(name)?.checksum;
  }

  listRefs(): { name: string; checksum: Checksum }[] {
    return this.#db
      .prepare<[], { name: string; checksum: Checksum }>('SELECT name, checksum FROM refs ORDER BY name')
      .all();
  }

  /**
   * Moves refs in one durable transaction. Each update names the value it expects (`undefined`:
   * whatever it is, `null`: absent); a mismatch means another writer moved it, and nothing changes,
   * unless the ref is already at the new value (two pulls of one ref): that update is done.
   */
  updateRefs(
    updates: readonly { name: string; checksum: Checksum | null; expected?: Checksum | null }[],
    now: number,
  ): void {
    translate('updating refs', () =>
      this.#db
        .transaction(() => {
          for (const u of updates) {
            const current = this.getRef(u.name) ?? null;
            // Already where it should go (a concurrent pull of the same ref got there first): done.
            if (current === u.checksum) continue;
            if (u.expected !== undefined && current !== u.expected) {
              throw new ArborError(
                'E_REF_MOVED',
                `ref '${u.name}' moved to ${current ?? 'nothing'} while this command ran`,
                {
                  hint: 'run the command again',
                },
              );
            }
            if (u.checksum === null) this.#db.prepare('DELETE FROM refs WHERE name = ?').run(u.name);
            else this.#db.prepare('INSERT OR REPLACE INTO refs VALUES (?, ?, ?)').run(u.name, u.checksum, now);
          }
        })
        .immediate(),
    );
  }

  indexCommits(rows: readonly CommitIndexRow[]): void {
    translate('indexing commits', () =>
      this.#db.transaction(() => {
        for (const r of rows) this.#putCommit.run(r.checksum, r.parent, r.timestamp, r.subject, r.version);
      })(),
    );
  }

  getCommit(checksum: Checksum): CommitIndexRow | undefined {
    return this.#db.prepare<[string], CommitIndexRow>('SELECT * FROM commits WHERE checksum = ?').get(checksum);
  }

  deleteCommits(checksums: readonly Checksum[]): void {
    const del = this.#db.prepare('DELETE FROM commits WHERE checksum = ?');
    this.#db.transaction(() => {
      for (const c of checksums) del.run(c);
    })();
  }

  /** True when the devino cache has rows for this device (a cheap test before loading them). */
  hasDevinos(dev: number): boolean {
    return (
      this.#db.prepare<[number], { one: number }>('SELECT 1 AS one FROM devino WHERE dev = ? LIMIT 1').get(dev) !==
      undefined
    );
  }

  /** The cache row of one inode, if any. */
  getDevino(dev: number, ino: number): DevinoRow | undefined {
    this.#getDevino ??= this.#db.prepare<[number, number], DevinoRow>('SELECT * FROM devino WHERE dev = ? AND ino = ?');
    return this.#getDevino.get(dev, ino);
  }

  recordDevinos(rows: readonly DevinoRow[]): void {
    translate('recording the devino cache', () =>
      this.#db.transaction(() => {
        for (const r of rows) this.#putDevino.run(r.dev, r.ino, r.mtime, r.size, r.mode, r.uid, r.gid, r.checksum);
      })(),
    );
  }

  /** Drops cache rows naming objects that prune or fsck removed. */
  forgetDevinos(checksums: ReadonlySet<Checksum>): void {
    const rows = this.#db
      .prepare<[], { dev: number; ino: number; checksum: Checksum }>('SELECT dev, ino, checksum FROM devino')
      .all();
    const del = this.#db.prepare('DELETE FROM devino WHERE dev = ? AND ino = ?');
    this.#db.transaction(() => {
      for (const r of rows) if (checksums.has(r.checksum)) del.run(r.dev, r.ino);
    })();
  }

  /**
   * Commits whose object may be present without their whole tree: a pull marks a commit before
   * fetching its objects and unmarks it when the last one is published (ostree's commitpartial).
   */
  markPartial(checksum: Checksum): void {
    translate('marking a partial commit', () =>
      this.#db.prepare('INSERT OR IGNORE INTO partial VALUES (?, ?)').run(checksum, Math.floor(Date.now() / 1000)),
    );
  }
  clearPartial(checksum: Checksum): void {
    translate('unmarking a partial commit', () =>
      this.#db.prepare('DELETE FROM partial WHERE checksum = ?').run(checksum),
    );
  }
  isPartial(checksum: Checksum): boolean {
    return (
      this.#db.prepare<[string], { one: number }>('SELECT 1 AS one FROM partial WHERE checksum = ?').get(checksum) !==
      undefined
    );
  }
  listPartial(): Checksum[] {
    return this.#db
      .prepare<[], { checksum: Checksum }>('SELECT checksum FROM partial ORDER BY checksum')
      .all()
      .map((r) => r.checksum);
  }

  /** The newest summary accepted from a remote (replay protection), if any. */
  getRemoteSummary(remote: string): { timestamp: number; checksum: Checksum } | undefined {
    return this.#db
      .prepare<[string], { timestamp: number; checksum: Checksum }>(
        'SELECT timestamp, checksum FROM remote_summaries WHERE remote = ?',
      )
      .get(remote);
  }
  /** Records an accepted summary; only ever moves forward, so two racing pulls keep the newer. */
  recordRemoteSummary(remote: string, record: { timestamp: number; checksum: Checksum }, now: number): void {
    translate('recording a remote summary', () =>
      this.#db
        .prepare(
          `INSERT INTO remote_summaries VALUES (?, ?, ?, ?) ON CONFLICT (remote) DO UPDATE
           SET timestamp = excluded.timestamp, checksum = excluded.checksum, accepted = excluded.accepted
           WHERE excluded.timestamp > remote_summaries.timestamp`,
        )
        .run(remote, record.timestamp, record.checksum, now),
    );
  }
  /** Forgets a remote's summary record (`remote reset-freshness`, `remote delete`); false when there was none. */
  forgetRemoteSummary(remote: string): boolean {
    return translate(
      'forgetting a remote summary',
      () => this.#db.prepare('DELETE FROM remote_summaries WHERE remote = ?').run(remote).changes > 0,
    );
  }

  clearCaches(): void {
    this.#db.exec('DELETE FROM commits; DELETE FROM devino;');
  }
}
