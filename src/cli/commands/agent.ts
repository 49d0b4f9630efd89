// `arbor agent run|run-once|status`: the update agent a systemd timer starts (data/systemd/arbor-agent.*),
// "update now", and what it knows: last check, what is available and staged, the next window, the lock.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Command, Option } from 'clipanion';
import { ArborError, UsageError, present } from '../../common/errors.js';
import type { Sysroot } from '../../deploy/index.js';
import {
  defaultAgentConfig,
  hostId,
  loadAgentConfig,
  nextCheckAt,
  readAgentState,
  runAgent,
  windowState,
} from '../../fleet/index.js';
import { SysrootCommand } from '../sysroot-command.js';

const DEFAULT_CONFIG = '/etc/arbor/agent.yaml';

abstract class AgentCommand extends SysrootCommand {
  config = Option.String('--config', DEFAULT_CONFIG, {
    description: `The agent configuration (default ${DEFAULT_CONFIG}; when that file is missing: policy check)`,
  });
  at = Option.String('--at', { description: 'Act as if the time were this ISO 8601 instant (to try windows)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected loadConfig() {
    if (this.config === DEFAULT_CONFIG && !existsSync(DEFAULT_CONFIG)) return defaultAgentConfig(DEFAULT_CONFIG);
    return loadAgentConfig(this.config);
  }

  protected now(): Date {
    if (this.at === undefined) return new Date();
    const t = Date.parse(this.at);
    if (Number.isNaN(t) || !/^\d{4}-\d\d-\d\dT/.test(this.at))
      throw new UsageError('E_USAGE', `--at: expected an ISO 8601 time such as 2026-12-07T22:30:00Z, got '${this.at}'`);
    return new Date(t);
  }

  protected async runAgentOnce(sysroot: Sysroot, force: boolean): Promise<number> {
    const config = this.loadConfig();
    sysroot.lock();
    const { result, state } = await runAgent({
      sysroot,
      config,
      now: this.now(),
      force,
      reboot: (argv) => {
        const [command, ...args] = argv;
        const r = spawnSync(present(command, 'the reboot command'), args, { stdio: 'inherit' });
        if (r.status !== 0)
          throw new ArborError(
            'E_AGENT_REBOOT',
            `the reboot command (${argv.join(' ')}) ${r.error ? `could not run: ${r.error.message}` : `exited ${r.status ?? r.signal}`}`,
          );
      },
      wall: (message) => {
        spawnSync('wall', ['--nobanner', message], { stdio: 'ignore', timeout: 5000 });
      },
      log: (line) => {
        if (!this.json) this.context.stderr.write(`arbor-agent: ${line}\n`);
      },
    });
    if (this.json) this.printJson({ result, state });
    else this.print(result);
    return 0;
  }
}

export class AgentRunCommand extends AgentCommand {
  static override paths = [['agent', 'run']];
  static override usage = Command.Usage({
    description: 'One run of the update agent (what arbor-agent.timer starts): check when due, stage, reboot',
    details: `
      Settles the last reboot (a blessed trial releases the FleetLock slot; a failed one marks the release
      failed on this host), checks the channel when the configured interval (plus this host's share of the
      jitter) has passed, stages a newer release (policy stage or apply), and with policy apply reboots into
      it when the reboot strategy allows. Then exits: nothing stays resident between runs. See docs/fleet.md.
    `,
  });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    return this.runAgentOnce(sysroot, false);
  }
}

export class AgentRunOnceCommand extends AgentCommand {
  static override paths = [['agent', 'run-once']];
  static override usage = Command.Usage({
    description: 'Update now: a run of the agent that checks whatever the interval says',
  });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    return this.runAgentOnce(sysroot, true);
  }
}

export class AgentStatusCommand extends AgentCommand {
  static override paths = [['agent', 'status']];
  static override usage = Command.Usage({
    description: 'What the update agent knows: last check, available and staged releases, windows, lock, failures',
  });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const config = this.loadConfig();
    const state = readAgentState(sysroot.path);
    const now = this.now();
    const id = hostId(sysroot, config);
    const next = nextCheckAt(state, config, id);
    const window = config.windows.length > 0 ? windowState(config.windows, now) : null;
    const iso = (s: number | null) => (s === null ? null : new Date(s * 1000).toISOString());
    const view = {
      config: config.path,
      id,
      channel: config.channel,
      policy: config.policy,
      strategy: config.strategy,
      lastCheck: iso(state.lastCheck),
      nextCheck: next === null ? 'at the next run' : iso(next),
      available: state.available,
      staged: state.staged,
      pendingReboot: state.pendingReboot,
      window: window && { inside: window.inside, closes: window.closes, nextOpen: window.nextOpen },
      lock: config.fleetLock ? { ...config.fleetLock, state: state.lock } : null,
      lastUpdate: state.lastUpdate,
      failedReleases: state.failedReleases,
      lastFailure: state.lastFailure,
      lastRun: state.lastRun,
    };
    if (this.json) {
      this.printJson(view);
      return 0;
    }
    const rel = (r: { checksum: string; version: string | null } | null) =>
      r === null ? 'none' : `${r.checksum.slice(0, 12)}${r.version ? ` (version ${r.version})` : ''}`;
    const lines = [
      `Policy: ${config.policy}, reboot ${config.strategy}${config.channel ? `, channel ${config.channel}` : ''}`,
      `Last check: ${view.lastCheck ?? 'never'}; next: ${view.nextCheck}`,
      `Available: ${state.available?.newer ? rel(state.available) : 'nothing newer'}`,
      `Staged: ${rel(state.staged)}`,
    ];
    if (state.pendingReboot) lines.push(`Rebooted into: ${rel(state.pendingReboot)} (waiting for its trial)`);
    if (window)
      lines.push(
        window.inside
          ? `Window: open until ${window.closes?.toISOString()}`
          : `Window: closed; next opens ${window.nextOpen?.toISOString() ?? 'never'}`,
      );
    if (config.fleetLock)
      lines.push(`Reboot slot: ${state.lock} (group ${config.fleetLock.group} at ${config.fleetLock.url})`);
    if (state.lastUpdate) lines.push(`Last update: ${rel(state.lastUpdate)} ${state.lastUpdate.outcome}`);
    for (const f of state.failedReleases)
      lines.push(`Failed here: ${rel(f)}${f.check ? ` (health check ${f.check})` : ''}; never taken again`);
    if (state.lastFailure)
      lines.push(
        `Last failure: ${iso(state.lastFailure.when)} while ${state.lastFailure.step}: ${state.lastFailure.message}`,
      );
    if (state.lastRun) lines.push(`Last run: ${iso(state.lastRun.when)}: ${state.lastRun.result}`);
    this.print(lines.join('\n'));
    return 0;
  }
}
