// The update agent: one run, started by a timer, then exit (nothing stays resident). A run first settles
// the last reboot (the new deployment blessed by its trial: release the FleetLock slot; fell back: record
// the release as failed here, release the slot), then checks the channel when a check is due, stages a
// newer release (policy stage/apply) and, with policy apply, reboots into it when the strategy allows:
// at once, inside a maintenance window, and/or holding a FleetLock slot.
import { createHash } from 'node:crypto';
import { ArborError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import {
  type Deployment,
  type Sysroot,
  cleanup,
  readBootState,
  readFileInRoot,
  readStagedDeployment,
  readTrialFailures,
  upgrade,
} from '../deploy/index.js';
import type { AgentConfig } from './agent-config.js';
import { RELEASES_KEY, fetchRemoteSummary, getRemote } from '../repo/index.js';
import { type AgentState, readAgentState, writeAgentState } from './agent-state.js';
import { fleetLockRequest } from './fleetlock-client.js';
import { decodeReleaseGraph, pickRelease } from './releases.js';
import { windowState } from './windows.js';

export interface AgentRunOptions {
  readonly sysroot: Sysroot;
  readonly config: AgentConfig;
  readonly now: Date;
  /** Check now, whatever the interval says ("update now"). */
  readonly force: boolean;
  /** Runs the reboot command; throws when it fails. */
  readonly reboot: (argv: readonly string[]) => void;
  /** Tells logged-in users (wall). */
  readonly wall: (message: string) => void;
  readonly log: (line: string) => void;
}

/** What a run did, in one sentence, and the state it left. */
export interface AgentRunResult {
  readonly result: string;
  readonly state: AgentState;
}

/** One agent run; the state is saved after every step, so a run killed at any point resumes correctly. */
export async function runAgent(options: AgentRunOptions): Promise<AgentRunResult> {
  const run = new Run(options);
  try {
    const result = await run.steps();
    run.save({ lastRun: { when: run.nowSeconds, result } });
    return { result, state: run.state };
  } catch (error) {
    const step = run.step;
    run.save({
      lastFailure: { when: run.nowSeconds, step, message: (error as Error).message },
      lastRun: { when: run.nowSeconds, result: `failed while ${step}` },
    });
    throw error;
  }
}

/** The stable fraction of the jitter this host waits: the same every run, spread across a fleet. */
export function jitterFraction(id: string): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0) / 0x1_0000_0000;
}

/** The host's id for the fleet: the configured one, else the machine id of the deployment in use. */
export function hostId(sysroot: Sysroot, config: AgentConfig): string | null {
  if (config.id !== null) return config.id;
  const state = readBootState(sysroot);
  const current = state.booted ?? state.deployments[0];
  if (current === undefined) return null;
  const text = readFileInRoot(sysroot.deploymentPath(current), '/etc/machine-id', 4096)?.toString('utf8').trim();
  return text && /^[0-9a-f]{32}$/.test(text) ? text : null;
}

/** Where the host stands in every phased rollout (0…1): stable, so the same hosts go first each time. */
export function rolloutPosition(id: string): number {
  return jitterFraction(`rollout:${id}`);
}

/** When the next check is due, seconds since the epoch (null: at the next run). */
export function nextCheckAt(state: AgentState, config: AgentConfig, id: string | null): number | null {
  if (state.lastCheck === null) return null;
  return state.lastCheck + config.intervalSeconds + Math.floor(config.jitterSeconds * jitterFraction(id ?? ''));
}

class Run {
  state: AgentState;
  step = 'starting';
  readonly nowSeconds: number;
  readonly #o: AgentRunOptions;
  readonly #id: string | null;

  constructor(options: AgentRunOptions) {
    this.#o = options;
    this.state = readAgentState(options.sysroot.path);
    this.nowSeconds = Math.floor(options.now.getTime() / 1000);
    this.#id = hostId(options.sysroot, options.config);
  }

