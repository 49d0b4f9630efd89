// The client side of FleetLock: what the update agent sends before rebooting and once healthy again.
import { MAX_CLIENT_ID_LENGTH } from './semaphore.js';

export type LockReply =
  | { readonly ok: true }
  /** The server answered with an error (`kind` from its JSON body when it sent one) or did not answer (status 0). */
  | { readonly ok: false; readonly status: number; readonly kind: string; readonly value: string };

/**
 * POSTs `{client_params:{id,group}}` (plus `extra`, e.g. a trial report) to BASE/v1/pre-reboot,
 * /v1/steady-state or /v1/report, with the protocol header.
 */
export async function fleetLockRequest(
  base: string,
  op: 'pre-reboot' | 'steady-state' | 'report',
  id: string,
  group: string,
  extra: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<LockReply> {
  if (id.length > MAX_CLIENT_ID_LENGTH)
    throw new Error(`internal error: client id longer than ${MAX_CLIENT_ID_LENGTH}`);
  let response: Response;
  try {
    response = await fetch(`${base}/v1/${op}`, {
      method: 'POST',
      headers: { 'fleet-lock-protocol': 'true', 'content-type': 'application/json' },
      body: JSON.stringify({ client_params: { id, group }, ...extra }),
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return { ok: false, status: 0, kind: 'unreachable', value: `${base} did not answer: ${(error as Error).message}` };
  }
  const text = (await response.text()).slice(0, 4096);
  if (response.status === 200) return { ok: true };
  let kind = 'http_error';
  let value = `HTTP ${response.status}`;
  try {
    const body = JSON.parse(text) as { kind?: unknown; value?: unknown };
    if (typeof body.kind === 'string') kind = body.kind;
    if (typeof body.value === 'string') value = body.value;
  } catch {
    // not the protocol's JSON error: keep the status
  }
  return { ok: false, status: response.status, kind, value };
}
