// The release graph a compose server publishes inside its signed summary (metadata `arbor.releases`, so it
// travels with the summary's signature and replay protection): releases in publication order, each on a
// channel, with an optional phased rollout, and the marks that steer hosts — paused, dead-end, barrier.
// Pure: the document, its checks, the admin's edits, and the choice an agent makes from it.
import { type Checksum, isChecksum } from '../common/hash.js';

interface Rollout {
  /** Seconds since the epoch. */
  readonly start: number;
  /** Seconds over which the share of hosts allowed grows from 0 to all. */
  readonly duration: number;
}

export interface Release {
  readonly version: string;
  /** The ref it was published on (hosts pull the commit from the remote by checksum). */
  readonly ref: string;
  readonly commit: Checksum;
  readonly channel: string;
  readonly rollout: Rollout | null;
  /** Hosts must stop at this release before any later one. */
  readonly barrier: boolean;
  /** No host moves to it any more (it stays in the graph for hosts already on it). */
  readonly deadend: boolean;
  readonly paused: { readonly reason: string; readonly when: number } | null;
}

export interface ReleaseGraph {
  /** In publication order: later releases are newer. */
  readonly releases: readonly Release[];
}

/** Release versions, channels and remote names in a graph. */
export const RELEASE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;

/** Parses a graph; null with why when it is not one (an agent then refuses to act on it). */
export function decodeReleaseGraph(text: string): { graph: ReleaseGraph } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'it is not JSON' };
  }
  if (typeof value !== 'object' || value === null) return { error: 'it is not an object' };
  const doc = value as { version?: unknown; releases?: unknown };
  if (doc.version !== 1) return { error: 'it is not version 1' };
  if (!Array.isArray(doc.releases)) return { error: "it has no 'releases' list" };
  const releases: Release[] = [];
  for (const [i, r] of (doc.releases as unknown[]).entries()) {
    const problem = releaseProblem(r);
    if (problem) return { error: `release ${i}: ${problem}` };
    const release = r as Release;
    if (releases.some((x) => x.version === release.version)) return { error: `version ${release.version} twice` };
    releases.push({
      version: release.version,
      ref: release.ref,
      commit: release.commit,
      channel: release.channel,
      rollout: release.rollout,
      barrier: release.barrier,
      deadend: release.deadend,
      paused: release.paused,
    });
  }
  return { graph: { releases } };
}

function releaseProblem(r: unknown): string | null {
  if (typeof r !== 'object' || r === null) return 'not an object';
  const x = r as Record<string, unknown>;
  if (typeof x.version !== 'string' || !RELEASE_NAME.test(x.version)) return 'bad version';
  if (typeof x.ref !== 'string' || x.ref === '' || x.ref.length > 255) return 'bad ref';
  if (typeof x.commit !== 'string' || !isChecksum(x.commit)) return 'bad commit';
  if (typeof x.channel !== 'string' || !RELEASE_NAME.test(x.channel)) return 'bad channel';
  if (typeof x.barrier !== 'boolean' || typeof x.deadend !== 'boolean') return 'bad barrier or deadend';
  if (x.rollout !== null) {
    const ro = x.rollout as Record<string, unknown> | undefined;
    if (
      typeof ro !== 'object' ||
      !Number.isFinite(ro.start) ||
      !Number.isFinite(ro.duration) ||
      (ro.duration as number) <= 0
    )
      return 'bad rollout';
  }
  if (x.paused !== null) {
    const p = x.paused as Record<string, unknown> | undefined;
    if (typeof p !== 'object' || typeof p.reason !== 'string' || !Number.isFinite(p.when)) return 'bad paused';
  }
  return null;
}

export function encodeReleaseGraph(graph: ReleaseGraph): string {
  return `${JSON.stringify({ version: 1, releases: graph.releases }, null, 1)}\n`;
}

/** The share of hosts (0…1) a release admits at `now`: all without a rollout, growing linearly during one. */
export function rolloutShare(release: Release, now: number): number {
  if (release.rollout === null) return 1;
  return Math.min(1, Math.max(0, (now - release.rollout.start) / release.rollout.duration));
}

export type Choice =
  | { readonly release: Release; readonly why: string }
  | { readonly release: null; readonly why: string };

/**
 * The release a host on `current` (a commit) should move to: the newest release after it on `channel`
 * that is not paused nor a dead-end, not past the first barrier after it, and whose rollout admits the
 * host's stable `position` (0…1) at `now`. A host on a commit the graph does not list starts before the first.
 */
export function pickRelease(
  graph: ReleaseGraph,
  channel: string,
  current: string,
  position: number,
  now: number,
): Choice {
  const at = graph.releases.findIndex((r) => r.commit === current);
  let candidates = graph.releases.slice(at + 1).filter((r) => r.channel === channel);
  const barrier = candidates.findIndex((r) => r.barrier);
  if (barrier >= 0) candidates = candidates.slice(0, barrier + 1);
  let why = candidates.length === 0 ? `no release on channel '${channel}' after the deployed one` : '';
  for (const r of [...candidates].reverse()) {
    if (r.paused) {
      why ||= `release ${r.version} is paused: ${r.paused.reason}`;
      continue;
    }
    if (r.deadend) {
      why ||= `release ${r.version} is a dead-end`;
      continue;
    }
    const share = rolloutShare(r, now);
    if (position >= share) {
      why ||= `release ${r.version} is rolling out (${Math.floor(share * 100)} % of hosts so far; this host at ${Math.floor(position * 100)} %)`;
      continue;
    }
    return {
      release: r,
      why:
        barrier >= 0 && r === candidates[candidates.length - 1]
          ? 'a barrier: every host stops here first'
          : 'newest allowed release',
    };
  }
  return { release: null, why: why || 'nothing newer is allowed yet' };
}

/** An edit the admin asked for that the graph cannot take (the CLI turns it into a usage error). */
export class ReleaseEditError extends Error {}

/** Appends a release; its version must be new. */
export function addRelease(graph: ReleaseGraph, release: Release): ReleaseGraph {
  if (!RELEASE_NAME.test(release.version)) throw new ReleaseEditError(`'${release.version}' is not a version name`);
  if (!RELEASE_NAME.test(release.channel)) throw new ReleaseEditError(`'${release.channel}' is not a channel name`);
  if (graph.releases.some((r) => r.version === release.version))
    throw new ReleaseEditError(`release ${release.version} exists already`);
  return { releases: [...graph.releases, release] };
}

/** Changes release `version` with `change`. */
export function editRelease(graph: ReleaseGraph, version: string, change: (r: Release) => Release): ReleaseGraph {
  if (!graph.releases.some((r) => r.version === version)) throw new ReleaseEditError(`there is no release ${version}`);
  return { releases: graph.releases.map((r) => (r.version === version ? change(r) : r)) };
}
