// Crash safety of the deployment commands: deploy, upgrade, rollback and cleanup are SIGKILLed at
// seeded random moments. After each kill boot/loader names a complete entry set whose entries
// point at existing deployments with their kernel and initramfs, `arbor status` works, and the same
// command run again succeeds and leaves nothing half-made. SEED=<n> replays a run; SOAK=1 runs
// 250 kills per command (SOAK=<n>: n per command); CI runs 8 per command.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, IS_ROOT, runCli, sh } from '../support/cli.js';
import { runCliKilledAfter, timeCli } from '../support/kill.js';
import { Random, seedFromEnv } from '../support/random.js';
import { writeBulkTree } from '../support/bulk-tree.js';
import { type Commit, STATEROOT, TestSysroot, writeOsTree } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { filledInBeforeAll } from '../support/filled-later.js';

const SEED = seedFromEnv();
const KILLS_PER_COMMAND = killsPerCommand(process.env.SOAK);

function killsPerCommand(soak: string | undefined): number {
  if (soak === undefined || soak === '' || soak === '0') return 8;
  if (soak === '1' || soak === 'true') return 250;
  const n = Number(soak);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`SOAK must be 1 (250 kills per command) or a count per command, got '${soak}'`);
  return n;
}

type Op = 'deploy' | 'upgrade' | 'rollback' | 'cleanup';
const ROTATION: readonly Op[] = ['deploy', 'upgrade', 'rollback', 'cleanup'];

/** /usr/etc of a tree: enough files that the /etc merge copies for a while. */
function etcDefaults(generation: string): Record<string, string> {
  const etc: Record<string, string> = { hostname: 'crash-test\n', generation: `${generation}\n` };
  for (let i = 0; i < 300; i++)
    etc[`conf.d/${String(i % 10)}/f${i}.conf`] = `setting ${i} = ${i % 7 === 0 ? generation : 'same'}\n`;
  return etc;
}

