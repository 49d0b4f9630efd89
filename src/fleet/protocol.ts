// The FleetLock protocol (Zincati's reboot coordination over HTTP) on the server side: which request is
// which, what a valid one carries, and the JSON errors `{"kind","value"}` with their status codes. Pure.
import { MAX_CLIENT_ID_LENGTH } from './semaphore.js';

export type Operation = 'pre-reboot' | 'steady-state' | 'report';

/** A trial's outcome as an agent reports it (`/v1/report`, Arbor's addition to the protocol). */
export interface TrialReport {
  readonly commit: string;
  readonly version: string | null;
  readonly outcome: 'blessed' | 'failed';
  /** The health check that failed, when one did. */
  readonly check: string | null;
}

export interface FleetLockRequest {
  readonly op: Operation;
  readonly id: string;
  readonly group: string;
  /** op report only. */
  readonly report?: TrialReport;
}

/**
 * Every error kind this server sends: the protocol asks for a small, fixed set (clients count them in
 * metrics). The status codes: 4xx for what the client must change, 409 for a full semaphore (retry
 * later), 503 when the store cannot be reached (retry later).
 */
const ERROR_STATUS = {
  not_found: 404,
  method_not_allowed: 405,
  bad_header: 400,
  body_too_large: 413,
  bad_body: 400,
  unknown_group: 400,
  failed_lock_semaphore_full: 409,
  store_unavailable: 503,
  store_invalid: 500,
  reports_disabled: 404,
} as const;

export type ErrorKind = keyof typeof ERROR_STATUS;

export class FleetLockError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly value: string,
  ) {
    super(value);
  }
  get status(): number {
    return ERROR_STATUS[this.kind];
  }
  /** The response body. */
  body(): string {
    return JSON.stringify({ kind: this.kind, value: this.value });
  }
}

/** Group labels as the protocol defines them. */
export const GROUP_NAME = /^[a-zA-Z0-9.-]+$/;
/** Largest request body read: the protocol's bodies are under 200 bytes. */
export const MAX_BODY_BYTES = 16 * 1024;

/** The operation a method and path name, or the error to answer. */
export function routeOf(method: string | undefined, path: string | undefined): Operation {
  const op =
    path === '/v1/pre-reboot'
      ? 'pre-reboot'
      : path === '/v1/steady-state'
        ? 'steady-state'
        : path === '/v1/report'
          ? 'report'
          : null;
  if (op === null)
    throw new FleetLockError('not_found', `no such endpoint: use POST /v1/pre-reboot, /v1/steady-state or /v1/report`);
  if (method !== 'POST') throw new FleetLockError('method_not_allowed', `${op} takes POST`);
  return op;
}

/** Validates the header and body of a request to `op`. */
export function parseRequest(
  op: Operation,
  protocolHeader: string | string[] | undefined,
  body: string,
): FleetLockRequest {
  if (protocolHeader !== 'true')
    throw new FleetLockError('bad_header', "the 'fleet-lock-protocol: true' header is required");
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new FleetLockError('bad_body', 'the body is not JSON');
  }
  const params =
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>).client_params : undefined;
  if (typeof params !== 'object' || params === null)
    throw new FleetLockError('bad_body', "the body has no 'client_params' object");
  const { id, group } = params as Record<string, unknown>;
  if (typeof id !== 'string' || id === '')
    throw new FleetLockError('bad_body', "'client_params.id' must be a non-empty string");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (id.length > MAX_CLIENT_ID_LENGTH || /[\x00-\x1f\x7f]/.test(id))
    throw new FleetLockError(
      'bad_body',
      `'client_params.id' must be at most ${MAX_CLIENT_ID_LENGTH} printable characters`,
    );
  if (typeof group !== 'string' || !GROUP_NAME.test(group))
    throw new FleetLockError('bad_body', "'client_params.group' must match ^[a-zA-Z0-9.-]+$");
  if (op !== 'report') return { op, id, group };
  return { op, id, group, report: parseReport((value as Record<string, unknown>).report) };
}

function parseReport(value: unknown): TrialReport {
  if (typeof value !== 'object' || value === null)
    throw new FleetLockError('bad_body', "a report needs a 'report' object");
  const { commit, version, outcome, check } = value as Record<string, unknown>;
  if (typeof commit !== 'string' || !/^[0-9a-f]{64}$/.test(commit))
    throw new FleetLockError('bad_body', "'report.commit' must be a commit checksum");
  if (outcome !== 'blessed' && outcome !== 'failed')
    throw new FleetLockError('bad_body', "'report.outcome' must be 'blessed' or 'failed'");
  const short = (v: unknown, what: string): string | null => {
    if (v === undefined || v === null) return null;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
    if (typeof v !== 'string' || v.length > 128 || /[\x00-\x1f\x7f]/.test(v))
      throw new FleetLockError('bad_body', `'report.${what}' must be a short printable string`);
    return v;
  };
  return { commit, version: short(version, 'version'), outcome, check: short(check, 'check') };
}
