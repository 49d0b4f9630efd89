// What the update agent remembers between runs (it exits between timer runs): SYSROOT/arbor/agent/state.json,
// replaced atomically. Read strictly: a damaged file is E_AGENT_STATE_INVALID, never half-trusted.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptionError, errnoCode, ioError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fs-atomic.js';

interface Release {
  readonly checksum: string;
  readonly version: string | null;
}

export interface AgentState {
  /** Seconds since the epoch of the last completed check. */
  readonly lastCheck: number | null;
  /** What the last check found on the channel; `newer`: differs from the deployed commit. */
  readonly available: (Release & { readonly newer: boolean }) | null;
  /** The release this agent staged, waiting for a reboot. */
  readonly staged: (Release & { readonly at: number }) | null;
  /** The release the agent rebooted into (or is about to): checked at the next run. */
  readonly pendingReboot: (Release & { readonly since: number }) | null;
  /** The FleetLock slot: asked for (the answer may not have arrived), or held. */
  readonly lock: 'none' | 'requested' | 'held';
  readonly lastUpdate: (Release & { readonly when: number; readonly outcome: 'blessed' | 'failed' }) | null;
  /** Releases whose trial failed here: never taken again (upgrade refuses them too). */
  readonly failedReleases: readonly (Release & { readonly when: number; readonly check: string | null })[];
  readonly lastFailure: { readonly when: number; readonly step: string; readonly message: string } | null;
  readonly lastRun: { readonly when: number; readonly result: string } | null;
  /** Trial outcomes not yet delivered to the fleet server (sent again at each run). */
  readonly pendingReports: readonly (Release & {
    readonly outcome: 'blessed' | 'failed';
    readonly check: string | null;
  })[];
}

const INITIAL_STATE: AgentState = {
  lastCheck: null,
  available: null,
  staged: null,
  pendingReboot: null,
  lock: 'none',
  lastUpdate: null,
  failedReleases: [],
  lastFailure: null,
  lastRun: null,
  pendingReports: [],
};

const MAX_STATE_BYTES = 1024 * 1024;

function statePath(sysrootPath: string): string {
  return join(sysrootPath, 'arbor', 'agent', 'state.json');
}

/** The stored state, or the initial one when the agent never ran. */
export function readAgentState(sysrootPath: string): AgentState {
  const path = statePath(sysrootPath);
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_STATE_BYTES) throw invalid(path, `it is larger than ${MAX_STATE_BYTES} bytes`);
    text = bytes.toString('utf8');
  } catch (error) {
    if (error instanceof CorruptionError) throw error;
    if (errnoCode(error) === 'ENOENT') return INITIAL_STATE;
    throw ioError('read', path, error);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid(path, 'it is not JSON');
  }
  if (typeof value !== 'object' || value === null || (value as { version?: unknown }).version !== 1)
    throw invalid(path, 'it is not a version 1 agent state');
  const state = { ...INITIAL_STATE, ...(value as Partial<AgentState>) };
  if (
    !['none', 'requested', 'held'].includes(state.lock) ||
    !Array.isArray(state.failedReleases) ||
    !Array.isArray(state.pendingReports)
  )
    throw invalid(path, 'its fields have the wrong types');
  return state;
}

export function writeAgentState(sysrootPath: string, state: AgentState): void {
  const path = statePath(sysrootPath);
  mkdirSync(join(sysrootPath, 'arbor', 'agent'), { recursive: true, mode: 0o755 });
  writeFileAtomic(path, `${JSON.stringify({ version: 1, ...state }, null, 2)}\n`, 0o644);
}

function invalid(path: string, why: string): CorruptionError {
  return new CorruptionError('E_AGENT_STATE_INVALID', `the agent state '${path}' is damaged: ${why}`, {
    hint: 'remove it: the agent starts again from what the sysroot shows (a held FleetLock slot may need `arbor fleetlock release`)',
  });
}
