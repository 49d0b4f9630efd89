// A pull SIGKILLed part-way through: the repository it leaves is fsck-clean with the remote ref
// unmoved, and the restarted pull completes without fetching again any object the killed one stored.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arbor, runCli } from '../support/cli.js';
import { diffSnapshots, snapshotTree, writeBulkTree } from '../support/bulk-tree.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { Random, seedFromEnv } from '../support/random.js';
import { initRepo } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import { AccessLog, fsck, refsOf, runCliEnv, storedObjectsAsServed } from '../support/transfer.js';

const SEED = seedFromEnv();
/** Checkpoints every 200 ms (or 400 objects, should this machine be fast), so a killed pull has published several batches. */
const ENV = { ARBOR_CKPT_MS: '200', ARBOR_CKPT_OBJ: '400' };

describe.skipIf(!HAVE_NGINX)('a pull killed with SIGKILL and restarted', () => {
  const tmp = useTempDir('arbor-transfer-crash-');
  let nginx: NginxServer;
  let log: AccessLog;
  let tree: string;
  let commit: string;
  let fileObjects: number;

  beforeAll(async () => {
    tree = join(tmp.path, 'tree');
    // Thousands of small objects and a few large ones: a pull takes seconds, a wide window to kill it in.
    writeBulkTree(tree, { smallFiles: 3000, dirs: 30, largeFiles: 2, largeBytes: 3 * 1024 * 1024 }, new Random(SEED));
    const server = initRepo(join(tmp.path, 'srv/plain'), 'archive');
    commit = arbor('commit', '--repo', server, '-b', 'os/main', '--tree', `dir=${tree}`);
    arbor('summary', '--repo', server, '--update');
    fileObjects = storedObjectsAsServed(server).filter((p) => p.endsWith('.filez')).length;
    log = new AccessLog(join(tmp.path, 'access.log'));
    nginx = await startNginx(join(tmp.path, 'srv'), { accessLog: log.path });
  });
  afterAll(() => nginx?.stop());

  it(`leaves a clean repository and resumes without refetching what it stored (SEED=${SEED})`, async () => {
    const repo = initRepo(join(tmp.path, 'client'), 'bare-user');
    arbor('remote', 'add', '--repo', repo, 'origin', `${nginx.url}/plain`, '--no-sign-verify');
    const args = ['pull', '--repo', repo, 'origin', '--disable-static-deltas', 'os/main'];

    // Kill once a quarter of the file objects have been served and two checkpoints are due, or at 60 %.
    log.mark();
    let firstObjectAt: number | undefined;
    const killed = await runCliEnv(args, ENV, (child) => {
      const timer = setInterval(() => {
        const served = log.since().filter((e) => e.path.endsWith('.filez')).length;
        if (served > 0) firstObjectAt ??= Date.now();
        const elapsedMs = Date.now() - (firstObjectAt ?? Date.now());
        if ((served >= fileObjects / 4 && elapsedMs >= 400) || served >= fileObjects * 0.6) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
      }, 10);
      child.on('exit', () => clearInterval(timer));
    });
    expect(killed.signal, `the pull ended before it was killed:\n${killed.stderr}${killed.stdout}`).toBe('SIGKILL');
    const servedBeforeKill = log.since().filter((e) => e.path.endsWith('.filez')).length;
    expect(servedBeforeKill).toBeLessThan(fileObjects);

    // Killed: the ref has not moved, and everything stored is verified and consistent.
    expect(fsck(repo)).toEqual({ exitCode: 0, output: expect.stringContaining('clean') });
    expect(refsOf(repo)).toEqual({});
    const stored = new Set(storedObjectsAsServed(repo).map((p) => `/plain/${p}`));
    expect(
      [...stored].filter((p) => p.endsWith('.filez')).length,
      'file objects published by checkpoints before the kill',
    ).toBeGreaterThan(0);

    log.mark();
    const restarted = await runCliEnv(args, ENV);
    expect(restarted.exitCode, restarted.stderr).toBe(0);
    const fetched = log.since().map((e) => e.path);
    expect(
      fetched.filter((p) => stored.has(p)),
      'objects fetched again although the killed pull had stored them',
    ).toEqual([]);
    const storedFiles = [...stored].filter((p) => p.endsWith('.filez')).length;
    const refetchedFiles = fetched.filter((p) => p.endsWith('.filez')).length;
    expect(refetchedFiles).toBeLessThanOrEqual(fileObjects - storedFiles);
    console.log(
      `transfer crash SEED=${SEED}: killed after ${servedBeforeKill}/${fileObjects} file objects served, ${storedFiles} stored; the restart fetched ${refetchedFiles}`,
    );

    expect(refsOf(repo)).toEqual({ 'origin:os/main': commit });
    expect(fsck(repo).exitCode).toBe(0);
    const dest = join(tmp.path, 'checkout');
    arbor('checkout', '--repo', repo, '--copy', 'origin:os/main', dest);
    expect(diffSnapshots(snapshotTree(tree), snapshotTree(dest))).toEqual([]);
    // One more pull has nothing to do.
    expect(runCli(args).stdout).toContain('up to date');
  });

  // Kills at random moments, again and again, on the same client: after each one fsck is clean and
  // the ref has not moved; nothing stored is ever fetched again; the last pull completes. CI runs
  // a few; SOAK=1 runs 200, SOAK=<n> runs n (`npm run soak` includes this file).
  const KILLS = process.env.SOAK === undefined ? 4 : process.env.SOAK === '1' ? 200 : Number(process.env.SOAK);
  it(
    `survives ${KILLS} kills at random moments (SEED=${SEED})`,
    async () => {
      const rng = new Random(SEED + 1);
      const repo = initRepo(join(tmp.path, `client-random-${SEED}`), rng.int(0, 1) === 0 ? 'bare-user' : 'archive');
      arbor('remote', 'add', '--repo', repo, 'origin', `${nginx.url}/plain`, '--no-sign-verify');
      const args = ['pull', '--repo', repo, 'origin', '--disable-static-deltas', 'os/main'];
      let completed = false;
      for (let i = 0; i < KILLS && !completed; i++) {
        const before = new Set(storedObjectsAsServed(repo).map((p) => `/plain/${p}`));
        log.mark();
        const delayMs = rng.int(0, 2500);
        const result = await runCliEnv(args, ENV, (child) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
          child.on('exit', () => clearTimeout(timer));
        });
        const refetched = log
          .since()
          .map((e) => e.path)
          .filter((p) => before.has(p));
        expect(refetched, `kill ${i} (after ${delayMs} ms): fetched again what was stored`).toEqual([]);
        expect(fsck(repo).exitCode, `kill ${i}: fsck`).toBe(0);
        if (result.signal === 'SIGKILL') expect(refsOf(repo), `kill ${i}: the ref moved`).toEqual({});
        else {
          expect(result.exitCode, result.stderr).toBe(0);
          completed = true;
        }
      }
      if (!completed) expect((await runCliEnv(args, ENV)).exitCode).toBe(0);
      expect(refsOf(repo)).toEqual({ 'origin:os/main': commit });
      const dest = join(tmp.path, `checkout-random-${SEED}`);
      arbor('checkout', '--repo', repo, '--copy', 'origin:os/main', dest);
      expect(diffSnapshots(snapshotTree(tree), snapshotTree(dest))).toEqual([]);
    },
    600_000 + KILLS * 10_000,
  );
});
