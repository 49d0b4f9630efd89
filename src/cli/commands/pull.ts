// `arbor pull` and `arbor pull-local`: fetch commits from a remote or another local repository.
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type PullReport, type Remote, Repo, getRemote, pullFromRemote } from '../../repo/index.js';
import { ProgressLine, describePullProgress, formatBytes } from '../progress.js';
import { RepoCommand } from '../repo-command.js';

abstract class PullBase extends RepoCommand {
  depth = Option.String('--depth', '0', { description: 'Also fetch N parents of each commit (-1: the whole history)' });
  commitMetadataOnly = Option.Boolean('--commit-metadata-only', false, {
    description: 'Fetch only commit objects (and signatures); refs do not move',
  });
  disableStaticDeltas = Option.Boolean('--disable-static-deltas', false, {
    description: 'Fetch objects one by one even when a delta exists',
  });
  dryRun = Option.Boolean('--dry-run', false, {
    description: 'Print what would be downloaded (objects, bytes); change nothing',
  });
  jobs = Option.String('--jobs,-j', '16', { description: 'Parallel requests (default 16)' });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  allowDowngrade = Option.Boolean('--allow-downgrade', false, {
    description: 'Let a ref move to an older commit (refused by default)',
  });

  protected async pullWith(repo: Repo, remote: Remote, refs: string[], refPrefix: string): Promise<number> {
    if (refs.length === 0) throw new UsageError('E_USAGE', 'name at least one REF');
    const depth = Number(this.depth);
    if (!Number.isInteger(depth) || depth < -1)
      throw new UsageError('E_USAGE', `--depth: expected an integer >= -1, got '${this.depth}'`);
    const jobs = Number(this.jobs);
    if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64)
      throw new UsageError('E_USAGE', `--jobs: expected 1 to 64, got '${this.jobs}'`);
    const progress = new ProgressLine(this.context.stderr);
    const report = await pullFromRemote(repo, remote, {
      refs,
      depth,
      refPrefix,
      concurrency: jobs,
      allowDowngrade: this.allowDowngrade,
      commitMetadataOnly: this.commitMetadataOnly,
      disableStaticDeltas: this.disableStaticDeltas,
      dryRun: this.dryRun,
      onProgress: (p) => progress.update(describePullProgress('receiving', p, progress.elapsedSeconds), p.bytes),
    });
    progress.done();
    if (this.json) this.printJson(report);
    else this.print(describeReport(report, refPrefix));
    return 0;
  }
}

function describeReport(r: PullReport, refPrefix: string): string {
  const lines = r.refs.map((ref) => {
    const version = ref.version ? ` (${ref.version})` : '';
    const signed = ref.signedBy ? `, signed by ${ref.signedBy}` : '';
    const name = ref.ref === ref.commit ? 'commit' : `${refPrefix}${ref.ref}`;
    const downgrade = ref.downgrade
      ? ` — downgrade from ${ref.previous?.slice(0, 12) ?? '?'} to an older commit (--allow-downgrade)`
      : '';
    return `${name}: ${ref.commit}${version} — ${ref.method}${signed}${downgrade}`;
  });
  if (r.wouldFetch)
    lines.push(
      `would fetch ${r.wouldFetch.objects} objects, ${formatBytes(r.wouldFetch.bytes)} (${r.wouldFetch.bytes} bytes)`,
    );
  else
    lines.push(
      `fetched ${r.objectsFetched} objects, ${formatBytes(r.bytesFetched)} in ${r.seconds.toFixed(1)} s${r.objectsSalvaged > 0 ? ` (${r.objectsSalvaged} kept from an interrupted pull)` : ''}`,
    );
  return lines.join('\n');
}

export class PullCommand extends PullBase {
  static override paths = [['pull']];
  static override usage = Command.Usage({
    description: 'Fetch refs from a remote into this repository (as REMOTE:REF)',
    details: `
      Reads the remote's summary first (verifying its signature when the remote requires signatures), then for each REF applies a static
      delta from the commit this repository has, or fetches the missing objects one by one in parallel. Every object is verified against
      its id before it is stored; the remote ref moves only once the whole commit is here. An interrupted pull, run again, does not fetch
      again what it already stored. REF may also be a full commit id.
    `,
    examples: [
      ['Pull a branch', '$0 pull --repo repo origin os/x86_64/main'],
      ['What would it cost?', '$0 pull --repo repo origin os/x86_64/main --dry-run'],
    ],
  });
  remote = Option.String({ required: true, name: 'REMOTE' });
  refs = Option.Rest({ name: 'REF' });
  protected async runWith(repo: Repo): Promise<number> {
    return this.pullWith(repo, getRemote(repo, this.remote), this.refs, `${this.remote}:`);
  }
}

export class PullLocalCommand extends PullBase {
  static override paths = [['pull-local']];
  static override usage = Command.Usage({
    description: 'Copy refs and their objects from another repository on this machine',
    details:
      'Objects are verified as they are copied. The refs are written under the same names (or REMOTE:REF with --remote). Without REF, every ref of the source is copied.',
    examples: [['Copy a branch', '$0 pull-local --repo repo /srv/compose/repo os/main']],
  });
  source = Option.String({ required: true, name: 'SRC_REPO' });
  remote = Option.String('--remote', { description: 'Write refs as REMOTE:REF' });
  refs = Option.Rest({ name: 'REF' });
  protected async runWith(repo: Repo): Promise<number> {
    const remote: Remote = { name: this.source, url: this.source, keys: [], signVerify: false };
    let refs = this.refs;
    if (refs.length === 0) {
      const src = Repo.open(this.source);
      refs = src.db
        .listRefs()
        .filter((r) => !r.name.includes(':'))
        .map((r) => r.name);
      src.close();
    }
    return this.pullWith(repo, remote, refs, this.remote ? `${this.remote}:` : '');
  }
}
