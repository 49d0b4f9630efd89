// `arbor static-delta generate|list|show|apply-offline|delete`.
import { join } from 'node:path';
import { Command, Option } from 'clipanion';
import { ArborError, CorruptionError, UsageError } from '../../common/errors.js';
import { readBoundedFile } from '../../common/read-bounded.js';
import {
  type Repo,
  applyDelta,
  deleteDelta,
  findDelta,
  generateDelta,
  listDeltas,
  readSuperblock,
  resolveRev,
  keyId,
  signatureEntries,
  decodeCommitMeta,
  loadPublicKeys,
  assertRefName,
  DEFAULT_MAX_METADATA_BYTES,
} from '../../repo/index.js';
import { ProgressLine, formatBytes } from '../progress.js';
import { RepoCommand } from '../repo-command.js';

export class StaticDeltaGenerateCommand extends RepoCommand {
  static override paths = [['static-delta', 'generate']];
  static override usage = Command.Usage({
    description: 'Generate a static delta FROM→TO (or from scratch) that clients apply instead of fetching objects',
    details: `
      Every object of TO that FROM lacks is stored as new content, as a copy of an old object's content (only owner, mode or xattrs
      changed), or as a binary patch (zstd with the old version as dictionary) against the file at the same path in FROM, or the
      same-named file of a path that went away. Operations are packed into zstd-compressed parts of at most --max-chunk-size MB.
      Default FROM is TO's parent. Run \`arbor summary --update\` afterwards so that clients see it.
    `,
    examples: [
      ['Delta from the parent', '$0 static-delta generate --repo repo --to os/main'],
      ['Explicit', '$0 static-delta generate --repo repo --from os/main^ --to os/main'],
    ],
  });
  from = Option.String('--from', { description: "Old commit (default: TO's parent)" });
  empty = Option.Boolean('--empty', false, { description: 'Delta from scratch: everything TO needs' });
  to = Option.String('--to', { required: true, description: 'New commit' });
  inline = Option.Boolean('--inline', false, { description: 'Put the parts inside the superblock (one file)' });
  maxChunk = Option.String('--max-chunk-size', '8', { description: 'MB of operations per part (default 8)' });
  level = Option.String('--level', '19', {
    description: 'zstd level of parts, 1-19 (default 19; patches are compressed already)',
  });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    if (this.empty && this.from !== undefined) throw new UsageError('E_USAGE', '--from and --empty exclude each other');
    const to = resolveRev(repo, this.to);
    let from = this.empty ? null : this.from !== undefined ? resolveRev(repo, this.from) : repo.readCommit(to).parent;
    if (!this.empty && this.from === undefined && from === null)
      throw new UsageError('E_USAGE', `commit ${to} has no parent: give --from REV or --empty`);
    if (from !== null) repo.readCommit(from);
    const chunk = Number(this.maxChunk);
    if (!(chunk > 0 && chunk <= 4096))
      throw new UsageError('E_USAGE', `--max-chunk-size: expected 1 to 4096 (MB), got '${this.maxChunk}'`);
    const level = Number(this.level);
    if (!Number.isInteger(level) || level < 1 || level > 19)
      throw new UsageError('E_USAGE', `--level: expected 1 to 19, got '${this.level}'`);
    from ??= null;
    const progress = new ProgressLine(this.context.stderr);
    const report = await generateDelta(repo, {
      from,
      to,
      inline: this.inline,
      maxChunkBytes: Math.round(chunk * 1024 * 1024),
      level,
      onProgress: (done, total) => progress.update(`generating delta: ${done}/${total} files`),
    });
    progress.done();
    if (this.json) this.printJson(report);
    else
      this.print(
        `${from ? `${from.slice(0, 12)}-` : 'scratch-'}${to.slice(0, 12)}: ${report.parts} parts, ${formatBytes(report.size)} (${report.size} bytes); ${report.ops.new} new, ${report.ops.patch} patched, ${report.ops.copy} copied files, ${report.ops.meta} metadata objects`,
      );
    return 0;
  }
}

