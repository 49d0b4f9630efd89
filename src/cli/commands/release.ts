// `arbor release add|list|pause|resume|deadend`: the release graph a compose server publishes inside its
// signed summary — which commit each version is, its channel, its phased rollout, and the marks that steer
// update agents (paused, dead-end, barrier). docs/fleet.md.
import { Command, Option } from 'clipanion';
import { positiveDuration } from '../../common/duration.js';
import { UsageError } from '../../common/errors.js';
import { isChecksum } from '../../common/hash.js';
import {
  ReleaseEditError,
  addRelease,
  editRelease,
  loadReleaseGraph,
  rolloutShare,
  saveReleaseGraph,
} from '../../fleet/index.js';
import { type Repo, loadSigningKey } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';

abstract class ReleaseEditCommand extends RepoCommand {
  sign = Option.Array('--sign', [], {
    description: 'Publish at once: write the summary again, signed with this key (repeatable)',
  });
  expires = Option.String('--expires', { description: 'With --sign: clients refuse the summary after this long' });

  /** Applies `edit` to the graph, writes it, and publishes it when keys are given. */
  protected change(
    repo: Repo,
    edit: Parameters<typeof editRelease>[2] | null,
    add?: Parameters<typeof addRelease>[1],
  ): void {
    let graph = loadReleaseGraph(repo);
    try {
      if (add) graph = addRelease(graph, add);
      else if (edit) graph = editRelease(graph, this.versionArg(), edit);
    } catch (error) {
      if (error instanceof ReleaseEditError) throw new UsageError('E_USAGE', error.message);
      throw error;
    }
    const keys = this.sign.map((f) => loadSigningKey(f));
    if (this.expires !== undefined && keys.length === 0) throw new UsageError('E_USAGE', '--expires needs --sign');
    saveReleaseGraph(
      repo,
      graph,
      keys.length === 0
        ? null
        : {
            keys,
            ...(this.expires !== undefined ? { expiresInSeconds: positiveDuration('--expires', this.expires) } : {}),
          },
    );
    if (keys.length === 0)
      this.context.stderr.write('not published yet: run `arbor summary --update --sign KEY` (or pass --sign)\n');
  }

  protected abstract versionArg(): string;
}

export class ReleaseAddCommand extends ReleaseEditCommand {
  static override paths = [['release', 'add']];
  static override usage = Command.Usage({
    description: "Add a release to the graph: a version on a channel, the commit (default: REF's), a rollout",
    examples: [
      [
        'Release 42 to stable over a day',
        '$0 release add --repo repo 42 --ref os/stable --channel stable --rollout 1d --sign release.key',
      ],
      [
        'A barrier every host passes through',
        '$0 release add --repo repo 43 --ref os/stable --channel stable --barrier',
      ],
    ],
  });
  version = Option.String({ name: 'VERSION' });
  ref = Option.String('--ref', { required: true, description: 'The ref the release was committed on' });
  commit = Option.String('--commit', { description: "The release's commit (default: the ref's)" });
  channel = Option.String('--channel', 'stable', { description: 'Its channel (default stable)' });
  rollout = Option.String('--rollout', {
    description: 'Roll out over this long: the share of hosts grows from 0 to all',
  });
  rolloutStart = Option.String('--rollout-start', { description: 'When the rollout starts (ISO 8601; default now)' });
  barrier = Option.Boolean('--barrier', false, { description: 'Hosts stop at this release before any later one' });

  protected versionArg(): string {
    return this.version;
  }
  protected async runWith(repo: Repo): Promise<number> {
    const commit = this.commit ?? repo.db.getRef(this.ref);
    if (commit === undefined || commit === null)
      throw new UsageError('E_USAGE', `the repository has no ref '${this.ref}'; give --commit`);
    if (!isChecksum(commit) || !repo.hasObject(commit, 'commit'))
      throw new UsageError('E_USAGE', `--commit: '${commit}' is not a commit of this repository`);
    let start = Math.floor(Date.now() / 1000);
    if (this.rolloutStart !== undefined) {
      const t = Date.parse(this.rolloutStart);
      if (Number.isNaN(t))
        throw new UsageError('E_USAGE', `--rollout-start: expected ISO 8601, got '${this.rolloutStart}'`);
      start = Math.floor(t / 1000);
    }
    this.change(repo, null, {
      version: this.version,
      ref: this.ref,
      commit,
      channel: this.channel,
      rollout: this.rollout === undefined ? null : { start, duration: positiveDuration('--rollout', this.rollout) },
      barrier: this.barrier,
      deadend: false,
      paused: null,
    });
    this.print(`added release ${this.version} (${commit.slice(0, 12)}) to channel ${this.channel}`);
    return 0;
  }
}

export class ReleasePauseCommand extends ReleaseEditCommand {
  static override paths = [['release', 'pause']];
  static override usage = Command.Usage({
    description: 'Stop a release: no further host starts it (hosts on it stay)',
  });
  version = Option.String({ name: 'VERSION' });
  reason = Option.String('--reason', 'paused by an administrator', {
    description: 'Why (shown by release list and agents)',
  });
  protected versionArg(): string {
    return this.version;
  }
  protected async runWith(repo: Repo): Promise<number> {
    this.change(repo, (r) => ({ ...r, paused: { reason: this.reason, when: Math.floor(Date.now() / 1000) } }));
    this.print(`paused release ${this.version}`);
    return 0;
  }
}

export class ReleaseResumeCommand extends ReleaseEditCommand {
  static override paths = [['release', 'resume']];
  static override usage = Command.Usage({ description: 'Let a paused release continue' });
  version = Option.String({ name: 'VERSION' });
  protected versionArg(): string {
    return this.version;
  }
  protected async runWith(repo: Repo): Promise<number> {
    this.change(repo, (r) => ({ ...r, paused: null }));
    this.print(`resumed release ${this.version}`);
    return 0;
  }
}

export class ReleaseDeadendCommand extends ReleaseEditCommand {
  static override paths = [['release', 'deadend']];
  static override usage = Command.Usage({ description: 'Mark a release a dead-end: no host moves to it any more' });
  version = Option.String({ name: 'VERSION' });
  protected versionArg(): string {
    return this.version;
  }
  protected async runWith(repo: Repo): Promise<number> {
    this.change(repo, (r) => ({ ...r, deadend: true }));
    this.print(`release ${this.version} is a dead-end`);
    return 0;
  }
}

export class ReleaseListCommand extends RepoCommand {
  static override paths = [['release', 'list']];
  static override usage = Command.Usage({
    description: 'List the release graph: versions, commits, channels, rollouts, marks',
  });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const graph = loadReleaseGraph(repo);
    const now = Math.floor(Date.now() / 1000);
    if (this.json) {
      this.printJson({ releases: graph.releases.map((r) => ({ ...r, share: rolloutShare(r, now) })) });
      return 0;
    }
    if (graph.releases.length === 0) this.print('no releases');
    for (const r of graph.releases) {
      const marks = [
        r.paused ? `PAUSED (${r.paused.reason})` : '',
        r.deadend ? 'dead-end' : '',
        r.barrier ? 'barrier' : '',
        r.rollout && rolloutShare(r, now) < 1 ? `rolling out: ${Math.floor(rolloutShare(r, now) * 100)} %` : '',
      ].filter(Boolean);
      this.print(
        `${r.version}  ${r.channel}  ${r.commit.slice(0, 12)}  ${r.ref}${marks.length ? `  ${marks.join(', ')}` : ''}`,
      );
    }
    return 0;
  }
}
