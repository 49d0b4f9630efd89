// Several arbor processes on one repository at once: parallel commits, two commits racing for one
// ref, readers during a long commit, prune alongside commits that reuse the objects it deletes, and
// fsck alongside prune. Trees and delays are seeded: SEED=<n> replays a run.
import { mkdirSync, readdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli, runCliAsync, tempDir } from '../support/cli.js';
import { Random, seedFromEnv } from '../support/random.js';
import { type BulkTreeSpec, diffSnapshots, snapshotTree, writeBulkTree } from '../support/bulk-tree.js';

const SEED = seedFromEnv();

/** A finished CLI run and when it ended (performance.now()), to order concurrent processes. */
type Timed = CliResult & { endedAt: number };
const timed = (promise: Promise<CliResult>): Promise<Timed> =>
  promise.then((r) => ({ ...r, endedAt: performance.now() }));
/** The first lines of a run's output, for failure messages (fsck can list thousands). */
const head = (r: CliResult): string =>
  `exit ${r.exitCode ?? r.signal}\n${r.stderr}${r.stdout}`.split('\n').slice(0, 12).join('\n');

describe(`concurrent arbor processes on one repository (SEED=${SEED})`, () => {
  const random = new Random(SEED);
  let dir: { path: string; cleanup: () => void };
  let repo: string;
  let scratch = 0;
  const freshDir = (what: string): string => join(dir.path, `${what}-${scratch++}`);

  const run = (...args: string[]): Promise<Timed> => timed(runCliAsync([...args, '--repo', repo]));
  const ok = (...args: string[]): string => {
    const r = runCli([...args, '--repo', repo]);
    if (r.exitCode !== 0) throw new Error(`arbor ${args.join(' ')}: ${head(r)}`);
    return r.stdout.trim();
  };
  const parentOf = (rev: string): string | null =>
    (JSON.parse(ok('log', '--json', '-n', '1', rev)) as { commits: { parent: string | null }[] }).commits[0]?.parent ??
    null;
  const history = (rev: string): string[] =>
    (JSON.parse(ok('log', '--json', rev)) as { commits: { checksum: string }[] }).commits.map((c) => c.checksum);
  const expectFsckClean = (when: string): void => {
    const r = runCli(['fsck', '--repo', repo]);
    expect(r.exitCode, `fsck ${when}: ${head(r)}`).toBe(0);
  };
  const expectCheckoutEquals = (rev: string, tree: string): void => {
    const dest = freshDir('checkout');
    ok('checkout', '--copy', rev, dest);
    expect(diffSnapshots(snapshotTree(tree), snapshotTree(dest)), `checkout of ${rev}`).toEqual([]);
    rmSync(dest, { recursive: true, force: true });
  };
  /** Tree `name`: its own seeded files under own/, plus under shared/ the files `shared` names (same objects). */
  const makeTree = (name: string, own: BulkTreeSpec, shared?: { label: string; spec: BulkTreeSpec }): string => {
    const root = join(dir.path, name);
    writeBulkTree(join(root, 'own'), own, random.derive(name));
    if (shared) writeBulkTree(join(root, 'shared'), shared.spec, random.derive(shared.label));
    return root;
  };

  beforeAll(() => {
    dir = tempDir('arbor-concurrency-');
    repo = join(dir.path, 'repo');
    ok('init', '--mode', 'bare-user');
  });
  afterAll(() => dir.cleanup());

  it('commits different trees to different refs at the same time, both complete', async () => {
    const shared = {
      label: 'parallel-shared',
      spec: { smallFiles: 500, dirs: 10, largeFiles: 1, largeBytes: 4 * 1024 * 1024 },
    };
    const trees = [
      makeTree('a1', { smallFiles: 500, dirs: 10 }, shared),
      makeTree('a2', { smallFiles: 500, dirs: 10 }, shared),
    ];
    // Each round stages the shared objects in both transactions: both publish the same names.
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        trees.map((tree, i) => run('commit', '-b', `parallel/${i}`, '--tree', `dir=${tree}`)),
      );
      for (const [i, r] of results.entries()) {
        expect(r.exitCode, `round ${round}, commit ${i}: ${head(r)}`).toBe(0);
        expect(ok('rev-parse', `parallel/${i}`)).toBe(r.stdout.trim());
      }
      expectFsckClean(`after round ${round}`);
      trees.forEach((tree, i) => expectCheckoutEquals(`parallel/${i}`, tree));
      trees.forEach((_, i) => ok('refs', '--delete', `parallel/${i}`));
      ok('prune', '--refs-only');
    }
  });

  it('never loses a transaction’s staging directory to another starting at the same moment', async () => {
    // A starting transaction must not mistake another's fresh staging directory for a dead one.
    const tiny = join(dir.path, 'tiny');
    mkdirSync(tiny);
    for (let round = 0; round < 8; round++) {
      writeFileSync(join(tiny, 'round'), `${round}\n`);
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => run('commit', '-b', `tiny/${i}`, '--tree', `dir=${tiny}`)),
      );
      for (const [i, r] of results.entries()) expect(r.exitCode, `round ${round}, commit ${i}: ${head(r)}`).toBe(0);
    }
    expect(readdirSync(join(repo, 'tmp')).filter((name) => name.startsWith('staging-'))).toEqual([]);
    expectFsckClean('after the parallel commits');
  });

  it('lets one of two commits to the same ref win; the other builds on it or fails with E_REF_MOVED', async () => {
    const base = makeTree('same-base', { smallFiles: 50, dirs: 5 });
    const trees = [
      makeTree('same-1', { smallFiles: 800, dirs: 16 }),
      makeTree('same-2', { smallFiles: 800, dirs: 16 }),
    ];
    ok('commit', '-b', 'same', '--tree', `dir=${base}`);
    const delays = random.derive('same-ref delays');
    const outcomes = new Map<string, number>();
    for (let round = 0; round < 4; round++) {
      const before = ok('rev-parse', 'same');
      // Round 0 starts both together; later rounds delay one by up to about a commit's duration.
      const delayMs = round === 0 ? 0 : delays.int(0, 900);
      const first = run('commit', '-b', 'same', '-s', `r${round} first`, '--tree', `dir=${trees[0]}`);
      const second = new Promise<void>((resolve) => setTimeout(resolve, delayMs)).then(() =>
        run('commit', '-b', 'same', '-s', `r${round} second`, '--tree', `dir=${trees[1]}`),
      );
      const results = await Promise.all([first, second]);
      const won: string[] = [];
      for (const [i, r] of results.entries()) {
        if (r.exitCode === 0) won.push(r.stdout.trim());
        else {
          expect(r.exitCode, `round ${round}, commit ${i} failed otherwise: ${head(r)}`).toBe(1);
          expect(r.stderr, `round ${round}, commit ${i}`).toMatch(/^error\[E_REF_MOVED\]: ref 'same' moved/);
        }
      }
      const outcome = won.length === 2 ? 'both succeeded, one on top' : 'one failed with E_REF_MOVED';
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      expect(won.length, `round ${round}: some commit must win`).toBeGreaterThan(0);
      // No lost update: every commit that reported success is in the ref's history, in a chain from before.
      const after = ok('rev-parse', 'same');
      expect(won, `round ${round}: the ref is one of the successful commits`).toContain(after);
      const chain = history('same');
      for (const c of won) expect(chain, `round ${round}: successful commit ${c} is in the history`).toContain(c);
      expect(chain.indexOf(before), `round ${round}: the chain continues from the old tip`).toBe(won.length);
      if (won.length === 2) expect(parentOf(after)).toBe(won.find((c) => c !== after));
      expectFsckClean(`after round ${round}`);
    }
    console.log(`same-ref races (SEED=${SEED}): ${[...outcomes].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  });

  it('answers log, refs, ls and cat on an existing ref while a long commit is running', async () => {
    const small = makeTree('reader-base', { smallFiles: 20, dirs: 2 });
    writeFileSync(join(small, 'motd'), 'hello from the base commit\n');
    const base = ok('commit', '-b', 'readable', '-s', 'base', '--tree', `dir=${small}`);
    const big = makeTree('reader-big', { smallFiles: 5000, dirs: 50, largeFiles: 4, largeBytes: 12 * 1024 * 1024 });
    const tmp = join(repo, 'tmp');
    // The writer holds the repository lock from the moment its staging directory appears.
    const locked = new Promise<void>((resolve) => {
      const watcher = watch(tmp, (_event, name) => {
        if (name?.startsWith('staging-')) {
          watcher.close();
          resolve();
        }
      });
    });
    const writer = run('commit', '-b', 'big', '--tree', `dir=${big}`);
    await locked;
    const readers = await Promise.all([
      run('log', 'readable'),
      run('refs', '--list'),
      run('ls', '-R', 'readable'),
      run('cat', 'readable', '/motd'),
    ]);
    const written = await writer;
    expect(written.exitCode, head(written)).toBe(0);
    const [log, refs, ls, cat] = readers as [Timed, Timed, Timed, Timed];
    for (const r of readers) {
      expect(r.exitCode, head(r)).toBe(0);
      expect(r.endedAt, 'a reader finished only after the writer').toBeLessThan(written.endedAt);
    }
    expect(log.stdout).toContain(`commit ${base}`);
    expect(refs.stdout).toContain(`readable ${base}`);
    expect(ls.stdout).toMatch(/ \/motd$/m);
    expect(cat.stdout).toBe('hello from the base commit\n');
    ok('refs', '--delete', 'big');
  });

  it('never prunes objects that a commit running meanwhile reuses', async () => {
    // C and K share files, so prune always has reachability work; only K keeps a ref throughout.
    const shared = { label: 'reuse-shared', spec: { smallFiles: 300, dirs: 6 } };
    const treeC = makeTree(
      'reuse-c',
      { smallFiles: 700, dirs: 14, largeFiles: 1, largeBytes: 2 * 1024 * 1024 },
      shared,
    );
    const keep = makeTree('reuse-k', { smallFiles: 100, dirs: 2 }, shared);
    const churn = makeTree('reuse-churn', { smallFiles: 700, dirs: 14 });
    ok('commit', '-b', 'keep', '--tree', `dir=${keep}`);

    let stop = false;
    const failures: string[] = [];
    const prunes = { runs: 0, deletedSome: 0 };
    const loop = async (body: () => Promise<void>): Promise<void> => {
      while (!stop) await body();
    };
    const background = [
      loop(async () => {
        const r = await run('prune', '--refs-only', '--json');
        prunes.runs++;
        if (r.exitCode !== 0) failures.push(`prune: ${head(r)}`);
        else if ((JSON.parse(r.stdout) as { objectsDeleted: number }).objectsDeleted > 0) prunes.deletedSome++;
      }),
      // Churn gives prune a big unreachable tree to delete at random moments, so fsck and
      // checkout below run while prune deletes objects and refs disappear.
      loop(async () => {
        const r = await run('commit', '-b', 'churn', '--tree', `dir=${churn}`);
        if (r.exitCode !== 0) failures.push(`churn commit: ${head(r)}`);
        const d = await run('refs', '--delete', 'churn');
        if (d.exitCode !== 0) failures.push(`churn delete: ${head(d)}`);
      }),
    ];
    // Commit C, check it, drop its ref, commit C again under another name: each commit either
    // finds C's objects present (and writes none) or finds them pruned, never half of each.
    const written: number[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const ref = i % 2 === 0 ? 'reuse/x' : 'reuse/y';
        const r = await run('commit', '-b', ref, '-s', `reuse ${i}`, '--tree', `dir=${treeC}`, '--json');
        expect(r.exitCode, `commit ${i}: ${head(r)}`).toBe(0);
        written.push((JSON.parse(r.stdout) as { objectsWritten: number }).objectsWritten);
        expectFsckClean(`after commit ${i}`);
        expectCheckoutEquals(ref, treeC);
        ok('refs', '--delete', ref);
      }
    } finally {
      stop = true;
      await Promise.all(background);
    }
    expect(failures).toEqual([]);
    expect(prunes.deletedSome, 'prunes deleted objects while commits ran').toBeGreaterThan(0);
    expectFsckClean('at the end');
    console.log(
      `prune race (SEED=${SEED}): ${prunes.runs} prunes, ${prunes.deletedSome} deleted objects; objects written by each commit of C: ${written.join(' ')}`,
    );
  });

  it('reports a clean repository when fsck runs while prune deletes a big unreachable tree', async () => {
    // Mostly directories: prune deletes dirtrees under fsck's feet, which fsck must not call corrupt.
    const doomed = join(dir.path, 'doomed');
    for (let i = 0; i < 1500; i++) {
      mkdirSync(join(doomed, `g${i % 20}`, `d${i}`), { recursive: true });
      writeFileSync(join(doomed, `g${i % 20}`, `d${i}`, 'f'), `${i}\n`);
    }
    let fscks = 0;
    for (let round = 0; round < 2; round++) {
      ok('commit', '-b', 'doomed', '-s', `doomed ${round}`, '--tree', `dir=${doomed}`);
      ok('refs', '--delete', 'doomed');
      let pruning = true;
      const prune = run('prune', '--refs-only').finally(() => (pruning = false));
      while (pruning) {
        const r = await run('fsck');
        fscks++;
        expect(r.exitCode, `fsck ${fscks} during prune ${round}: ${head(r)}`).toBe(0);
      }
      const pruned = await prune;
      expect(pruned.exitCode, head(pruned)).toBe(0);
    }
    expect(fscks).toBeGreaterThan(2);
  });

  it('never prunes a commit that refs --create or reset points a ref at meanwhile', async () => {
    // Each round leaves a commit no ref reaches, then gives it a ref again while prune runs:
    // either the ref lands first (prune must keep the commit) or prune wins (the command fails).
    const tree = makeTree('revived', { smallFiles: 150, dirs: 3 });
    let stop = false;
    const failures: string[] = [];
    const pruner = (async () => {
      while (!stop) {
        const r = await run('prune', '--refs-only');
        if (r.exitCode !== 0) failures.push(`prune: ${head(r)}`);
      }
    })();
    const outcomes = new Map<string, number>();
    try {
      for (let i = 0; i < 6; i++) {
        writeFileSync(join(tree, 'round'), `${i}\n`);
        const viaReset = i % 2 === 1;
        const commit = ok('commit', '-b', 'revived', '-s', `revived ${i}`, '--tree', `dir=${tree}`);
        // Orphan it: reset moves the ref back to the parent, --delete drops the ref.
        if (viaReset) ok('reset', 'revived', 'revived^');
        else ok('refs', '--delete', 'revived');
        const r = viaReset ? await run('reset', 'revived', commit) : await run('refs', '--create', 'revived', commit);
        const outcome = r.exitCode === 0 ? 'ref landed' : 'prune won';
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (r.exitCode !== 0)
          expect(r.stderr, `round ${i}: ${head(r)}`).toMatch(/^error\[(E_REV_NOT_FOUND|E_COMMIT_MISSING)\]/);
        expectFsckClean(`after round ${i}`);
        if (r.exitCode === 0) expectCheckoutEquals('revived', tree);
        // The next round's reset needs the ref to have a parent: bring back a ref prune won against.
        if (r.exitCode !== 0 && !viaReset) ok('commit', '-b', 'revived', '--tree', `dir=${tree}`);
      }
    } finally {
      stop = true;
      await pruner;
    }
    expect(failures).toEqual([]);
    console.log(`revived refs (SEED=${SEED}): ${[...outcomes].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  });
});
