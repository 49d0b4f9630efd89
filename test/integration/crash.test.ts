// Crash safety: arbor is SIGKILLed at random moments of commit, checkout, ref deletion and prune;
// after each kill the repository must be fsck-clean with refs at old or complete new commits, and
// running the command again must succeed. SEED=<n> replays a run; SOAK=1 runs 1000 iterations per
// repository mode (SOAK=<n>: n iterations); CI runs 12.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli, tempDir } from '../support/cli.js';
import { runCliKilledAfter, timeCli } from '../support/kill.js';
import { Random, seedFromEnv } from '../support/random.js';
import { diffSnapshots, snapshotTree, writeBulkTree } from '../support/bulk-tree.js';

const SEED = seedFromEnv();
// Commits publish staged objects every 500 of them while they walk (4096 by default), so a kill also
// lands between two such checkpoints; the commands inherit this environment.
process.env.ARBOR_CKPT_OBJ = '500';
const ITERATIONS = soakIterations(process.env.SOAK);

function soakIterations(soak: string | undefined): number {
  if (soak === undefined || soak === '' || soak === '0') return 12;
  if (soak === '1' || soak === 'true') return 1000;
  const n = Number(soak);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`SOAK must be 1 (1000 iterations) or an iteration count, got '${soak}'`);
  return n;
}

/**
 * One step of the rotation. commit-new writes tree B afresh (prune removed it two steps before),
 * commit-old moves `old` onto a changed tree A, and prune deletes what delete-new orphaned.
 */
type Op = 'commit-new' | 'checkout' | 'commit-old' | 'delete-new' | 'prune';
const ROTATION: readonly Op[] = ['commit-new', 'checkout', 'commit-old', 'delete-new', 'prune'];

interface Commit {
  checksum: string;
  parent: string | null;
}