export class StaticDeltaListCommand extends RepoCommand {
  static override paths = [['static-delta', 'list']];
  static override usage = Command.Usage({ description: 'List the static deltas of this repository' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const deltas = listDeltas(repo).map((d) => ({
      name: d.name,
      from: d.from,
      to: d.to,
      size: readSuperblock(d).size,
    }));
    if (this.json) this.printJson(deltas);
    else if (deltas.length > 0) this.print(deltas.map((d) => `${d.name} ${d.size}`).join('\n'));
    return 0;
  }
}

export class StaticDeltaShowCommand extends RepoCommand {
  static override paths = [['static-delta', 'show']];
  static override usage = Command.Usage({
    description: 'Show a static delta: commits, parts, sizes, signatures it carries',
  });
  delta = Option.String({ required: true, name: 'DELTA' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const entry = findDelta(repo, this.delta);
    const { superblock: sb, size } = readSuperblock(entry);
    const signedBy = sb.commitMeta
      ? signatureEntries(decodeCommitMeta(sb.commitMeta)).map((e) => keyId(e.subarray(0, 32)))
      : [];
    const parts = sb.parts.map((p, i) => ({
      index: i,
      checksum: p.checksum,
      size: p.size,
      uncompressedSize: p.uncompressedSize,
      objects: p.objects,
      inline: p.inline !== null,
    }));
    if (this.json) {
      this.printJson({ name: entry.name, from: sb.from, to: sb.to, size, signedBy, parts });
      return 0;
    }
    const lines = [
      `delta ${entry.name}`,
      `from: ${sb.from ?? '(scratch)'}`,
      `to:   ${sb.to}`,
      `size: ${size} bytes in ${parts.length} parts`,
    ];
    if (signedBy.length > 0) lines.push(`signed by: ${signedBy.join(', ')}`);
    for (const p of parts)
      lines.push(
        `  part ${p.index}: ${p.size} bytes (${p.uncompressedSize} uncompressed), ${p.objects} objects${p.inline ? ', inline' : ''}`,
      );
    this.print(lines.join('\n'));
    return 0;
  }
}

export class StaticDeltaDeleteCommand extends RepoCommand {
  static override paths = [['static-delta', 'delete']];
  static override usage = Command.Usage({ description: 'Delete a static delta (then run `arbor summary --update`)' });
  delta = Option.String({ required: true, name: 'DELTA' });
  protected async runWith(repo: Repo): Promise<number> {
    deleteDelta(findDelta(repo, this.delta));
    return 0;
  }
}

export class StaticDeltaApplyCommand extends RepoCommand {
  static override paths = [['static-delta', 'apply-offline']];
  static override usage = Command.Usage({
    description: 'Apply a static delta from a directory (a USB stick, a download) to this repository',
    details:
      "DELTA is the delta's directory (holding `superblock` and its parts). Every part and object is verified. Refs do not move unless --ref is given. With --keyfile, the commit must carry a valid signature by that key.",
    examples: [
      [
        'Apply and point a ref at the result',
        '$0 static-delta apply-offline --repo repo /media/usb/deltas/AAA-BBB --ref os/main',
      ],
    ],
  });
  delta = Option.String({ required: true, name: 'DELTA' });
  ref = Option.String('--ref', { description: 'Point this ref at the new commit' });
  keyfiles = Option.Array('--keyfile', [], { description: 'Require a signature by this public key (repeatable)' });
  maxSuperblockSize = Option.String('--max-superblock-size', String(DEFAULT_MAX_METADATA_BYTES), {
    description: 'Refuse a superblock bigger than this many bytes (default: the default max-metadata-size, 10 MiB)',
  });
  protected async runWith(repo: Repo): Promise<number> {
    if (this.ref !== undefined) assertRefName(this.ref);
    const trusted = this.keyfiles.flatMap((f) => loadPublicKeys(f));
    const maxSuperblockBytes = /^\d{1,15}$/.test(this.maxSuperblockSize) ? Number(this.maxSuperblockSize) : NaN;
    if (!(maxSuperblockBytes > 0))
      throw new UsageError(
        'E_USAGE',
        `--max-superblock-size: expected a number of bytes > 0, got '${this.maxSuperblockSize}'`,
      );
    // Both are bounded before they are read: the superblock by the flag (a metadata object's
    // bound by default), a part by the size its superblock records (it is hashed next).
    const read = (name: string, maxBytes: number, bound: string): Buffer => {
      const path = join(this.delta, name);
      let got: ReturnType<typeof readBoundedFile>;
      try {
        got = readBoundedFile(path, maxBytes, { followSymlinks: true });
      } catch (error) {
        throw new ArborError('E_DELTA_NOT_FOUND', `cannot read '${path}': ${(error as Error).message}`);
      }
      if (got === null) throw new ArborError('E_DELTA_NOT_FOUND', `cannot read '${path}': it does not exist`);
      if ('problem' in got)
        throw new CorruptionError(
          'E_DELTA_CORRUPT',
          `'${path}' ${got.problem}${/larger/.test(got.problem) ? `, ${bound}` : ''}`,
          {
            hint:
              name === 'superblock' ? 'a delta with inline parts can be bigger: pass --max-superblock-size' : undefined,
          },
        );
      return got.bytes;
    };
    const tx = repo.beginTransaction();
    try {
      const result = await applyDelta(tx, {
        expectedSuperblock: null,
        where: join(this.delta, 'superblock'),
        superblock: async () => read('superblock', maxSuperblockBytes, 'the bound for a superblock'),
        part: async (i, maxBytes) => read(String(i), maxBytes, 'the size its superblock records'),
        partWhere: (i) => join(this.delta, String(i)),
        trustedKeys: trusted.length > 0 ? trusted : null,
        what: `the commit of delta ${this.delta}`,
      });
      tx.commit(this.ref ? [{ name: this.ref, checksum: result.to }] : []);
      repo.db.clearPartial(result.to);
      this.print(`${result.to}: ${result.objects} objects written${this.ref ? `, ${this.ref} updated` : ''}`);
    } finally {
      tx.abort();
    }
    return 0;
  }
}
