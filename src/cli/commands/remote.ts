// `arbor remote add|list|show|delete|refs`: the servers this repository pulls from.
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import {
  REMOTE_OPTION_KEYS,
  type Repo,
  addRemote,
  deleteRemote,
  describeRemote,
  fetchRemoteSummary,
  getRemote,
  listRemotes,
  resetRemoteFreshness,
} from '../../repo/index.js';
import { RepoCommand, trustedKeysOf } from '../repo-command.js';

export class RemoteAddCommand extends RepoCommand {
  static override paths = [['remote', 'add']];
  static override usage = Command.Usage({
    description: "Add a remote: a name for a server's repository URL",
    details: `
      URL is http(s)://HOST[:PORT]/PATH of an archive repository served as static files, or a local repository (file:///PATH or /PATH).
      --sign-verify=ed25519=PUBKEYFILE makes every pull from it require a summary and commits signed by one of those keys (the keys are
      copied into this repository's config). Either it or --no-sign-verify must be given: unsigned pulls are a choice, not a default.
    `,
    examples: [
      [
        'A signed remote',
        '$0 remote add --repo repo origin http://updates.example.com/repo --sign-verify=ed25519=release.pub',
      ],
      ['An unsigned one', '$0 remote add --repo repo lab http://10.0.0.5:8080/repo --no-sign-verify'],
    ],
  });
  name = Option.String({ required: true, name: 'NAME' });
  url = Option.String({ required: true, name: 'URL' });
  signVerify = Option.Array('--sign-verify', [], {
    description: 'ed25519=PUBKEYFILE: require signatures by these keys (repeatable)',
  });
  noSignVerify = Option.Boolean('--no-sign-verify', false, { description: 'Pull without checking signatures' });
  ifNotExists = Option.Boolean('--if-not-exists', false, { description: 'Do nothing when the remote exists' });
  set = Option.Array('--set', [], {
    description: `KEY=VALUE: a transfer setting (${REMOTE_OPTION_KEYS.join(', ')}; repeatable)`,
  });
  protected async runWith(repo: Repo): Promise<number> {
    const options = new Map(
      this.set.map((spec) => {
        const eq = spec.indexOf('=');
        if (eq <= 0) throw new UsageError('E_USAGE', `--set expects KEY=VALUE, got '${spec}'`);
        return [spec.slice(0, eq), spec.slice(eq + 1)] as const;
      }),
    );
    const keys = trustedKeysOf(this.signVerify, this.noSignVerify);
    addRemote(repo, { name: this.name, url: this.url, keys, signVerify: keys.length > 0, options }, this.ifNotExists);
    return 0;
  }
}

export class RemoteListCommand extends RepoCommand {
  static override paths = [['remote', 'list']];
  static override usage = Command.Usage({ description: 'List remotes (with -u, their URLs)' });
  urls = Option.Boolean('-u,--show-urls', false, { description: 'Show URLs' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const remotes = listRemotes(repo).map(describeRemote);
    if (this.json) this.printJson(remotes);
    else if (remotes.length > 0) this.print(remotes.map((r) => (this.urls ? `${r.name} ${r.url}` : r.name)).join('\n'));
    return 0;
  }
}

export class RemoteShowCommand extends RepoCommand {
  static override paths = [['remote', 'show']];
  static override usage = Command.Usage({
    description: 'Show a remote: URL, whether signatures are required, trusted key ids',
  });
  name = Option.String({ required: true, name: 'NAME' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const r = describeRemote(getRemote(repo, this.name));
    if (this.json) this.printJson(r);
    else
      this.print(
        [
          `name: ${r.name}`,
          `url: ${r.url}`,
          `sign-verify: ${r.signVerify ? 'ed25519' : 'no'}`,
          ...r.keys.map((k) => `trusted key: ${k}`),
        ].join('\n'),
      );
    return 0;
  }
}

export class RemoteDeleteCommand extends RepoCommand {
  static override paths = [['remote', 'delete']];
  static override usage = Command.Usage({
    description: 'Delete a remote (its REMOTE:REF refs stay until deleted with `arbor refs --delete`)',
  });
  name = Option.String({ required: true, name: 'NAME' });
  ifExists = Option.Boolean('--if-exists', false, { description: 'Do nothing when there is no such remote' });
  protected async runWith(repo: Repo): Promise<number> {
    deleteRemote(repo, this.name, this.ifExists);
    return 0;
  }
}

export class RemoteRefsCommand extends RepoCommand {
  static override paths = [['remote', 'refs']];
  static override usage = Command.Usage({
    description: 'List the refs a remote offers (reads its summary, verifying the signature when required)',
  });
  name = Option.String({ required: true, name: 'NAME' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const remote = getRemote(repo, this.name);
    const summary = await fetchRemoteSummary(repo, remote);
    if (this.json) this.printJson(summary.refs);
    else if (summary.refs.length > 0)
      this.print(summary.refs.map((r) => `${remote.name}:${r.name} ${r.checksum}`).join('\n'));
    return 0;
  }
}

export class RemoteResetFreshnessCommand extends RepoCommand {
  static override paths = [['remote', 'reset-freshness']];
  static override usage = Command.Usage({
    description: 'Forget the newest summary accepted from a remote, so the next pull accepts an older one',
    details: `
      Pulls refuse a summary older than the last one accepted from the remote (E_SUMMARY_REPLAYED): an attacker or a stale mirror
      must not roll a host back. When the server's repository was rebuilt on purpose with an older clock, run this once, then pull.
    `,
    examples: [['After a server rebuild', '$0 remote reset-freshness --repo repo origin']],
  });
  name = Option.String({ required: true, name: 'NAME' });
  protected async runWith(repo: Repo): Promise<number> {
    const forgot = resetRemoteFreshness(repo, this.name);
    this.print(
      forgot
        ? `remote '${this.name}': the next summary is accepted whatever its timestamp`
        : `remote '${this.name}' had no summary recorded`,
    );
    return 0;
  }
}
