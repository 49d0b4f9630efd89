// `arbor summary`: write or show the summary file HTTP clients read first.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'clipanion';
import { ArborError, UsageError, errnoCode } from '../../common/errors.js';
import { type Repo, type Summary, decodeSummary, keyId, loadSigningKey, updateSummary } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';

export class SummaryCommand extends RepoCommand {
  static override paths = [['summary']];
  static override usage = Command.Usage({
    description: 'Write the repository summary (refs, commits, static deltas) and optionally sign it',
    details: 'Serve an archive repository as static files; clients read `summary` (and `summary.sig` when their remote requires signatures) before anything else. Run this after every commit, delta or signature you publish. Remote refs (REMOTE:REF) are not listed.',
    examples: [['Update and sign', '$0 summary --repo repo --update --sign release.key'], ['Show it', '$0 summary --repo repo --view']],
  });
  update = Option.Boolean('--update,-u', false, { description: 'Rewrite summary from the refs and deltas' });
  view = Option.Boolean('--view', false, { description: 'Print the current summary' });
  sign = Option.Array('--sign', [], { description: 'Sign with this private key file (repeatable; needs --update)' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    if (!this.update && !this.view) throw new UsageError('E_USAGE', 'say --update or --view');
    if (this.sign.length > 0 && !this.update) throw new UsageError('E_USAGE', '--sign needs --update');
    const keys = this.sign.map((f) => loadSigningKey(f));
    const summary = this.update ? updateSummary(repo, keys).summary : readSummary(repo);
    if (this.json) {
      this.printJson({ ...summary, metadata: Object.fromEntries([...summary.metadata].map(([k, v]) => [k, v.value])), signedBy: keys.map((k) => keyId(k.publicKey)) });
      return 0;
    }
    const lines = [`refs: ${summary.refs.length}`];
    for (const r of summary.refs) lines.push(`  ${r.name} ${r.checksum}${r.version ? ` (${r.version})` : ''} ${new Date(r.timestamp * 1000).toISOString()}`);
    lines.push(`static deltas: ${summary.deltas.length}`);
    for (const d of summary.deltas) lines.push(`  ${d.from ? d.from.slice(0, 12) : 'scratch'} -> ${d.to.slice(0, 12)} ${d.size} bytes`);
    if (keys.length > 0) lines.push(`signed by: ${keys.map((k) => keyId(k.publicKey)).join(', ')}`);
    this.print(lines.join('\n'));
    return 0;
  }
}

function readSummary(repo: Repo): Summary {
  try {
    return decodeSummary(readFileSync(join(repo.path, 'summary')), 'summary');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new ArborError('E_SUMMARY_MISSING', `repository '${repo.path}' has no summary`, { hint: 'write one with `arbor summary --update`' });
    throw error;
  }
}
