// The reboot semaphore of one FleetLock group, as stored in etcd: a JSON document listing who holds a
// slot and since when. Pure: parsing (strict: it is read back from a shared store) and the two
// operations of the protocol, recursive lock and unlock-if-held, as functions from one value to the next.

/** One host between pre-reboot and steady-state. */
export interface Holder {
  readonly id: string;
  /** When it took the slot, seconds since the epoch (the server's clock). */
  readonly since: number;
}

export interface Semaphore {
  readonly slots: number;
  readonly holders: readonly Holder[];
}

/** What a lock request did: the host already held a slot, took one, or found every slot held. */
export type LockOutcome = 'held' | 'acquired' | 'full';

/** The largest id a client may use; longer ones are refused by the protocol layer. */
export const MAX_CLIENT_ID_LENGTH = 256;

/** The empty semaphore of a group with `slots` slots. */
export function emptySemaphore(slots: number): Semaphore {
  return { slots, holders: [] };
}

/**
 * RecursiveLock: a holder keeps its slot (asking again is not an error), a new host gets one while fewer
 * than `slots` are held. `slots` is the configured count, which may have changed since the value was stored:
 * lowering it never evicts a holder, it only refuses newcomers until enough have left.
 */
export function lock(
  sem: Semaphore,
  id: string,
  slots: number,
  now: number,
): { outcome: LockOutcome; next: Semaphore } {
  if (sem.holders.some((h) => h.id === id)) return { outcome: 'held', next: { ...sem, slots } };
  if (sem.holders.length >= slots) return { outcome: 'full', next: { ...sem, slots } };
  return { outcome: 'acquired', next: { slots, holders: [...sem.holders, { id, since: now }] } };
}

/** UnlockIfHeld: releases the host's slot if it has one; releasing nothing is not an error. */
export function unlock(sem: Semaphore, id: string): { released: boolean; next: Semaphore } {
  const holders = sem.holders.filter((h) => h.id !== id);
  return { released: holders.length !== sem.holders.length, next: { ...sem, holders } };
}

/** The stored form: `{"version":1,"slots":N,"holders":[{"id":…,"since":…}]}`. */
export function encodeSemaphore(sem: Semaphore): string {
  return JSON.stringify({
    version: 1,
    slots: sem.slots,
    holders: sem.holders.map((h) => ({ id: h.id, since: h.since })),
  });
}

/** Parses a stored semaphore; null when it is not one this version wrote (the caller names the key). */
export function decodeSemaphore(text: string): Semaphore | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { version, slots, holders } = value as Record<string, unknown>;
  if (version !== 1 || !Number.isInteger(slots) || (slots as number) < 0 || !Array.isArray(holders)) return null;
  const parsed: Holder[] = [];
  for (const h of holders as unknown[]) {
    if (typeof h !== 'object' || h === null) return null;
    const { id, since } = h as Record<string, unknown>;
    if (typeof id !== 'string' || id === '' || id.length > MAX_CLIENT_ID_LENGTH) return null;
    if (typeof since !== 'number' || !Number.isFinite(since)) return null;
    if (parsed.some((p) => p.id === id)) return null;
    parsed.push({ id, since });
  }
  return { slots: slots as number, holders: parsed };
}
