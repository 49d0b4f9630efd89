// The update agent's configuration (/etc/arbor/agent.yaml): which channel to follow, what to do when an
// update appears (rpm-ostree's AutomaticUpdatePolicy: none, check, stage, apply), how often to look, and
// when and how to reboot (at once, inside maintenance windows, holding a FleetLock slot, or both).
// Validated strictly: every problem is E_AGENT_CONFIG at FILE:LINE:COL.
import { type Node, type Pair, isScalar } from 'yaml';
import { parseDuration } from '../common/duration.js';
import { readInputFile } from '../common/input-file.js';
import { YamlValidator, parseYamlSource } from '../common/yaml-source.js';
import { GROUP_NAME } from './protocol.js';
import { RELEASE_NAME } from './releases.js';
import { type MaintenanceWindow, isTimeZone } from './windows.js';

type Policy = 'none' | 'check' | 'stage' | 'apply';
type RebootStrategy = 'immediate' | 'periodic' | 'fleet-lock';

export interface AgentConfig {
  readonly path: string;
  /** REMOTE:REF to follow; null: the deployment's own origin (or the release graph). */
  readonly channel: string | null;
  /** Follow a channel of the release graph REMOTE publishes, instead of a ref's newest commit. */
  readonly releases: { readonly remote: string; readonly channel: string; readonly report: string | null } | null;
  /** The host's id for the fleet; null: /etc/machine-id. */
  readonly id: string | null;
  readonly policy: Policy;
  readonly intervalSeconds: number;
  /** Each host waits a stable fraction of this after the interval, so a fleet does not check at once. */
  readonly jitterSeconds: number;
  readonly strategy: RebootStrategy;
  /** periodic: when to reboot; fleet-lock: when to ask for a slot (none: any time). */
  readonly windows: readonly MaintenanceWindow[];
  readonly fleetLock: { readonly url: string; readonly group: string } | null;
  /** argv of the reboot. */
  readonly rebootCommand: readonly string[];
}

const CODE = 'E_AGENT_CONFIG';
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** The configuration used when the file does not exist: look for updates, change nothing. */
export function defaultAgentConfig(path: string): AgentConfig {
  return {
    path,
    channel: null,
    releases: null,
    id: null,
    policy: 'check',
    intervalSeconds: 3600,
    jitterSeconds: 600,
    strategy: 'immediate',
    windows: [],
    fleetLock: null,
    rebootCommand: ['systemctl', 'reboot'],
  };
}

/** Reads and validates the agent configuration at `path`. */
export function loadAgentConfig(path: string): AgentConfig {
  const bytes = readInputFile(path, `agent configuration '${path}'`, {
    code: CODE,
    maxBytes: 256 * 1024,
    names: 'an agent configuration is one of the',
  });
  return parseAgentConfig(path, bytes);
}

/** Validates the bytes of an agent configuration read from `path`. */
export function parseAgentConfig(path: string, bytes: Uint8Array): AgentConfig {
  const { doc, at } = parseYamlSource(path, bytes, `agent configuration '${path}'`, CODE);
  const v = new Validator(at);
  const base = defaultAgentConfig(path);
  if (doc.contents === null) return base;
  const top = v.mapping(doc.contents, 'the configuration', [
    'channel',
    'releases',
    'id',
    'policy',
    'interval',
    'jitter',
    'reboot',
  ]);
  const value = (keys: Map<string, Pair>, key: string): Node | undefined => keys.get(key)?.value as Node | undefined;
  const rebootNode = value(top, 'reboot');
  const reboot = rebootNode
    ? v.mapping(rebootNode, "'reboot'", ['strategy', 'windows', 'fleet_lock', 'command'])
    : new Map<string, Pair>();
  const strategyNode = value(reboot, 'strategy');
  const strategy = strategyNode
    ? (v.choice(strategyNode, "'reboot.strategy'", ['immediate', 'periodic', 'fleet-lock']) as RebootStrategy)
    : base.strategy;
  const windows = v.list(reboot.get('windows'), 'reboot.windows', (n) => v.window(n));
  const lockNode = value(reboot, 'fleet_lock');
  const fleetLock = lockNode ? v.fleetLock(lockNode) : null;
  if (strategy === 'periodic' && windows.length === 0)
    v.fail(strategyNode ?? null, "'reboot.strategy: periodic' needs 'reboot.windows'");
  if (strategy === 'fleet-lock' && fleetLock === null)
    v.fail(strategyNode ?? null, "'reboot.strategy: fleet-lock' needs 'reboot.fleet_lock' (url, group)");
  const command = value(reboot, 'command');
  const releasesNode = value(top, 'releases');
  if (releasesNode && top.has('channel'))
    v.fail(releasesNode, "give either 'channel' (a ref) or 'releases' (a release graph channel), not both");
  const policyNode = value(top, 'policy');
  return {
    path,
    channel: top.has('channel')
      ? v.string(value(top, 'channel'), "'channel'", /^[A-Za-z0-9._-]+:[^\s:]+$/, 'REMOTE:REF')
      : null,
    releases: releasesNode ? v.releases(releasesNode) : null,
    id: top.has('id') ? v.line(value(top, 'id'), "'id'") : null,
    policy: policyNode
      ? (v.choice(policyNode, "'policy'", ['none', 'check', 'stage', 'apply']) as Policy)
      : base.policy,
    intervalSeconds: top.has('interval') ? v.duration(value(top, 'interval'), "'interval'", 60) : base.intervalSeconds,
    jitterSeconds: top.has('jitter') ? v.duration(value(top, 'jitter'), "'jitter'", 0) : base.jitterSeconds,
    strategy,
    windows,
    fleetLock,
    rebootCommand: command
      ? v.list(reboot.get('command'), 'reboot.command', (n) => v.line(n, 'a reboot command word'))
      : base.rebootCommand,
  };
}