  save(change: Partial<AgentState>): void {
    this.state = { ...this.state, ...change };
    writeAgentState(this.#o.sysroot.path, this.state);
  }

  async steps(): Promise<string> {
    const { config } = this.#o;
    if (config.policy === 'none') return 'automatic updates are off (policy: none)';
    this.step = 'settling the last reboot';
    const settled = await this.settleReboot();
    if (settled !== null) return settled;
    this.step = 'reporting trial outcomes';
    await this.flushReports();
    this.step = 'releasing the reboot slot';
    await this.releaseStaleLock();
    const due = nextCheckAt(this.state, config, this.#id);
    if (this.#o.force || due === null || this.nowSeconds >= due) {
      this.step = 'checking for updates';
      const checked = await this.check();
      if (checked !== null) return checked;
    }
    const staged = readStagedDeployment(this.#o.sysroot);
    if (staged === null || this.state.staged === null || staged.checksum !== this.state.staged.checksum)
      return this.idle();
    if (config.policy !== 'apply') return `${describe(this.state.staged)} is staged; it is used at the next reboot`;
    return this.rebootInto(staged);
  }

  /** After a reboot this agent asked for: blessed, still on trial, fallen back, or not rebooted yet. */
  async settleReboot(): Promise<string | null> {
    const pending = this.state.pendingReboot;
    if (pending === null) return null;
    const { sysroot } = this.#o;
    const boot = readBootState(sysroot);
    const current = boot.booted ?? boot.deployments[0];
    if (current?.checksum === pending.checksum) {
      if (current.trial !== undefined && current.trial.left > 0)
        return `booted ${describe(pending)} on trial; waiting for its health checks to bless it`;
      // What the last check found is what now runs: no longer an update (a timer run does not check again).
      const available = this.state.available;
      this.save({
        pendingReboot: null,
        staged: null,
        available: available?.checksum === pending.checksum ? { ...available, newer: false } : available,
        lastUpdate: { checksum: pending.checksum, version: pending.version, when: this.nowSeconds, outcome: 'blessed' },
      });
      this.queueReport({ checksum: pending.checksum, version: pending.version, outcome: 'blessed', check: null });
      this.#o.log(`${describe(pending)} is booted and blessed`);
      await this.releaseLock();
      return null;
    }
    const failure = current
      ? readTrialFailures(sysroot, current.stateroot).find((f) => f.checksum === pending.checksum)
      : undefined;
    if (failure !== undefined) {
      this.save({
        pendingReboot: null,
        staged: null,
        lastUpdate: { checksum: pending.checksum, version: pending.version, when: this.nowSeconds, outcome: 'failed' },
        failedReleases: [
          ...this.state.failedReleases,
          { checksum: pending.checksum, version: pending.version, when: failure.when, check: failure.check ?? null },
        ],
      });
      this.queueReport({
        checksum: pending.checksum,
        version: pending.version,
        outcome: 'failed',
        check: failure.check ?? null,
      });
      this.#o.log(
        `${describe(pending)} failed its trial (${failure.check ? `health check ${failure.check}` : 'tries ran out'}); back on ${describe(current ?? null)}`,
      );
      await this.releaseLock();
      return null;
    }
    const staged = readStagedDeployment(sysroot);
    if (staged?.checksum === pending.checksum) {
      // The reboot never happened (the agent was stopped, or the command failed): try it again.
      return this.#o.config.policy === 'apply' ? this.rebootInto(staged) : null;
    }
    this.save({ pendingReboot: null, staged: null });
    await this.releaseLock();
    return null;
  }

  /** Where trial outcomes go: the release graph's report URL, else the FleetLock server; null: nowhere. */
  reportUrl(): string | null {
    return this.#o.config.releases?.report ?? this.#o.config.fleetLock?.url ?? null;
  }

  queueReport(report: AgentState['pendingReports'][number]): void {
    if (this.reportUrl() === null) return;
    this.save({ pendingReports: [...this.state.pendingReports, report] });
  }

  /** Sends the queued reports; those the server does not take stay queued for the next run. */
  async flushReports(): Promise<void> {
    const url = this.reportUrl();
    if (url === null || this.#id === null || this.state.pendingReports.length === 0) return;
    const group = this.#o.config.fleetLock?.group ?? 'default';
    const left: AgentState['pendingReports'][number][] = [];
    for (const r of this.state.pendingReports) {
      const reply = await fleetLockRequest(url, 'report', this.#id, group, {
        report: { commit: r.checksum, version: r.version, outcome: r.outcome, check: r.check },
      });
      if (reply.ok) this.#o.log(`reported ${r.outcome} trial of ${describe(r)}`);
      // 404: this server takes no reports (reports_disabled, or a FleetLock server without the endpoint)
      // and never will; asking again at every run would only pile them up.
      else if (reply.status === 404)
        this.#o.log(`not reporting the trial of ${describe(r)}: the server answered 404: ${reply.value}`);
      else {
        left.push(r);
        this.#o.log(`could not report the trial of ${describe(r)}: ${reply.value}`);
      }
    }
    this.save({ pendingReports: left });
  }

  /** A slot asked for or held while nothing waits for a reboot (a run killed mid-way): give it back. */
  async releaseStaleLock(): Promise<void> {
    if (this.state.lock === 'none' || this.state.pendingReboot !== null) return;
    if (this.state.staged !== null && readStagedDeployment(this.#o.sysroot)?.checksum === this.state.staged.checksum)
      return;
    await this.releaseLock();
  }

  async releaseLock(): Promise<void> {
    const lock = this.#o.config.fleetLock;
    if (this.state.lock === 'none') return;
    if (lock === null || this.#id === null) {
      this.save({ lock: 'none' });
      return;
    }
    const reply = await fleetLockRequest(lock.url, 'steady-state', this.#id, lock.group);
    if (!reply.ok)
      throw new ArborError('E_AGENT_FLEETLOCK', `the FleetLock server refused steady-state: ${reply.value}`);
    this.save({ lock: 'none' });
    this.#o.log(`released the reboot slot in group '${lock.group}'`);
  }

  /** Looks at the channel; stages a newer release with policy stage or apply. Returns a result to stop with. */
  async check(): Promise<string | null> {
    const { sysroot, config } = this.#o;
    const target = config.releases !== null ? await this.fromGraph(config.releases) : null;
    if (typeof target === 'string') return target;
    const refspec = target?.refspec ?? config.channel ?? undefined;
    const pin = target ? { commit: target.commit } : {};
    const found = await upgrade(sysroot, { check: true, ...(refspec ? { refspec } : {}), ...pin });
    const available = found.available;
    const version = target?.version ?? found.version;
    const release = { checksum: available ?? '', version };
    this.save({
      lastCheck: this.nowSeconds,
      available: available === null ? null : { checksum: available, version, newer: found.newer },
    });
    if (available === null || !found.newer) return null;
    if (found.downgrade !== null) return `${describe(release)} is older than the deployment: not taken`;
    if (this.state.failedReleases.some((f) => f.checksum === available))
      return `${describe(release)} failed its trial on this host before: not taken again`;
    this.#o.log(`update available: ${describe(release)}`);
    if (config.policy === 'check') return `update available: ${describe(release)}`;
    if (readStagedDeployment(sysroot)?.checksum === available) {
      if (this.state.staged?.checksum !== available)
        this.save({ staged: { checksum: available, version, at: this.nowSeconds } });
      return null;
    }
    this.step = 'staging the update';
    const result = await upgrade(sysroot, { stage: true, ...(refspec ? { refspec } : {}), ...pin });
    const deployed = result.deployed?.deployment;
    if (!deployed) return null;
    this.save({ staged: { checksum: deployed.checksum, version: deployed.version ?? version, at: this.nowSeconds } });
    this.#o.log(`staged ${describe(deployed)}`);
    return null;
  }

  /**
   * The release the graph of `remote` allows this host on `channel` (read from the remote's verified,
   * fresh summary), or why there is none (a string: the run ends there).
   */
  async fromGraph(g: {
    remote: string;
    channel: string;
  }): Promise<{ refspec: string; commit: Checksum; version: string } | string> {
    const { sysroot } = this.#o;
    const summary = await fetchRemoteSummary(sysroot.repo, getRemote(sysroot.repo, g.remote));
    const text = summary.metadata.get(RELEASES_KEY);
    if (text?.type !== 'string')
      throw new ArborError('E_AGENT_RELEASES', `remote '${g.remote}' publishes no release graph in its summary`, {
        hint: 'on the server: `arbor release add …` then `arbor summary --update --sign KEY`',
      });
    const parsed = decodeReleaseGraph(text.value);
    if ('error' in parsed)
      throw new ArborError('E_AGENT_RELEASES', `the release graph of remote '${g.remote}' is invalid: ${parsed.error}`);
    if (this.#id === null)
      throw new ArborError('E_AGENT_NO_ID', 'the host has no id to place it in phased rollouts', {
        hint: "set 'id' in the agent configuration, or give the host an /etc/machine-id",
      });
    const boot = readBootState(sysroot);
    const current = boot.booted ?? boot.deployments[0];
    const choice = pickRelease(
      parsed.graph,
      g.channel,
      current?.checksum ?? '',
      rolloutPosition(this.#id),
      this.nowSeconds,
    );
    this.save({ lastCheck: this.nowSeconds });
    // A release this agent staged that the graph no longer allows (paused, dead-end) must not boot by accident.
    const staged = readStagedDeployment(sysroot);
    if (
      staged !== null &&
      staged.checksum !== choice.release?.commit &&
      this.state.staged?.checksum === staged.checksum
    ) {
      cleanup(sysroot, { pending: true });
      this.save({ staged: null, available: null });
      this.#o.log(`discarded the staged ${describe(staged)}: the release graph no longer allows it (${choice.why})`);
    }
    if (choice.release === null) {
      this.save({ available: null });
      return `no release to take: ${choice.why}`;
    }
    return {
      refspec: `${g.remote}:${choice.release.ref}`,
      commit: choice.release.commit,
      version: choice.release.version,
    };
  }

  /** Policy apply: reboot into the staged deployment when the windows and the fleet lock allow. */
  async rebootInto(staged: Deployment): Promise<string> {
    const { config } = this.#o;
    this.step = 'rebooting';
    if (config.windows.length > 0) {
      const w = windowState(config.windows, this.#o.now);
      if (!w.inside)
        return `${describe(staged)} is staged; waiting for the maintenance window${w.nextOpen ? ` (opens ${w.nextOpen.toISOString()})` : ''}`;
    }
    // Asked even when this host's state says it holds a slot: the lock is recursive, so a holder keeps it,
    // and a host whose slot an admin released (after this run was killed before rebooting) waits for one.
    if (config.strategy === 'fleet-lock' && config.fleetLock !== null) {
      if (this.#id === null)
        throw new ArborError('E_AGENT_NO_ID', 'the host has no id for the FleetLock server', {
          hint: "set 'id' in the agent configuration, or give the host an /etc/machine-id",
        });
      this.step = 'asking for a reboot slot';
      const wasHeld = this.state.lock === 'held';
      this.save({ lock: 'requested' });
      const reply = await fleetLockRequest(config.fleetLock.url, 'pre-reboot', this.#id, config.fleetLock.group);
      if (!reply.ok) {
        if (reply.status === 409) return `${describe(staged)} is staged; waiting for a reboot slot (${reply.value})`;
        throw new ArborError('E_AGENT_FLEETLOCK', `the FleetLock server refused pre-reboot: ${reply.value}`);
      }
      this.save({ lock: 'held' });
      if (!wasHeld) this.#o.log(`holding a reboot slot in group '${config.fleetLock.group}'`);
    }
    this.step = 'rebooting';
    this.save({ pendingReboot: { checksum: staged.checksum, version: staged.version, since: this.nowSeconds } });
    this.#o.wall(`arbor: rebooting into ${describe(staged)} to finish an update`);
    this.#o.reboot(config.rebootCommand);
    return `rebooting into ${describe(staged)}`;
  }

  idle(): string {
    const a = this.state.available;
    if (a?.newer && this.#o.config.policy === 'check') return `update available: ${describe(a)}`;
    return a === null || !a.newer ? 'up to date' : `update available: ${describe(a)}`;
  }
}

function describe(r: { readonly checksum: string; readonly version: string | null } | null): string {
  if (r === null) return 'nothing';
  return `${r.checksum.slice(0, 12)}${r.version ? ` (version ${r.version})` : ''}`;
}
