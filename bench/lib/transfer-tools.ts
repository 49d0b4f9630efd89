// bench/lib/transfer-tools.ts — owns the command lines of the transfer benchmark for the real
// ostree and for arbor (node bin/arbor.js): serving (archive repo, summary, static delta) and
// pulling over HTTP. The arbor commands here are the CLI contract the benchmark relies on.
import { join } from 'node:path';
import type { ToolName } from './tools.js';

export const REMOTE = 'origin';
export const BRANCH = 'bench';

export interface TransferTool {
  readonly name: ToolName;
  init(repo: string, mode: 'archive' | 'bare'): string[];
  commit(repo: string, branch: string, dir: string): string[];
  /** Prints the commit checksum of rev on stdout. */
  revParse(repo: string, rev: string): string[];
  summaryUpdate(repo: string): string[];
  /** Commands that point branch at a commit (forwards or backwards), run in order. */
  setRef(repo: string, branch: string, commit: string): string[][];
  /** What to delete so that the server has no static delta (and no index of them). */
  deltaDirs(repo: string): string[];
  deltaGenerate(repo: string, from: string, to: string): string[];
  remoteAdd(repo: string, name: string, url: string): string[];
  pull(repo: string, remote: string, ref: string, opts: { staticDeltas: boolean }): string[];
  /** Untimed check after each pull; null when the benchmark does not check this tool's pulls. */
  fsck(repo: string): string[] | null;
  /** Where generated static deltas live, measured with `du -sb`. */
  deltasDir(repo: string): string;
  /** Describes the delta from → to; null when the tool has no such command the benchmark can read. */
  deltaShow(repo: string, from: string, to: string): string[] | null;
}

/** Bytes of fallback objects in `ostree static-delta show` output ("Total Fallback Size: N (…)"). */
export function parseFallbackBytes(showOutput: string): number | null {
  const match = /^Total Fallback Size:\s*(\d+)/m.exec(showOutput);
  return match ? Number(match[1]) : null;
}

export const ostreeTransfer: TransferTool = {
  name: 'ostree',
  init: (repo, mode) => ['ostree', 'init', '--repo', repo, `--mode=${mode}`],
  commit: (repo, branch, dir) => ['ostree', 'commit', '--repo', repo, '-b', branch, `--tree=dir=${dir}`],
  revParse: (repo, rev) => ['ostree', 'rev-parse', '--repo', repo, rev],
  summaryUpdate: (repo) => ['ostree', 'summary', '--repo', repo, '-u'],
  // `ostree reset` only moves a ref back to an ancestor; delete and create go either way.
  setRef: (repo, branch, commit) => [
    ['ostree', 'refs', '--repo', repo, '--delete', branch],
    ['ostree', 'refs', '--repo', repo, `--create=${branch}`, commit],
  ],
  deltaDirs: (repo) => [join(repo, 'deltas'), join(repo, 'delta-indexes')],
  deltaGenerate: (repo, from, to) => [
    'ostree',
    'static-delta',
    'generate',
    '--repo',
    repo,
    `--from=${from}`,
    `--to=${to}`,
  ],
  remoteAdd: (repo, name, url) => ['ostree', 'remote', 'add', '--repo', repo, '--no-gpg-verify', name, url],
  pull: (repo, remote, ref, { staticDeltas }) => [
    'ostree',
    'pull',
    '--repo',
    repo,
    ...(staticDeltas ? [] : ['--disable-static-deltas']),
    remote,
    ref,
  ],
  // ostree is the reference; its fsck would add a 2 GB read per pull to every run.
  fsck: () => null,
  deltasDir: (repo) => join(repo, 'deltas'),
  deltaShow: (repo, from, to) => ['ostree', 'static-delta', 'show', '--repo', repo, `${from}-${to}`],
};

/** arbor run as `node BIN …`. */
export function arborTransfer(bin: string): TransferTool {
  const cli = (...args: string[]): string[] => [process.execPath, bin, ...args];
  return {
    name: 'arbor',
    init: (repo, mode) => cli('init', '--repo', repo, '--mode', mode),
    commit: (repo, branch, dir) => cli('commit', '--repo', repo, '-b', branch, '--tree', `dir=${dir}`),
    revParse: (repo, rev) => cli('rev-parse', '--repo', repo, rev),
    summaryUpdate: (repo) => cli('summary', '--repo', repo, '--update'),
    setRef: (repo, branch, commit) => [cli('reset', '--repo', repo, branch, commit)],
    deltaDirs: (repo) => [join(repo, 'deltas')],
    deltaGenerate: (repo, from, to) => cli('static-delta', 'generate', '--repo', repo, '--from', from, '--to', to),
    remoteAdd: (repo, name, url) => cli('remote', 'add', '--repo', repo, name, url, '--no-sign-verify'),
    pull: (repo, remote, ref, { staticDeltas }) =>
      cli('pull', '--repo', repo, remote, ref, ...(staticDeltas ? [] : ['--disable-static-deltas'])),
    fsck: (repo) => cli('fsck', '--repo', repo),
    deltasDir: (repo) => join(repo, 'deltas'),
    // arbor's deltas have no fallback objects: everything is in deltas/, which e measures.
    deltaShow: () => null,
  };
}
