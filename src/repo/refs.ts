// Ref names and revision syntax: refs, remote refs (`remote:ref`), full or abbreviated
// checksums, and `^` / `~N` parent suffixes.
import { ArborError, UsageError } from '../common/errors.js';
import { readdirOrEmpty } from '../common/readdir-or-empty.js';
import { type Checksum, isChecksum } from '../common/hash.js';
import { lockRepo } from './lock.js';
import type { Repo } from './store.js';

const COMPONENT = /^[A-Za-z0-9_][A-Za-z0-9._+@-]*$/;

/** Why `name` is not a valid ref (`a/b/c`, optionally `remote:a/b`), or undefined. */
export function invalidRefReason(name: string): string | undefined {
  const colon = name.indexOf(':');
  const remote = colon >= 0 ? name.slice(0, colon) : undefined;
  const ref = colon >= 0 ? name.slice(colon + 1) : name;
  if (remote !== undefined && !COMPONENT.test(remote)) return `remote name '${remote}' is invalid`;
  if (ref.length === 0) return 'ref name is empty';
  if (isChecksum(ref)) return 'a ref name cannot be a checksum';
  for (const part of ref.split('/')) {
    if (!COMPONENT.test(part) || part.endsWith('.lock') || part.includes('..')) return `component '${part}' is invalid`;
  }
  return undefined;
}

export function assertRefName(name: string): void {
  const reason = invalidRefReason(name);
  if (reason)
    throw new UsageError('E_REF_INVALID', `'${name}' is not a valid ref name: ${reason}`, {
      hint: 'use letters, digits, . _ - + @ and / between components',
    });
}

/**
 * Points refs at commits already stored (checksum null deletes), each update optionally naming the
 * value it expects. Holds the shared repository lock while it checks that every target commit is
 * present and moves the refs: a prune (exclusive) either ends before, and a commit it deleted fails
 * the check (E_COMMIT_MISSING), or starts after and sees the ref. Unlocked, a prune that had read
 * the refs already could delete the commit under the new ref.
 */
export function writeRefs(
  repo: Repo,
  updates: readonly { name: string; checksum: Checksum | null; expected?: Checksum | null }[],
  now: number,
): void {
  const lock = lockRepo(repo.path, false);
  try {
    for (const u of updates) if (u.checksum !== null) repo.readCommit(u.checksum);
    repo.db.updateRefs(updates, now);
  } finally {
    lock.release();
  }
}

/**
 * Resolves a revision to a commit checksum: a ref, `remote:ref`, a checksum or unique prefix
 * (≥ 4 hex digits), each optionally followed by `^` (parent, repeatable) or `~N` (N-th ancestor).
 */
export function resolveRev(repo: Repo, rev: string): Checksum {
  const match = /^(.*?)((?:\^|~\d*)*)$/.exec(rev);
  const base = match?.[1] ?? rev;
  const suffix = match?.[2] ?? '';
  let checksum = resolveBase(repo, base, rev);
  for (const step of suffix.match(/\^|~\d*/g) ?? []) {
    const count = step === '^' ? 1 : step === '~' ? 1 : Number(step.slice(1));
    for (let i = 0; i < count; i++) {
      const parent = repo.readCommit(checksum).parent;
      if (parent === null) throw new ArborError('E_REV_NOT_FOUND', `'${rev}': commit ${checksum} has no parent`);
      checksum = parent;
    }
  }
  return checksum;
}

function resolveBase(repo: Repo, base: string, rev: string): Checksum {
  const ref = repo.db.getRef(base);
  if (ref) return ref;
  if (isChecksum(base)) {
    if (!repo.hasObject(base, 'commit'))
      throw new ArborError('E_REV_NOT_FOUND', `commit ${base} is not in the repository`);
    return base;
  }
  if (/^[0-9a-f]{4,63}$/.test(base)) {
    const found = commitsWithPrefix(repo, base);
    const [only] = found;
    if (found.length === 1 && only !== undefined) return only;
    if (found.length > 1)
      throw new UsageError('E_REV_AMBIGUOUS', `'${rev}' matches several commits: ${found.slice(0, 4).join(', ')}`, {
        hint: 'give more digits',
      });
  }
  throw new ArborError('E_REF_NOT_FOUND', `'${rev}' is not a ref or a commit in this repository`, {
    hint: 'list refs with `arbor refs`',
  });
}

/** Commits whose checksum starts with `prefix`, found by listing objects/ (the truth, not the index). */
function commitsWithPrefix(repo: Repo, prefix: string): Checksum[] {
  const dir = repo.objectDir(prefix.slice(0, 2));
  const rest = prefix.slice(2);
  return readdirOrEmpty(dir)
    .filter((name) => name.endsWith('.commit') && name.startsWith(rest))
    .map((name) => `${prefix.slice(0, 2)}${name.slice(0, -'.commit'.length)}` as Checksum);
}