// Root: the sysroot's repository is bare, with root-owned hardlinked checkouts.
describe.skipIf(!IS_ROOT)('deployment commands killed with SIGKILL', () => {
  const tmp = useTempDir('arbor-deploy-crash-');
  const random = new Random(SEED).derive('deploy-crash');
  let s: TestSysroot;
  const commits = filledInBeforeAll<Record<'a' | 'b', Commit>>();
  const durationMs = new Map<Op | 'startup', number>();

  /** The other of the two commits than the default deployment's. */
  const otherThanDefault = (): Commit => {
    const first = s.bootOrder()[0] ?? '';
    return first.startsWith(commits.a.checksum) ? commits.b : commits.a;
  };
  const argsOf = (op: Op, target: Commit): string[] => {
    switch (op) {
      case 'deploy':
        return ['admin', 'deploy', target.checksum];
      case 'upgrade':
        return ['upgrade'];
      case 'rollback':
        return ['rollback'];
      case 'cleanup':
        return ['cleanup'];
    }
  };
  /** Before an upgrade: its origin ref moves to the commit that is not the default. */
  const prepare = (op: Op, target: Commit): void => {
    if (op === 'upgrade') s.repoCli('reset', 'os/main', target.checksum);
  };

  /**
   * The deployments on disk are those of the boot set (plus their origins), with no half-made
   * directory, link tree, kernel copy or loader staging left behind.
   */
  const leftovers = (): string[] => {
    const listed = new Set(s.bootOrder());
    const out = s.deployNames().filter((n) => !listed.has(n.replace(/\.(origin|etc-conflicts)$/, '')));
    out.push(...readdirSync(join(s.path, 'arbor')).filter((n) => n.endsWith('.tmp')));
    out.push(...readdirSync(s.bootDir).filter((n) => n.endsWith('.tmp')));
    const kernels = new Set(s.readBootSet().entries.map((e) => e.entry.linux.split('/')[2]));
    out.push(...s.kernelDirs().filter((n) => !kernels.has(n)));
    return out;
  };

  /** Every deployment of the boot set has the whole /etc (the merge result is renamed into place complete). */
  const incompleteEtc = (): string[] =>
    s.readBootSet().entries.flatMap((e) => {
      if (e.deployment === null) return [];
      const count = (dir: string): number => readdirSync(dir, { recursive: true }).length;
      const [etc, defaults] = [count(join(e.deployment, 'etc')), count(join(e.deployment, 'usr/etc'))];
      return etc === defaults ? [] : [`${e.name}: etc has ${etc} entries, usr/etc ${defaults}`];
    });

  /**
   * The deployments of the boot set whose `arbor/deploy/` ref is missing, and with `exact` the refs
   * under that prefix that name none of them: a prune keeps exactly the deployed commits.
   */
  const refProblems = (exact: boolean): string[] => {
    const wanted = new Set(s.bootOrder().map((n) => `arbor/deploy/${STATEROOT}/${n}`));
    const refs = new Set(
      s
        .repoCli('refs', 'arbor/deploy/')
        .split('\n')
        .filter((l) => l !== ''),
    );
    return [
      ...[...wanted].filter((r) => !refs.has(r)).map((r) => `missing ${r}`),
      ...(exact ? [...refs].filter((r) => !wanted.has(r)).map((r) => `extra ${r}`) : []),
    ];
  };

  beforeAll(async () => {
    s = TestSysroot.create(join(tmp.path, 'sysroot'));
    const trees = join(tmp.path, 'trees');
    for (const name of ['a', 'b'] as const) {
      const dir = join(trees, name);
      // Distinct kernels of 2 MiB: each deploy copies one into /boot (another window to kill in).
      writeOsTree(dir, {
        version: name,
        kernel: random.derive(`kernel ${name}`).bytes(2 << 20),
        initramfs: `initramfs ${name}\n`,
        etc: etcDefaults(name),
      });
      // A few thousand files: the hardlinked checkout takes long enough to be killed in. B gets
      // them as hardlinks of A's objects, which its commit recognises without reading them.
      if (name === 'a')
        writeBulkTree(
          join(dir, 'usr/share/bulk'),
          { smallFiles: 3000, dirs: 40, smallMaxBytes: 2000 },
          random.derive('bulk'),
        );
      else
        sh(
          `mkdir -p '${join(dir, 'usr/share')}' && cp -al '${join(trees, 'checkout-a/usr/share/bulk')}' '${join(dir, 'usr/share/bulk')}'`,
        );
      commits[name] = s.commitDir(`os/${name}`, dir, name);
      if (name === 'a') s.repoCli('checkout', commits.a.checksum, join(trees, 'checkout-a'));
    }
    s.repoCli('refs', '--create', 'os/main', commits.a.checksum);
    s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');

    // Unkilled runs of each command: kill delays are drawn from these durations.
    const measure = async (key: Op | 'startup', args: string[]): Promise<void> => {
      const { result, elapsedMs } = await timeCli([...args, '--sysroot', s.path]);
      if (result.exitCode !== 0)
        throw new Error(`arbor ${args.join(' ')} exited ${result.exitCode}:\n${result.stderr}`);
      durationMs.set(key, elapsedMs);
    };
    await measure('startup', ['status']);
    for (const op of ROTATION) {
      const target = otherThanDefault();
      prepare(op, target);
      await measure(op, argsOf(op, target));
    }
    expect(s.bootSetProblems()).toEqual([]);
    expect(leftovers()).toEqual([]);
    expect(refProblems(true)).toEqual([]);
  });

  it(
    `keeps a complete boot set across ${KILLS_PER_COMMAND * ROTATION.length} kills (SEED=${SEED})`,
    async () => {
      const tally = new Map<string, number>();
      const count = (key: string): void => void tally.set(key, (tally.get(key) ?? 0) + 1);
      const startup = durationMs.get('startup') as number;

      for (let i = 0; i < KILLS_PER_COMMAND * ROTATION.length; i++) {
        const op = ROTATION[i % ROTATION.length] as Op;
        // From part-way through node's start-up (nothing touched yet) to past the end (nothing killed).
        const low = 0.7 * startup;
        const delayMs = Math.round(low + random.next() * Math.max(0, 1.1 * (durationMs.get(op) as number) - low));
        const context = `SEED=${SEED} iteration ${i}: ${op} with SIGKILL after ${delayMs} ms`;
        try {
          const target = otherThanDefault();
          prepare(op, target);
          const before = s.bootOrder();
          const args = argsOf(op, target);
          const { result, killed } = await runCliKilledAfter([...args, '--sysroot', s.path], delayMs);
          if (!killed) expect(result.exitCode, `unkilled run:\n${result.stderr}`).toBe(0);

          // Whatever instant the kill hit: the old boot set or the new one, complete.
          expect(s.bootSetProblems(), 'boot set after the kill').toEqual([]);
          expect(incompleteEtc(), '/etc of listed deployments').toEqual([]);
          expect(refProblems(false), 'deployment refs after the kill').toEqual([]);
          const after = s.bootOrder();
          const switched = after.join() !== before.join();
          count(
            `${op} ${killed ? 'killed' : 'finished'}${switched ? ', switched' : ''}${killed && leftovers().length > 0 ? ', leftovers' : ''}`,
          );
          if (switched) {
            if (op === 'rollback')
              expect(after, 'order after a rollback').toEqual([before[1], before[0], ...before.slice(2)]);
            else if (op === 'cleanup')
              throw new Error(`cleanup changed the boot order from ${before.join()} to ${after.join()}`);
            else {
              expect(after[0]?.startsWith(`${target.checksum}.`), `new default ${after[0]} is ${target.version}`).toBe(
                true,
              );
              expect(after.slice(1), 'kept after the new default').toEqual([before[0]]);
            }
          }
          const status = s.cli(['status', '--json']);
          expect(status.exitCode, `status:\n${status.stderr}`).toBe(0);
          const listed = (
            JSON.parse(status.stdout) as { deployments: { checksum: string; serial: number }[] }
          ).deployments.map((d) => `${d.checksum}.${d.serial}`);
          expect(listed, 'status lists the boot set').toEqual(after);

          // The same command again runs to completion and removes what the killed one left.
          const retry: CliResult = s.cli(args);
          expect(retry.exitCode, `retry:\n${retry.stderr}`).toBe(0);
          expect(s.bootSetProblems(), 'boot set after the retry').toEqual([]);
          if (op === 'upgrade' && switched)
            expect(retry.stdout, 'retry of a finished upgrade').toMatch(/^no upgrade available/);
          // An upgrade that found nothing to do wrote nothing, so it cleaned nothing up either.
          if (!(op === 'upgrade' && retry.stdout.startsWith('no upgrade available')))
            expect(leftovers(), 'leftovers after the retry').toEqual([]);
          // A retry that switched nothing may keep a ref a kill left over (harmless: it only keeps
          // objects); cleanup checks every ref, and removes it.
          expect(refProblems(false), 'deployment refs after the retry').toEqual([]);
          if (op === 'cleanup') expect(refProblems(true), 'deployment refs after cleanup').toEqual([]);
          const final = s.bootOrder();
          if (op === 'rollback')
            expect(final, 'rolled back twice or once').toEqual(
              switched ? before : [before[1], before[0], ...before.slice(2)],
            );
          if (op === 'deploy' || op === 'upgrade')
            expect(final[0]?.startsWith(`${target.checksum}.`), 'default after the retry').toBe(true);
          expect(final.length, 'deployments kept (no booted one: the new default and the previous one)').toBe(2);
        } catch (error) {
          throw new Error(`${context}: ${(error as Error).message}`, { cause: error });
        }
      }
      const fsck = runCli(['fsck', '--repo', s.repo]);
      expect(fsck.exitCode, `fsck:\n${fsck.stderr}${fsck.stdout}`).toBe(0);
      console.log(
        `deploy-crash SEED=${SEED} durations ${[...durationMs].map(([k, v]) => `${k} ${Math.round(v)} ms`).join(', ')}: ${[
          ...tally,
        ]
          .sort()
          .map(([k, v]) => `${k}: ${v}`)
          .join('; ')}`,
      );
    },
    120_000 + KILLS_PER_COMMAND * ROTATION.length * 20_000,
  );
});
