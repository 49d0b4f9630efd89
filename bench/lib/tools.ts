// bench/lib/tools.ts — owns the command lines of the two tools under comparison:
// the real ostree and arbor (node bin/arbor.js), each at its default
// durability. The arbor commands here are the CLI contract the benchmark relies on.
import { run, succeeds } from './proc.js';

export type ToolName = 'ostree' | 'arbor';
export const TOOL_NAMES: readonly ToolName[] = ['ostree', 'arbor'];

/** What every suite is given by bench/run.ts; suites add their own inputs. */
export interface SuiteOptions {
  /** The suite's scratch directory (each says which part of it it uses and when it empties it). */
  work: string;
  runs: number;
  tools: readonly ToolName[];
  writeDoc: boolean;
  repoRoot: string;
  arborBin: string;
}

export interface Tool {
  readonly name: ToolName;
  init(repo: string): string[];
  /** fromHardlinkCheckout: the tree is a hardlinked checkout of this repo (ostree needs a flag to use its devino cache). */
  commit(repo: string, branch: string, dir: string, fromHardlinkCheckout: boolean): string[];
  checkoutHardlink(repo: string, branch: string, dest: string): string[];
  /** Succeeds iff the tool is usable. */
  readonly probe: string[];
  version(): Promise<string>;
}

export const ostree: Tool = {
  name: 'ostree',
  init: (repo) => ['ostree', 'init', '--repo', repo, '--mode=bare'],
  commit: (repo, branch, dir, fromHardlinkCheckout) => [
    'ostree',
    'commit',
    '--repo',
    repo,
    '-b',
    branch,
    ...(fromHardlinkCheckout ? ['--link-checkout-speedup'] : []),
    `--tree=dir=${dir}`,
  ],
  checkoutHardlink: (repo, branch, dest) => ['ostree', 'checkout', '--repo', repo, '-H', branch, dest],
  probe: ['ostree', '--version'],
  async version() {
    const out = await run(['ostree', '--version']);
    return `ostree ${/Version:\s*'?([^'\s]+)/.exec(out)?.[1] ?? 'unknown'}`;
  },
};

/** arbor run as `node BIN …`; BIN defaults to the repository's bin/arbor.js. */
export function arbor(bin: string, repoRoot: string): Tool {
  const cli = (...args: string[]): string[] => [process.execPath, bin, ...args];
  return {
    name: 'arbor',
    init: (repo) => cli('init', '--repo', repo, '--mode', 'bare'),
    commit: (repo, branch, dir) => cli('commit', '--repo', repo, '-b', branch, '--tree', `dir=${dir}`),
    checkoutHardlink: (repo, branch, dest) => cli('checkout', '--repo', repo, '--hardlink', branch, dest),
    probe: cli('--help'),
    async version() {
      const rev = (await succeeds(['git', '-C', repoRoot, 'rev-parse', '--verify', '-q', 'HEAD']))
        ? (await run(['git', '-C', repoRoot, 'rev-parse', '--short', 'HEAD'])).trim()
        : 'no commit yet';
      const dirty = (await run(['git', '-C', repoRoot, 'status', '--porcelain', '--', 'src', 'bin'])).trim() !== '';
      return `arbor ${rev}${dirty ? ' + uncommitted changes' : ''} (node ${process.version})`;
    },
  };
}
