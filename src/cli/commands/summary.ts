// `arbor summary`: write or show the summary file HTTP clients read first.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'clipanion';
import { ArborError, UsageError, errnoCode } from '../../common/errors.js';
import {
  type Repo,
  type Summary,
  decodeSummary,
  keyId,
  loadPublicKeys,
  loadSigningKey,
  updateSummary,
} from '../../repo/index.js';
import { positiveDuration } from '../../common/duration.js';
import { RepoCommand } from '../repo-command.js';

export class SummaryCommand extends RepoCommand {
  static override paths = [['summary']];
  static override usage = Command.Usage({
    description: 'Write the repository summary (refs, commits, static deltas) and optionally sign it',
    details:
      'Serve an archive repository as static files; clients read `summary` (and `summary.sig` when their remote requires signatures) before anything else. Run this after every commit, delta or signature you publish. Remote refs (REMOTE:REF) are not listed.',
    examples: [
      ['Update and sign', '$0 summary --repo repo --update --sign release.key'],
      ['Sign, expiring in a week', '$0 summary --repo repo --update --sign release.key --expires 7d'],
      [
        'Announce a new key (rotation, docs/architecture.md)',
        '$0 summary --repo repo --update --sign old.key --next-key new.pub',
      ],
      ['Show it', '$0 summary --repo repo --view'],
    ],
  });
  update = Option.Boolean('--update,-u', false, { description: 'Rewrite summary from the refs and deltas' });
  view = Option.Boolean('--view', false, { description: 'Print the current summary' });
  sign = Option.Array('--sign', [], { description: 'Sign with this private key file (repeatable; needs --update)' });
  expires = Option.String('--expires', {
    description: 'Clients refuse the summary after this long: N[smhd] (needs --update)',
  });
  nextKey = Option.Array('--next-key', [], {
    description: 'Public key file clients should trust from now on (repeatable; needs --sign)',
  });
  retireKey = Option.Array('--retire-key', [], {
    description: 'Public key file clients should stop trusting (repeatable; needs --sign)',
  });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    if (!this.update && !this.view) throw new UsageError('E_USAGE', 'say --update or --view');
    if ((this.sign.length > 0 || this.expires !== undefined) && !this.update)
      throw new UsageError('E_USAGE', '--sign and --expires need --update');
    // An announcement in an unsigned summary would be ignored by every client: say so now.
    if (this.nextKey.length + this.retireKey.length > 0 && this.sign.length === 0)
      throw new UsageError(
        'E_USAGE',
        '--next-key and --retire-key need --sign (clients honour them only from a signed summary)',
      );
    const keys = this.sign.map((f) => loadSigningKey(f));
    const options = {
      ...(this.expires !== undefined ? { expiresInSeconds: positiveDuration('--expires', this.expires) } : {}),
      nextKeys: this.nextKey.flatMap((f) => loadPublicKeys(f)),
      retiredKeys: this.retireKey.flatMap((f) => loadPublicKeys(f)),
    };
    const summary = this.update ? updateSummary(repo, keys, options).summary : readSummary(repo);
    if (this.json) {
      this.printJson({
        ...summary,
        metadata: Object.fromEntries(
          [...summary.metadata].map(([k, v]) => [
            k,
            v.type === 'bytes-list' ? v.value.map((b) => b.toString('base64')) : v.value,
          ]),
        ),
        signedBy: keys.map((k) => keyId(k.publicKey)),
      });
      return 0;
    }
    const lines = [`refs: ${summary.refs.length}`];
    for (const r of summary.refs)
      lines.push(
        `  ${r.name} ${r.checksum}${r.version ? ` (${r.version})` : ''} ${new Date(r.timestamp * 1000).toISOString()}`,
      );
    lines.push(`static deltas: ${summary.deltas.length}`);
    for (const d of summary.deltas)
      lines.push(`  ${d.from ? d.from.slice(0, 12) : 'scratch'} -> ${d.to.slice(0, 12)} ${d.size} bytes`);
    const expires = summary.metadata.get('arbor.expires');
    if (expires?.type === 'int') lines.push(`expires: ${new Date(expires.value * 1000).toISOString()}`);
    for (const [key, label] of [
      ['arbor.next-keys', 'next key'],
      ['arbor.retired-keys', 'retired key'],
    ] as const) {
      const value = summary.metadata.get(key);
      if (value?.type === 'bytes-list') for (const k of value.value) lines.push(`${label}: ${keyId(k)}`);
    }
    if (keys.length > 0) lines.push(`signed by: ${keys.map((k) => keyId(k.publicKey)).join(', ')}`);
    this.print(lines.join('\n'));
    return 0;
  }
}

function readSummary(repo: Repo): Summary {
  try {
    return decodeSummary(readFileSync(join(repo.path, 'summary')), 'summary');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT')
      throw new ArborError('E_SUMMARY_MISSING', `repository '${repo.path}' has no summary`, {
        hint: 'write one with `arbor summary --update`',
      });
    throw error;
  }
}