class Validator extends YamlValidator {
  constructor(at: (node: Node | null | undefined) => string) {
    super(CODE, at);
  }

  choice(node: Node, what: string, choices: readonly string[]): string {
    const s = this.string(node, what);
    if (!choices.includes(s)) this.fail(node, `${what} must be one of ${choices.join(', ')}`);
    return s;
  }

  /** A duration of at least `min` seconds: `90`, `30m`, `1h`, `7d`. */
  duration(node: Node | undefined, what: string, min: number): number {
    const text = isScalar(node) && typeof node.value === 'number' ? String(node.value) : this.string(node, what);
    let seconds: number;
    try {
      seconds = parseDuration(text);
    } catch {
      return this.fail(node, `${what} must be a duration such as 30m, 1h or 7d`);
    }
    if (seconds < min) this.fail(node, `${what} must be at least ${min} seconds`);
    return seconds;
  }

  window(node: Node): MaintenanceWindow {
    const keys = this.mapping(node, 'a window', ['days', 'start', 'length', 'time_zone']);
    const get = (k: string): Node | undefined => keys.get(k)?.value as Node | undefined;
    for (const k of ['days', 'start', 'length'])
      if (!keys.has(k)) this.fail(node, `a window needs '${k}' (days, start, length; time_zone is optional)`);
    const days = this.list(keys.get('days'), 'days', (n) => {
      const d = this.string(n, 'a day').toLowerCase().slice(0, 3);
      const i = DAYS.indexOf(d);
      if (i < 0) this.fail(n, `a day must be one of ${DAYS.join(', ')} (or the full name)`);
      return i;
    });
    const start = this.string(get('start'), "'start'", /^([01]\d|2[0-3]):[0-5]\d$/, 'a time HH:MM (quoted)');
    const [h = 0, m = 0] = start.split(':').map(Number); // HH:MM, checked just above
    const timeZone = keys.has('time_zone') ? this.line(get('time_zone'), "'time_zone'") : 'UTC';
    if (!isTimeZone(timeZone))
      this.fail(
        get('time_zone'),
        `'time_zone' is not a time zone this system knows (an IANA name such as Europe/Berlin)`,
      );
    const lengthSeconds = this.duration(get('length'), "'length'", 60);
    if (lengthSeconds > 7 * 86_400) this.fail(get('length'), "'length' must be at most 7 days");
    return { days, startMinutes: h * 60 + m, lengthSeconds, timeZone };
  }

  releases(node: Node): { remote: string; channel: string; report: string | null } {
    const keys = this.mapping(node, "'releases'", ['remote', 'channel', 'report']);
    for (const k of ['remote', 'channel']) if (!keys.has(k)) this.fail(node, `'releases' needs '${k}'`);
    return {
      remote: this.string(keys.get('remote')?.value as Node, "'remote'", RELEASE_NAME, 'a remote name'),
      channel: this.string(keys.get('channel')?.value as Node, "'channel'", RELEASE_NAME, 'a channel name'),
      report: keys.has('report')
        ? this.string(keys.get('report')?.value as Node, "'report'", /^https?:\/\/[^\s]+$/, 'an http(s) URL').replace(
            /\/+$/,
            '',
          )
        : null,
    };
  }

  fleetLock(node: Node): { url: string; group: string } {
    const keys = this.mapping(node, "'reboot.fleet_lock'", ['url', 'group']);
    if (!keys.has('url')) this.fail(node, "'reboot.fleet_lock' needs 'url'");
    const url = this.string(keys.get('url')?.value as Node, "'url'", /^https?:\/\/[^\s]+$/, 'an http(s) URL');
    const group = keys.has('group')
      ? this.string(keys.get('group')?.value as Node, "'group'", GROUP_NAME, 'a group name of [a-zA-Z0-9.-]')
      : 'default';
    return { url: url.replace(/\/+$/, ''), group };
  }
}