describe.each(['bare', 'bare-user'] as const)('crash safety of a %s repository under SIGKILL', (mode) => {
  const random = new Random(SEED).derive(mode);
  let dir: { path: string; cleanup: () => void };
  let repo: string;
  let treeA: string;
  let treeB: string;
  const durationMs = new Map<Op, number>();
  let snapshotB: Map<string, string>;
  let scratch = 0;
  const freshDir = (what: string): string => join(dir.path, `${what}-${scratch++}`);

  const cli = (...args: string[]): CliResult => runCli([...args, '--repo', repo]);
  const ok = (...args: string[]): string => {
    const r = cli(...args);
    if (r.exitCode !== 0)
      throw new Error(`arbor ${args.join(' ')} exited ${r.exitCode ?? r.signal}:\n${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  };
  const refs = (): Map<string, string> =>
    new Map(
      (JSON.parse(ok('refs', '--json')) as { name: string; checksum: string }[]).map((r) => [r.name, r.checksum]),
    );
  const history = (rev: string): Commit[] => (JSON.parse(ok('log', '--json', rev)) as { commits: Commit[] }).commits;
  /** The first lines of a command's output, for failure messages (fsck can list thousands). */
  const head = (r: CliResult): string => `${r.stderr}${r.stdout}`.split('\n').slice(0, 12).join('\n');
  const expectFsckClean = (): void => {
    const r = cli('fsck');
    expect(r.exitCode, `fsck:\n${head(r)}`).toBe(0);
  };
  /** Checks `rev` out with --copy into a fresh directory and compares it with `expected`. */
  const expectCheckoutEquals = (rev: string, expected: Map<string, string>): void => {
    const dest = freshDir('verify');
    ok('checkout', '--copy', rev, dest);
    expect(diffSnapshots(expected, snapshotTree(dest)), `checkout of ${rev}`).toEqual([]);
    rmSync(dest, { recursive: true, force: true });
  };

  /** Every object file name (objects/XX/NAME), sorted. */
  const objectNames = (): string[] =>
    readdirSync(join(repo, 'objects'))
      .flatMap((prefix) => readdirSync(join(repo, 'objects', prefix)).map((name) => `${prefix}/${name}`))
      .sort();

  /**
   * Commits no ref reaches (a killed commit's published commit object, or one a killed prune has
   * not reached yet) must still be complete: any of them may be given a ref later (`refs --create`).
   */
  const expectDanglingCommitsComplete = (refsNow: ReadonlyMap<string, string>): void => {
    const reachable = new Set<string>();
    for (const checksum of refsNow.values()) for (const c of history(checksum)) reachable.add(c.checksum);
    const dangling = objectNames()
      .filter((name) => name.endsWith('.commit'))
      .map((name) => name.replace('/', '').slice(0, -'.commit'.length))
      .filter((checksum) => !reachable.has(checksum));
    if (dangling.length === 0) return;
    dangling.forEach((checksum, i) => ok('refs', '--create', `probe/${i}`, checksum));
    const r = cli('fsck');
    dangling.forEach((_, i) => ok('refs', '--delete', `probe/${i}`));
    expect(r.exitCode, `fsck with refs on unreferenced commits ${dangling.join(', ')}:\n${head(r)}`).toBe(0);
  };

  const stagingDirs = (): string[] => readdirSync(join(repo, 'tmp')).filter((name) => name.startsWith('staging-'));
  /**
   * Staging directories left after a transaction ran: a killed owner's is removed by the next
   * transaction. Only one killed between mkdir and taking its lock (microseconds) has no `.lock`
   * and is spared for a minute, as a live one in that state would be; it holds no objects yet.
   */
  const expectNoStagingLeftovers = (): void => {
    for (const name of stagingDirs()) {
      const staging = join(repo, 'tmp', name);
      expect(existsSync(join(staging, '.lock')), `tmp/${name} outlived the next transaction`).toBe(false);
      expect(
        readdirSync(staging).filter((n) => n !== '.lock.new'),
        `tmp/${name} holds objects`,
      ).toEqual([]);
    }
  };

  const argsOf = (op: Op, i: number): string[] => {
    switch (op) {
      case 'commit-new':
        return ['commit', '-b', 'new', '-s', `B ${i}`, '--tree', `dir=${treeB}`];
      case 'commit-old':
        return ['commit', '-b', 'old', '-s', `A ${i}`, '--tree', `dir=${treeA}`];
      case 'checkout':
        // Alternate copies with the default (hardlinks from a bare repository as root).
        return ['checkout', ...(i % 2 === 0 ? ['--copy'] : []), 'new', freshDir('checkout')];
      case 'delete-new':
        return ['refs', '--delete', 'new'];
      case 'prune':
        return ['prune', '--refs-only'];
    }
  };

  beforeAll(async () => {
    dir = tempDir(`arbor-crash-${mode}-`);
    repo = join(dir.path, 'repo');
    treeA = join(dir.path, 'A');
    treeB = join(dir.path, 'B');
    writeBulkTree(treeA, { smallFiles: 300, dirs: 10, largeFiles: 1, largeBytes: 2 * 1024 * 1024 }, random.derive('A'));
    writeFileSync(join(treeA, 'generation'), 'setup\n');
    // A few thousand small files and some large ones (6 and 20 MiB): a commit takes one to three
    // seconds, a wide window to kill it in.
    writeBulkTree(
      treeB,
      { smallFiles: 3000, dirs: 40, largeFiles: 3, largeBytes: 6 * 1024 * 1024 },
      random.derive('B'),
    );
    writeFileSync(join(treeB, 'large', 'streamed'), random.derive('B streamed').bytes(20 * 1024 * 1024));
    snapshotB = snapshotTree(treeB);
    ok('init', '--mode', mode);
    ok('commit', '-b', 'old', '--tree', `dir=${treeA}`);
    // Unkilled runs of each step: the kill delays are drawn from these durations.
    const measure = async (op: Op, args: string[]): Promise<void> => {
      const { result, elapsedMs } = await timeCli([...args, '--repo', repo]);
      if (result.exitCode !== 0)
        throw new Error(`arbor ${args.join(' ')} exited ${result.exitCode}:\n${result.stderr}`);
      durationMs.set(op, elapsedMs);
    };
    writeFileSync(join(treeA, 'generation'), 'measure\n');
    await measure('commit-old', argsOf('commit-old', -1));
    await measure('commit-new', argsOf('commit-new', -1));
    const checkout = argsOf('checkout', 0);
    await measure('checkout', checkout);
    expect(diffSnapshots(snapshotB, snapshotTree(checkout.at(-1) as string))).toEqual([]);
    rmSync(checkout.at(-1) as string, { recursive: true, force: true });
    await measure('delete-new', argsOf('delete-new', -1));
    await measure('prune', argsOf('prune', -1));
  });
  afterAll(() => dir.cleanup());

  it(
    `keeps refs complete and fsck clean across ${ITERATIONS} kills (SEED=${SEED})`,
    async () => {
      let current = refs();
      let old = current.get('old') as string;
      const tally = new Map<string, number>();
      const count = (key: string): void => void tally.set(key, (tally.get(key) ?? 0) + 1);

      for (let i = 0; i < ITERATIONS; i++) {
        const op = ROTATION[i % ROTATION.length] as Op;
        const delayMs = Math.round(random.next() * 1.1 * (durationMs.get(op) as number));
        const context = `SEED=${SEED} ${mode} iteration ${i}: ${op} with SIGKILL after ${delayMs} ms`;
        try {
          if (op === 'commit-old') writeFileSync(join(treeA, 'generation'), `${i}\n`);
          const before = current;
          const objectsBefore = op === 'checkout' ? objectNames() : [];
          const args = argsOf(op, i);
          const { result, killed } = await runCliKilledAfter([...args, '--repo', repo], delayMs);
          count(`${op} ${killed ? 'killed' : 'finished'}`);
          if (!killed) expect(result.exitCode, `unkilled run:\n${result.stderr}`).toBe(0);
          if (killed && stagingDirs().length > 0) count(`${op} left a staging dir`);

          // The repository is consistent whatever instant the kill hit.
          expectFsckClean();
          if (op === 'checkout') expect(objectNames(), 'objects after a killed checkout').toEqual(objectsBefore);
          const after = refs();
          expect(
            [...after.keys()].filter((name) => name !== 'new'),
            'refs other than new',
          ).toEqual(['old']);
          if (op === 'commit-old' && after.get('old') !== old) {
            // Killed after the ref moved: it must be the complete new commit, on top of the old one.
            count('commit-old moved the ref');
            expect(history(after.get('old') as string)[1]?.checksum, 'parent of the new old').toBe(old);
            expectCheckoutEquals('old', snapshotTree(treeA));
            old = after.get('old') as string;
          } else {
            expect(after.get('old'), 'ref old').toBe(old);
          }
          if (op === 'commit-new' && after.has('new')) {
            count('commit-new moved the ref');
            expectCheckoutEquals('new', snapshotB);
          } else if (op === 'delete-new') {
            expect([before.get('new'), undefined], 'ref new').toContain(after.get('new'));
          } else {
            expect(after.get('new'), 'ref new').toBe(before.get('new'));
          }
          expectDanglingCommitsComplete(after);

          // Running the same command again succeeds and cleans up after the killed one.
          const retryArgs = op === 'checkout' ? [...args.slice(0, -1), freshDir('checkout')] : args;
          const retry = cli(...retryArgs);
          if (op === 'delete-new' && !after.has('new')) {
            expect(retry.stderr, 'retry of a delete that had finished').toMatch(/^error\[E_REF_NOT_FOUND\]/);
          } else {
            expect(retry.exitCode, `retry:\n${retry.stderr}`).toBe(0);
          }
          if (op === 'commit-old') old = retry.stdout.trim();
          if (op === 'checkout') {
            expect(
              diffSnapshots(snapshotB, snapshotTree(retryArgs.at(-1) as string)),
              'checkout after the killed one',
            ).toEqual([]);
            for (const dest of [args.at(-1) as string, retryArgs.at(-1) as string])
              rmSync(dest, { recursive: true, force: true });
          }
          current = refs();
          expect(current.get('old'), 'ref old after the retry').toBe(old);
          // new exists from commit-new until delete-new.
          expect(current.has('new'), 'ref new after the retry').toBe(op !== 'delete-new' && op !== 'prune');
          if (op === 'commit-new' || op === 'commit-old') expectNoStagingLeftovers();
        } catch (error) {
          throw new Error(`${context}: ${(error as Error).message}`, { cause: error });
        }
      }
      expectFsckClean();
      expectCheckoutEquals('old', snapshotTree(treeA));
      console.log(
        `crash ${mode} SEED=${SEED}: ${[...tally]
          .sort()
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')}`,
      );
    },
    120_000 + ITERATIONS * 15_000,
  );
});
