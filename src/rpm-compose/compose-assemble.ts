// The assemble phase: the imported packages' trees united by object ids into one editable tree,
// with every file conflict between packages reported at once.
import { ArborError, present } from '../common/errors.js';
import { type Checksum, type Commit, type Transaction, TreeEditor } from '../repo/index.js';
import { type Heads, headOf } from './compose-resolve.js';
import { assembleTree, prefetchAssembly } from './assemble.js';
import type { ComposeProgress } from './compose.js';
import type { Candidate } from './solve/universe.js';

/** The union of the packages' trees, by object ids; conflicting files are refused together. */
export async function assemble(
  tx: Transaction,
  packages: readonly Candidate[],
  commits: ReadonlyMap<Candidate, Checksum>,
  read: { heads: Heads; commits: ReadonlyMap<Checksum, Commit> },
  progress: (p: ComposeProgress) => void,
): Promise<TreeEditor> {
  progress({ phase: 'assemble', done: 0, total: 1 });
  const trees = packages.map((c) => ({
    nevra: c.nevra,
    commit: present(commits.get(c), `commit of ${c.nevra}`),
    files: headOf(read.heads, c).pkg.files,
  }));
  const assembled = assembleTree(tx, trees, await prefetchAssembly(tx.repo, trees, read.commits));
  if (assembled.conflicts.length > 0) {
    const lines = assembled.conflicts
      .slice(0, 20)
      .map((f) => `  ${f.path}: ${f.packages[0]} and ${f.packages[1]} (${f.reason})`);
    const more = assembled.conflicts.length > 20 ? `\n  ... and ${assembled.conflicts.length - 20} more` : '';
    throw new ArborError(
      'E_COMPOSE_FILE_CONFLICT',
      `${assembled.conflicts.length} file conflict(s) between packages:\n${lines.join('\n')}${more}`,
      {
        hint: 'drop one of the packages (exclude-packages) or remove the path from one with remove-from-packages',
      },
    );
  }
  return new TreeEditor(tx, assembled);
}
