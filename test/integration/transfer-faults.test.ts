// A server that misbehaves mid-pull: a wrong, truncated or missing object, a 500, a corrupt delta
// part, a connection reset. Each pull fails with its documented code naming the object or URL,
// leaves the remote ref and a clean fsck (nothing unverified stored), and succeeds once healed.
import { existsSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, arbor, runCli, sh } from '../support/cli.js';
import { HAVE_NGINX, type NginxServer, startFaultProxy, startNginx } from '../support/nginx.js';
import { expectArborError, flipByte, initRepo, stagingDirs } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import {
  AccessLog,
  commitVersion,
  fsck,
  refsOf,
  runCliEnv,
  servedObjectPath,
  treeChecksums,
  writeTransferTree,
} from '../support/transfer.js';
import { listTree } from '../support/tree.js';

describe.skipIf(!HAVE_NGINX)('pulling from a faulty server', () => {
  const tmp = useTempDir('arbor-transfer-faults-');
  let nginx: NginxServer;
  let log: AccessLog;
  let server: string;
  let template: string;
  let v1: string;
  let v2: string;
  /** Objects new in v2: a small edited file, the large file, a new directory's dirtree. */
  const target = { small: '', large: '', other: '', dirtree: '' };
  let clients = 0;

  /** A copy of the client that pulled v1 as origin:os/main (origin is nginx, or URL when given). */
  const clientAtV1 = (url?: string): string => {
    const repo = join(tmp.path, `client-${clients++}`);
    sh(`cp -a '${template}' '${repo}'`);
    if (url !== undefined) setOrigin(repo, url);
    return repo;
  };
  const setOrigin = (repo: string, url: string): void => {
    arbor('remote', 'delete', '--repo', repo, '--if-exists', 'origin');
    arbor('remote', 'add', '--repo', repo, 'origin', url, '--no-sign-verify');
  };
  const serverFile = (checksum: string, kind: 'file' | 'dirtree'): string =>
    join(server, servedObjectPath(checksum, kind));
  const urlOf = (checksum: string, kind: 'file' | 'dirtree', base = nginx.url): string =>
    `${base}/plain/${servedObjectPath(checksum, kind)}`;
  const hasObject = (repo: string, checksum: string, ext: string): boolean =>
    existsSync(join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${ext}`));
  const pullArgs = (repo: string, ...flags: string[]): string[] => [
    'pull',
    '--repo',
    repo,
    'origin',
    ...flags,
    'os/main',
  ];

  /** What every failed pull must leave: origin:os/main at v1, a clean fsck, no staging dir. */
  const expectUntouched = (repo: string): void => {
    expect(refsOf(repo)).toEqual({ 'origin:os/main': v1 });
    expect(fsck(repo)).toEqual({ exitCode: 0, output: expect.stringContaining('clean') });
    expect(stagingDirs(repo)).toEqual([]);
  };
  /** A retry without the fault completes: exit 0 and the ref at v2 (fsck after failures shows what is stored is sound). */
  const expectRetrySucceeds = (repo: string, ...flags: string[]): void =>
    expectPulledV2(repo, runCli(pullArgs(repo, ...flags)));
  const expectPulledV2 = (repo: string, r: CliResult): void => {
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`origin:os/main: ${v2} (2.0)`);
    expect(refsOf(repo)).toEqual({ 'origin:os/main': v2 });
  };

  beforeAll(async () => {
    const trees = { v1: join(tmp.path, 'tree-v1'), v2: join(tmp.path, 'tree-v2') };
    writeTransferTree(trees.v1, 1);
    writeTransferTree(trees.v2, 2);
    server = initRepo(join(tmp.path, 'srv/plain'), 'archive');
    v1 = commitVersion(server, 1, trees.v1);
    arbor('summary', '--repo', server, '--update');
    log = new AccessLog(join(tmp.path, 'access.log'));
    nginx = await startNginx(join(tmp.path, 'srv'), { accessLog: log.path });
    // The client pulls v1 before the server moves on, as a real one would have.
    template = initRepo(join(tmp.path, 'template'), 'bare-user');
    setOrigin(template, `${nginx.url}/plain`);
    arbor('pull', '--repo', template, 'origin', 'os/main');
    v2 = commitVersion(server, 2, trees.v2);
    arbor('static-delta', 'generate', '--repo', server, '--to', 'os/main');
    arbor('summary', '--repo', server, '--update');
    const ids = treeChecksums(server, v2);
    const old = treeChecksums(server, v1);
    Object.assign(target, {
      small: ids.get('/bulk/d00/f0000'),
      large: ids.get('/large/big.bin'),
      other: ids.get('/etc/os-release'),
      dirtree: ids.get('/added'),
    });
    for (const [what, checksum] of Object.entries(target))
      expect([...old.values()], `${what} is new in v2`).not.toContain(checksum);
  });
  afterAll(() => nginx?.stop());

  it("exits 3 naming the object and URL when the server sends another object's bytes", () => {
    const file = serverFile(target.small, 'file');
    const good = readFileSync(file);
    writeFileSync(file, readFileSync(serverFile(target.other, 'file')));
    const repo = clientAtV1();
    try {
      expectArborError(
        runCli(pullArgs(repo, '--disable-static-deltas')),
        3,
        'E_PULL_CORRUPT',
        `file ${target.small}`,
        urlOf(target.small, 'file'),
      );
      expectUntouched(repo);
      expect(hasObject(repo, target.small, 'file')).toBe(false);
    } finally {
      writeFileSync(file, good);
    }
    expectRetrySucceeds(repo, '--disable-static-deltas');
  });

  it('exits 3 naming the object and URL when an object file is truncated (the large one, streamed to disk)', () => {
    const file = serverFile(target.large, 'file');
    const good = readFileSync(file);
    truncateSync(file, Math.floor(good.length / 2));
    const repo = clientAtV1();
    try {
      expectArborError(
        runCli(pullArgs(repo, '--disable-static-deltas')),
        3,
        'E_PULL_CORRUPT',
        `file ${target.large}`,
        urlOf(target.large, 'file'),
      );
      expectUntouched(repo);
      expect(hasObject(repo, target.large, 'file')).toBe(false);
    } finally {
      writeFileSync(file, good);
    }
    expectRetrySucceeds(repo, '--disable-static-deltas');
  });

  it('exits 1 naming the URL when the server has no such object (404)', () => {
    const file = serverFile(target.dirtree, 'dirtree');
    renameSync(file, `${file}.away`);
    const repo = clientAtV1();
    try {
      expectArborError(
        runCli(pullArgs(repo, '--disable-static-deltas')),
        1,
        'E_REMOTE_MISSING',
        urlOf(target.dirtree, 'dirtree'),
      );
      expectUntouched(repo);
    } finally {
      renameSync(`${file}.away`, file);
    }
    expectRetrySucceeds(repo, '--disable-static-deltas');
  });

  it('exits 1 naming the URL when the server answers 500 for one object (after 3 tries)', async () => {
    const failing = await startNginx(join(tmp.path, 'srv'), {
      errorLocations: { [`/plain/${servedObjectPath(target.small, 'file')}`]: 500 },
    });
    const repo = clientAtV1(`${failing.url}/plain`);
    try {
      const r = runCli(pullArgs(repo, '--disable-static-deltas'));
      expectArborError(r, 1, 'E_FETCH_FAILED', urlOf(target.small, 'file', failing.url), 'HTTP 500', 'tried 3 times');
      expectUntouched(repo);
    } finally {
      await failing.stop();
    }
    setOrigin(repo, `${nginx.url}/plain`);
    expectRetrySucceeds(repo, '--disable-static-deltas');
  });

  it('exits 3 naming the part when a delta part is corrupt, after fetching it twice, and applies none of it', () => {
    const name = `${v1}-${v2}`;
    const part = join(server, 'deltas', name, '0');
    const middle = Math.floor(readFileSync(part).length / 2);
    flipByte(part, middle);
    const repo = clientAtV1();
    try {
      log.mark();
      expectArborError(runCli(pullArgs(repo)), 3, 'E_DELTA_CORRUPT', `${nginx.url}/plain/deltas/${name}/0`);
      expect(log.since().filter((e) => e.path === `/plain/deltas/${name}/0`).length).toBe(2);
      expectUntouched(repo);
    } finally {
      flipByte(part, middle);
    }
    log.mark();
    expectRetrySucceeds(repo);
    expect(log.since().filter((e) => e.path.endsWith('.filez'))).toEqual([]);
  });

  it('exits 1 naming the URL when every response for an object is reset mid-stream', async () => {
    const path = `/plain/${servedObjectPath(target.large, 'file')}`;
    const proxy = await startFaultProxy(nginx.port, { match: (p) => p === path, afterBodyBytes: 1 << 20 });
    const repo = clientAtV1(`${proxy.url}/plain`);
    try {
      // Asynchronously: the proxy runs in this process.
      expectArborError(
        await runCliEnv(pullArgs(repo, '--disable-static-deltas'), {}),
        1,
        'E_FETCH_FAILED',
        `${proxy.url}${path}`,
        'tried 3 times',
      );
      expect(proxy.resets).toBe(3);
      expectUntouched(repo);
    } finally {
      await proxy.stop();
    }
    setOrigin(repo, `${nginx.url}/plain`);
    expectRetrySucceeds(repo, '--disable-static-deltas');
  });

  it('retries a response reset once mid-stream and completes the pull with the file intact', async () => {
    const path = `/plain/${servedObjectPath(target.large, 'file')}`;
    const proxy = await startFaultProxy(nginx.port, { match: (p) => p === path, afterBodyBytes: 1 << 20, times: 1 });
    const repo = clientAtV1(`${proxy.url}/plain`);
    try {
      expectPulledV2(repo, await runCliEnv(pullArgs(repo, '--disable-static-deltas'), {}));
      expect(proxy.resets).toBe(1);
    } finally {
      await proxy.stop();
    }
    const dest = join(tmp.path, 'checkout-after-reset');
    arbor('checkout', '--repo', repo, '--copy', 'origin:os/main', dest);
    expect(listTree(dest)).toEqual(listTree(join(tmp.path, 'tree-v2')));
  });
});
