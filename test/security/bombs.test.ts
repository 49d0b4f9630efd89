// Download and decompression bombs against a real HTTP server on 127.0.0.1: every file object,
// delta part and patch a client fetches is bounded by what signed (or hash-chained) metadata says
// it holds. Each attack must fail with its error, move no ref, keep the client's peak RSS under
// 256 MiB and leave its repository about as big as before; the bombs are stopped early by design.
import { mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { type Checksum, hashBytes } from '../../src/common/hash.js';
import {
  DeltaPartWriter,
  type Superblock,
  decodeSummary,
  encodeCommit,
  encodeFileHeader,
  encodeSummary,
  encodeSuperblock,
} from '../../src/repo/objects/index.js';
import { arbor, runCliAsync, sh } from '../support/cli.js';
import {
  type HostileServer,
  ENDLESS_ZSTD_FRAME_HEAD,
  type MeasuredResult,
  endlessBody,
  runCliMeasured,
  sendBytes,
  startHostileServer,
  zstdZeroBomb,
} from '../support/hostile.js';
import { initRepo, objectFile, rawDirTree, regularHeader, writeRawObject } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import { refsOf, servedObjectPath, treeChecksums } from '../support/transfer.js';

const SMALL = 1000;
const GiB = 1024 ** 3;
const PEAK_RSS_LIMIT_KIB = 256 * 1024;
/** What a refused pull may leave in the client beyond its size before: spilled partial downloads are removed. */
const DISK_SLACK_BYTES = 8 * 1024 * 1024;

describe('bounded downloads and inflation', () => {
  const tmp = useTempDir('arbor-bombs-');
  let server: string;
  let host: HostileServer;
  let c1: Checksum;
  let c2: Checksum;
  let small1: Checksum;
  let small2: Checksum;
  let clients = 0;
  /** 3 GiB of zeros in a frame that says so, and 1 GiB in one that does not say. */
  let declared3GiB: Buffer;
  let undeclared1GiB: Buffer;

  beforeAll(async () => {
    server = initRepo(join(tmp.path, 'server'), 'archive');
    for (const [version, fill] of [
      [1, 'a'],
      [2, 'b'],
    ] as const) {
      const tree = join(tmp.path, `tree${version}`);
      mkdirSync(join(tree, 'etc'), { recursive: true });
      writeFileSync(join(tree, 'small'), fill.repeat(SMALL));
      writeFileSync(join(tree, 'etc/os-release'), `VERSION=${version}\n`);
      const commit = arbor(
        'commit',
        '--repo',
        server,
        '-b',
        'os/main',
        '-s',
        `v${version}`,
        '--timestamp',
        String(1_700_000_000 + version),
        '--tree',
        `dir=${tree}`,
      ) as Checksum;
      if (version === 1) c1 = commit;
      else c2 = commit;
    }
    arbor('refs', '--repo', server, '--create', 'os/stable', c1);
    arbor('summary', '--repo', server, '--update');
    small1 = treeChecksums(server, c1).get('/small') as Checksum;
    small2 = treeChecksums(server, c2).get('/small') as Checksum;
    declared3GiB = zstdZeroBomb(3 * GiB, true);
    undeclared1GiB = zstdZeroBomb(GiB, false);
    host = await startHostileServer(server);
  });

  afterAll(async () => {
    await host?.stop();
  });

  /** A fresh client with an unsigned remote `origin` for the hostile server. */
  const client = (): string => {
    const repo = initRepo(join(tmp.path, `client-${clients++}`), 'bare-user');
    arbor('remote', 'add', '--repo', repo, 'origin', host.url, '--no-sign-verify');
    return repo;
  };
  const diskBytes = (path: string): number => Number(sh(`du -sb '${path}'`).split('\t')[0]);
  /** Serves `files` (URL path → bytes) instead of the server's own. */
  const serve = (files: Record<string, Buffer | ((res: Parameters<typeof sendBytes>[0]) => void)>): void =>
    host.setOverride((_req, res, path) => {
      const body = files[path];
      if (body === undefined) return false;
      if (Buffer.isBuffer(body)) sendBytes(res, body);
      else body(res);
      return true;
    });

  /** Runs `args` against `repo` and checks the refusal: code, no ref moved, small RSS and disk use. */
  const expectRefused = async (
    repo: string,
    args: string[],
    exitCode: number,
    code: string,
    ...mentions: string[]
  ): Promise<MeasuredResult> => {
    const refs = refsOf(repo);
    const disk = diskBytes(repo);
    const r = await runCliMeasured([...args, '--repo', repo], { timeoutMs: 60_000 });
    host.setOverride(null);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.stderr).toContain(`error[${code}]`);
    for (const m of mentions) expect(r.stderr).toContain(m);
    expect(r.exitCode, r.stderr).toBe(exitCode);
    expect(r.peakRssKiB).toBeLessThan(PEAK_RSS_LIMIT_KIB);
    expect(refsOf(repo)).toEqual(refs);
    expect(diskBytes(repo)).toBeLessThan(disk + DISK_SLACK_BYTES);
    return r;
  };

  describe('file objects', () => {
    const smallUrl = (): string => `/${servedObjectPath(small1, 'file')}`;

    it('stops an endless chunked body at the compressed bound of the size its dirtree records', async () => {
      // A valid zstd frame that never ends and inflates to nothing: only the byte bound can stop it.
      serve({ [smallUrl()]: (res) => endlessBody(res, 64 * 1024, ENDLESS_ZSTD_FRAME_HEAD, 0) });
      await expectRefused(
        client(),
        ['pull', 'origin', '--disable-static-deltas', 'os/stable'],
        1,
        'E_FETCH_FAILED',
        servedObjectPath(small1, 'file'),
        'more than the',
      );
    });

    it('refuses a zstd frame declaring 3 GiB for a 1000-byte file before inflating it', async () => {
      expect(declared3GiB.length).toBeLessThan(256 * 1024);
      serve({ [smallUrl()]: declared3GiB });
      await expectRefused(
        client(),
        ['pull', 'origin', '--disable-static-deltas', 'os/stable'],
        3,
        'E_PULL_CORRUPT',
        `file ${small1}`,
        'declares 3221225472 bytes',
      );
    });

    it('stops a frame without a declared size that inflates past the 1000 bytes its dirtree records', async () => {
      // A valid header saying 1000 bytes, then a gigabyte of zeros: hash mismatch only after inflating it all.
      serve({ [smallUrl()]: zstdZeroBomb(GiB, false, encodeFileHeader(regularHeader(SMALL))) });
      await expectRefused(
        client(),
        ['pull', 'origin', '--disable-static-deltas', 'os/stable'],
        3,
        'E_PULL_CORRUPT',
        `file ${small1}`,
        'more than the 1000 content bytes',
      );
    });

    it('stops a frame of zeros without a declared size or a header', async () => {
      serve({ [smallUrl()]: undeclared1GiB });
      await expectRefused(
        client(),
        ['pull', 'origin', '--disable-static-deltas', 'os/stable'],
        3,
        'E_PULL_CORRUPT',
        `file ${small1}`,
      );
    });
  });

  /** A superblock from `from` to `to` whose one part is `part`, claiming `uncompressedSize` and `objects`. */
  const superblock = (
    from: Checksum | null,
    to: Checksum,
    part: Buffer,
    uncompressedSize: number,
    objects: number,
  ): Buffer => {
    const sb: Superblock = {
      from,
      to,
      commit: readFileSync(objectFile(server, to, 'commit')),
      commitMeta: null,
      parts: [{ checksum: hashBytes(part), size: part.length, uncompressedSize, objects, inline: null }],
      metadata: new Map(),
    };
    return encodeSuperblock(sb);
  };
  /** The server's summary listing only the delta `from`→`to` with superblock `sb` (and its part). */
  const summaryWith = (
    from: Checksum | null,
    to: Checksum,
    sb: Buffer,
    partBytes: number,
    refs?: Record<string, Checksum>,
  ): Buffer => {
    const summary = decodeSummary(readFileSync(join(server, 'summary')));
    return encodeSummary({
      ...summary,
      // Newer than the real one: a client that accepted that one would refuse an equal timestamp as a replay.
      timestamp: summary.timestamp + 1,
      refs: summary.refs.map((r) => ({ ...r, checksum: refs?.[r.name] ?? r.checksum })),
      deltas: [{ from, to, superblock: hashBytes(sb), size: sb.length + partBytes }],
    });
  };
  const deltaDir = (from: Checksum | null, to: Checksum): string => (from ? `/deltas/${from}-${to}` : `/deltas/${to}`);
  /** Serves a delta from `from` to `to` whose one part is `part`, listed by a forged (unsigned) summary. */
  const serveDelta = (
    from: Checksum | null,
    to: Checksum,
    part: Buffer,
    uncompressedSize: number,
    objects: number,
  ): void => {
    const sb = superblock(from, to, part, uncompressedSize, objects);
    serve({
      '/summary': summaryWith(from, to, sb, part.length),
      [`${deltaDir(from, to)}/superblock`]: sb,
      [`${deltaDir(from, to)}/0`]: part,
    });
  };

  describe('static deltas', () => {
    it.each([
      ['declaring 3 GiB', (): Buffer => declared3GiB, 'declares 3221225472 bytes'],
      ['declaring no size', (): Buffer => undeclared1GiB, 'inflates to more than the 1000 bytes'],
    ])('refuses a part %s when the superblock says 1000 bytes', async (_what, part, problem) => {
      serveDelta(null, c1, part(), SMALL, 1);
      await expectRefused(client(), ['pull', 'origin', 'os/stable'], 3, 'E_DELTA_CORRUPT', `deltas/${c1}/0`, problem);
    });

    it.each([
      ['declaring 3 GiB', (): Buffer => declared3GiB, 'declares 3221225472 bytes'],
      ['declaring no size', (): Buffer => undeclared1GiB, 'declares no content size'],
    ])('refuses a patch window %s for a file whose header says 1000 bytes', async (_what, patch, problem) => {
      const repo = client();
      // Async: the server runs in this process, so a synchronous CLI run could never be answered.
      const first = await runCliAsync(['pull', '--repo', repo, 'origin', '--disable-static-deltas', 'os/stable']);
      expect(first.exitCode, first.stderr).toBe(0);
      const writer = new DeltaPartWriter();
      const windows = [{ sourceOffset: 0, sourceSize: 0, outputSize: SMALL, frame: patch() }];
      writer.add({ op: 'patch', checksum: small2, header: regularHeader(SMALL), source: small1, windows });
      const body = writer.finish();
      serveDelta(c1, c2, compress(body), body.length, 1);
      await expectRefused(repo, ['pull', 'origin', 'os/main'], 3, 'E_PULL_CORRUPT', `file ${small2}`, problem);
    });

    it('refuses a superblock of another commit than the summary lists, naming both', async () => {
      // The summary says os/main → c2 by a delta from scratch, and vouches for a superblock to c1.
      const body = new DeltaPartWriter().finish();
      const part = compress(body);
      const sb = superblock(null, c1, part, body.length, 0);
      serve({
        '/summary': summaryWith(null, c2, sb, part.length),
        [`${deltaDir(null, c2)}/superblock`]: sb,
        [`${deltaDir(null, c2)}/0`]: part,
      });
      await expectRefused(client(), ['pull', 'origin', 'os/main'], 3, 'E_DELTA_CORRUPT', `to ${c1}`, `to ${c2}`);
    });

    it.each([
      ['declaring 3 GiB', (): Buffer => declared3GiB, 'declares 3221225472 bytes'],
      ['declaring no size', (): Buffer => undeclared1GiB, 'inflates to more than the 1000 bytes'],
    ])('apply-offline refuses a part %s when the superblock says 1000 bytes', async (what, part, problem) => {
      const dir = join(tmp.path, `offline-${what.replace(/ /g, '-')}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'superblock'), superblock(null, c1, part(), SMALL, 1));
      writeFileSync(join(dir, '0'), part());
      await expectRefused(
        client(),
        ['static-delta', 'apply-offline', dir],
        3,
        'E_DELTA_CORRUPT',
        join(dir, '0'),
        problem,
      );
    });
  });

  describe('apply-offline superblocks', () => {
    it.each([
      ['a sparse 64 MiB file', (path: string) => truncateSync(path, 64 * 1024 * 1024), 'is larger than 10485760 bytes'],
      ['a link to /dev/zero', (path: string) => symlinkSync('/dev/zero', path), 'is a special file'],
    ])('refuses a superblock that is %s before reading it', async (what, plant, problem) => {
      const dir = join(tmp.path, `offline-sb-${what.replace(/\W+/g, '-')}`);
      mkdirSync(dir);
      const path = join(dir, 'superblock');
      if (what.startsWith('a sparse')) writeFileSync(path, '');
      plant(path);
      await expectRefused(
        client(),
        ['static-delta', 'apply-offline', dir],
        3,
        'E_DELTA_CORRUPT',
        `'${path}' ${problem}`,
      );
    });

    it('bounds the superblock by --max-superblock-size when it is given', async () => {
      const dir = join(tmp.path, 'offline-sb-flag');
      mkdirSync(dir);
      writeFileSync(join(dir, 'superblock'), Buffer.alloc(2000));
      await expectRefused(
        client(),
        ['static-delta', 'apply-offline', '--max-superblock-size', '1999', dir],
        3,
        'E_DELTA_CORRUPT',
        'is larger than 1999 bytes',
      );
    });
  });

  describe('remote limits', () => {
    /** A client whose remote section also sets `key=value` (the section is the config's last). */
    const clientWith = (key: string, value: string): string => {
      const repo = client();
      writeFileSync(join(repo, 'config'), `${readFileSync(join(repo, 'config'), 'utf8').trimEnd()}\n${key}=${value}\n`);
      return repo;
    };

    it("refuses a metadata object bigger than the remote's max-metadata-size", async () => {
      await expectRefused(
        clientWith('max-metadata-size', '64'),
        ['pull', 'origin', '--disable-static-deltas', 'os/stable'],
        1,
        'E_FETCH_FAILED',
        `${c1.slice(2)}.commit`,
        'more than the 64 allowed',
      );
    });

    it("refuses a file bigger than an unsigned remote's max-object-size before fetching it", async () => {
      const seen = host.requests.length;
      await expectRefused(
        clientWith('max-object-size', '999'),
        ['pull', 'origin', '--disable-static-deltas', 'os/stable'],
        1,
        'E_OBJECT_TOO_LARGE',
        `file ${small1}`,
        'max-object-size of 999',
      );
      expect(host.requests.slice(seen)).not.toContain(`/${servedObjectPath(small1, 'file')}`);
    });

    it('rejects a size key that is not a whole number of bytes', async () => {
      await expectRefused(
        clientWith('max-object-size', '4G'),
        ['pull', 'origin', 'os/stable'],
        2,
        'E_CONFIG_INVALID',
        'max-object-size=4G',
      );
    });
  });

  describe('a signed tree that lies about a size', () => {
    it('refuses an object bigger than the 1000 bytes its signed dirtree records before inflating it', async () => {
      // An honest 64 MiB object of zeros, named by its real checksum, under a dirtree claiming 1000 bytes.
      const bigSize = 64 * 1024 * 1024;
      const header = encodeFileHeader(regularHeader(bigSize));
      const big = hashBytes(header, Buffer.alloc(bigSize));
      const path = objectFile(server, big, 'file', true);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, zstdZeroBomb(bigSize, true, header));
      const treeBytes = rawDirTree([['big', big, SMALL]], []);
      mkdirSync(dirname(objectFile(server, hashBytes(treeBytes), 'dirtree')), { recursive: true });
      const root = writeRawObject(server, 'dirtree', treeBytes);
      const rootMeta = (JSON.parse(arbor('show', '--json', '--repo', server, c1)) as { rootMeta: Checksum }).rootMeta;
      const commit = encodeCommit({
        parent: null,
        timestamp: 1_700_000_100,
        subject: 'lie',
        body: '',
        rootTree: root,
        rootMeta,
        metadata: new Map(),
      });
      mkdirSync(dirname(objectFile(server, hashBytes(commit), 'commit')), { recursive: true });
      const lie = writeRawObject(server, 'commit', commit);
      arbor('refs', '--repo', server, '--create', 'os/lie', lie);
      const key = JSON.parse(arbor('keygen', '--json', '-o', join(tmp.path, 'release'))) as {
        keyFile: string;
        pubFile: string;
      };
      arbor('sign', '--repo', server, 'os/lie', '--keyfile', key.keyFile);
      arbor('summary', '--repo', server, '--update', '--sign', key.keyFile);
      const repo = initRepo(join(tmp.path, 'signed-client'), 'bare-user');
      arbor('remote', 'add', '--repo', repo, 'origin', host.url, `--sign-verify=ed25519=${key.pubFile}`);
      await expectRefused(
        repo,
        ['pull', 'origin', 'os/lie'],
        3,
        'E_PULL_CORRUPT',
        `file ${big}`,
        `declares ${header.length + bigSize} bytes`,
      );
    });
  });
});
