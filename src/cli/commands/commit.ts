// `arbor commit`: commit a directory or tar archive to a branch.
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type Checksum, type MetadataValue, type Repo, commitTree, resolveRev } from '../../repo/index.js';
import { ProgressLine, formatBytes } from '../progress.js';
import { RepoCommand, parseKeyValue } from '../repo-command.js';

export class CommitCommand extends RepoCommand {
  static override paths = [['commit']];
  static override usage = Command.Usage({
    description: 'Commit a directory tree (or tar archive) to a branch and print the new commit id',
    details: `
      The tree is read with its owners, modes, xattrs, symlinks, hardlinks, device nodes and fifos. Files that are hardlinks of
      objects in this repository (a hardlinked checkout) are recognised by inode and not read again.
      The new commit's parent is the branch's current commit unless --parent says otherwise.
    `,
    examples: [
      ['Commit a directory', '$0 commit --repo repo -b os/x86_64/main -s "nightly" --tree dir=./rootfs'],
      [
        'Commit a tar archive as root-owned',
        '$0 commit --repo repo -b os/main --tree tar=rootfs.tar --owner-uid 0 --owner-gid 0',
      ],
    ],
  });
  branch = Option.String('-b,--branch', { required: true, description: 'Branch (ref) to commit to' });
  subject = Option.String('-s,--subject', { description: 'One-line subject' });
  body = Option.String('--body', { description: 'Full description' });
  parent = Option.String('--parent', {
    description: 'Parent commit, or "none" (default: the branch\'s current commit)',
  });
  addMetadata = Option.Array('--add-metadata', [], {
    description: 'KEY=VALUE string metadata (repeatable); "version" is shown by log',
  });
  tree = Option.String('--tree', { required: true, description: 'dir=PATH or tar=FILE' });
  ownerUid = Option.String('--owner-uid', { description: 'Store every file as owned by this uid' });
  ownerGid = Option.String('--owner-gid', { description: 'Store every file as owned by this gid' });
  skipIfUnchanged = Option.Boolean('--skip-if-unchanged', false, {
    description: "Make no commit when the tree equals the parent's",
  });
  timestamp = Option.String('--timestamp', {
    description: 'Commit time (seconds since epoch or ISO 8601); default $SOURCE_DATE_EPOCH or now',
  });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    const tree = parseTreeSpec(this.tree);
    const metadata = new Map<string, MetadataValue>();
    for (const item of this.addMetadata) {
      const [key, value] = parseKeyValue(item, '--add-metadata');
      metadata.set(key, { type: 'string', value });
    }
    const parent: Checksum | null | undefined =
      this.parent === undefined ? undefined : this.parent === 'none' ? null : resolveRev(repo, this.parent);
    const progress = new ProgressLine(this.context.stderr);
    const result = await commitTree(repo, {
      branch: this.branch,
      ...(this.subject !== undefined && { subject: this.subject }),
      ...(this.body !== undefined && { body: this.body }),
      parent,
      metadata,
      tree,
      ...((this.ownerUid !== undefined || this.ownerGid !== undefined) && {
        owner: {
          ...(this.ownerUid !== undefined && { uid: parseId(this.ownerUid, '--owner-uid') }),
          ...(this.ownerGid !== undefined && { gid: parseId(this.ownerGid, '--owner-gid') }),
        },
      }),
      skipIfUnchanged: this.skipIfUnchanged,
      timestamp: parseTimestamp(this.timestamp ?? process.env.SOURCE_DATE_EPOCH),
      onProgress: (s) =>
        progress.update(
          `committing: ${s.files} files, ${formatBytes(s.bytesRead)} read, ${s.devinoHits} unchanged by inode`,
          s.bytesRead,
        ),
    });
    progress.done();
    if (this.json) this.printJson({ commit: result.checksum, skipped: result.skipped, ...result.stats });
    else this.print(result.checksum);
    return 0;
  }
}

function parseTreeSpec(spec: string): { dir: string } | { tar: string } {
  const [kind, path] = parseKeyValue(spec, '--tree');
  if (kind === 'dir') return { dir: path };
  if (kind === 'tar') return { tar: path };
  throw new UsageError('E_USAGE', `--tree expects dir=PATH or tar=FILE, got '${spec}'`);
}

function parseId(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new UsageError('E_USAGE', `${flag} expects a number, got '${text}'`);
  return n;
}

/** Seconds since the epoch from a number or an ISO 8601 date; undefined means now. */
export function parseTimestamp(text: string | undefined): number {
  if (text === undefined || text === '') return Math.floor(Date.now() / 1000);
  if (/^\d+$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw new UsageError('E_USAGE', `cannot read '${text}' as a time`, {
      hint: 'give seconds since the epoch or an ISO 8601 date',
    });
  return Math.floor(ms / 1000);
}
