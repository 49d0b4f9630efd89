// `arbor show`: one commit with its metadata and detached metadata.
import { Command, Option } from 'clipanion';
import { type MetadataValue, type Repo, SIGNATURES_KEY, resolveRev } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';
import { signatureKeyIds } from './sign.js';

/** A metadata value as JSON: bytes become hex. */
export function metadataToJson(value: MetadataValue): unknown {
  if (value.type === 'bytes') return value.value.toString('hex');
  if (value.type === 'bytes-list') return value.value.map((b) => b.toString('hex'));
  return value.value;
}

export class ShowCommand extends RepoCommand {
  static override paths = [['show']];
  static override usage = Command.Usage({ description: 'Show a commit: parent, date, subject, trees and metadata' });
  rev = Option.String({ required: true, name: 'REV' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    const checksum = resolveRev(repo, this.rev);
    const c = repo.readCommit(checksum);
    const metadata = Object.fromEntries([...c.metadata].map(([k, v]) => [k, metadataToJson(v)]));
    const detached = Object.fromEntries([...repo.readCommitMeta(checksum)].map(([k, v]) => [k, metadataToJson(v)]));
    if (this.json) {
      this.printJson({
        commit: checksum,
        parent: c.parent,
        timestamp: c.timestamp,
        subject: c.subject,
        body: c.body,
        rootTree: c.rootTree,
        rootMeta: c.rootMeta,
        metadata,
        detachedMetadata: detached,
        signedBy: signatureKeyIds(repo, checksum),
      });
      return 0;
    }
    const out = [`commit ${checksum}`];
    if (c.parent) out.push(`Parent:  ${c.parent}`);
    out.push(
      `Date:    ${new Date(c.timestamp * 1000).toISOString()}`,
      `Tree:    ${c.rootTree}`,
      `Meta:    ${c.rootMeta}`,
    );
    for (const [k, v] of Object.entries(metadata)) out.push(`Metadata ${k}: ${JSON.stringify(v)}`);
    for (const [k, v] of Object.entries(detached))
      if (k !== SIGNATURES_KEY) out.push(`Detached ${k}: ${JSON.stringify(v)}`);
    for (const id of signatureKeyIds(repo, checksum)) out.push(`Signed:  ed25519 key ${id}`);
    out.push('', `    ${c.subject}`);
    if (c.body) out.push('', ...c.body.split('\n').map((l) => `    ${l}`));
    this.print(out.join('\n'));
    return 0;
  }
}
