// Maintenance windows: weekly periods (days, a start time, a length) in a time zone, during which a
// host may reboot. Pure: given the windows and an instant, whether it is inside one and when the next
// opens. Time zones are IANA names resolved by Intl, so daylight-saving changes move windows as the
// local clock does.

export interface MaintenanceWindow {
  /** Days the window opens on, 0 = Sunday … 6 = Saturday (local to `timeZone`). */
  readonly days: readonly number[];
  /** Minutes after local midnight. */
  readonly startMinutes: number;
  readonly lengthSeconds: number;
  readonly timeZone: string;
}

export interface WindowState {
  readonly inside: boolean;
  /** When the current window closes (inside) — or null. */
  readonly closes: Date | null;
  /** When the next window opens after `now`; null when there are no windows. */
  readonly nextOpen: Date | null;
}

/** Where `now` stands against `windows`. */
export function windowState(windows: readonly MaintenanceWindow[], now: Date): WindowState {
  let closes: number | null = null;
  let nextOpen: number | null = null;
  const t = now.getTime();
  for (const w of windows) {
    const today = localDate(t, w.timeZone);
    // A window may have opened up to a week before (a 7-day length) and the next opens within 8 days.
    for (let offset = -8; offset <= 8; offset++) {
      const day = new Date(Date.UTC(today.y, today.m - 1, today.d + offset));
      if (!w.days.includes(day.getUTCDay())) continue;
      const start = zonedToInstant(
        day.getUTCFullYear(),
        day.getUTCMonth() + 1,
        day.getUTCDate(),
        Math.floor(w.startMinutes / 60),
        w.startMinutes % 60,
        w.timeZone,
      );
      const end = start + w.lengthSeconds * 1000;
      if (start <= t && t < end) closes = Math.max(closes ?? 0, end);
      if (start > t && (nextOpen === null || start < nextOpen)) nextOpen = start;
    }
  }
  return {
    inside: closes !== null,
    closes: closes === null ? null : new Date(closes),
    nextOpen: nextOpen === null ? null : new Date(nextOpen),
  };
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallClock(t: number, timeZone: string): { y: number; m: number; d: number; h: number; mi: number } {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(t)).map((p) => [p.type, p.value]));
  return {
    y: Number(parts.year),
    m: Number(parts.month),
    d: Number(parts.day),
    h: Number(parts.hour),
    mi: Number(parts.minute),
  };
}

function localDate(t: number, timeZone: string): { y: number; m: number; d: number } {
  return wallClock(t, timeZone);
}

/** Milliseconds the zone's wall clock is ahead of UTC at instant `t`. */
function offsetAt(t: number, timeZone: string): number {
  const w = wallClock(t, timeZone);
  return Date.UTC(w.y, w.m - 1, w.d, w.h, w.mi) - Math.floor(t / 60_000) * 60_000;
}

/** The instant the zone's wall clock reads y-m-d h:mi (a time skipped by a DST change maps just after it). */
function zonedToInstant(y: number, m: number, d: number, h: number, mi: number, timeZone: string): number {
  const wall = Date.UTC(y, m - 1, d, h, mi);
  const first = wall - offsetAt(wall, timeZone);
  return wall - offsetAt(first, timeZone);
}
