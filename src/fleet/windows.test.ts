import { describe, expect, it } from 'vitest';
import { type MaintenanceWindow, isTimeZone, windowState } from './windows.js';

const win = (days: number[], start: string, hours: number, timeZone = 'UTC'): MaintenanceWindow => {
  const [h, m] = start.split(':').map(Number) as [number, number];
  return { days, startMinutes: h * 60 + m, lengthSeconds: hours * 3600, timeZone };
};
const at = (iso: string) => new Date(iso);

describe('windowState', () => {
  // 2026-12-07 is a Monday.
  const monday22 = win([1], '22:00', 1);

  it('is inside from the start to just before the end, and names the next opening otherwise', () => {
    expect(windowState([monday22], at('2026-12-07T22:30:00Z'))).toEqual({
      inside: true,
      closes: at('2026-12-07T23:00:00Z'),
      nextOpen: at('2026-12-14T22:00:00Z'),
    });
    expect(windowState([monday22], at('2026-12-07T22:00:00Z')).inside).toBe(true);
    expect(windowState([monday22], at('2026-12-07T23:00:00Z'))).toEqual({
      inside: false,
      closes: null,
      nextOpen: at('2026-12-14T22:00:00Z'),
    });
    expect(windowState([monday22], at('2026-12-06T09:00:00Z')).nextOpen).toEqual(at('2026-12-07T22:00:00Z'));
  });

  it('spans midnight, takes the earliest of several windows, and has none without windows', () => {
    const saturdayNight = win([6], '23:00', 2);
    expect(windowState([saturdayNight], at('2026-12-06T00:30:00Z')).inside).toBe(true);
    expect(windowState([monday22, win([3], '04:00', 1)], at('2026-12-08T00:00:00Z')).nextOpen).toEqual(
      at('2026-12-09T04:00:00Z'),
    );
    expect(windowState([], at('2026-12-08T00:00:00Z'))).toEqual({ inside: false, closes: null, nextOpen: null });
  });

  it('follows the local clock of its time zone across daylight-saving changes', () => {
    const daily3 = win([0, 1, 2, 3, 4, 5, 6], '03:00', 1, 'Europe/Berlin');
    // Before the change 03:00 CET is 02:00 UTC; on 2026-03-29 clocks jump 02:00 → 03:00, so 03:00 CEST is 01:00 UTC.
    expect(windowState([daily3], at('2026-03-28T00:00:00Z')).nextOpen).toEqual(at('2026-03-28T02:00:00Z'));
    expect(windowState([daily3], at('2026-03-28T12:00:00Z')).nextOpen).toEqual(at('2026-03-29T01:00:00Z'));
    expect(windowState([win([1], '09:30', 1, 'America/New_York')], at('2026-12-07T14:45:00Z')).inside).toBe(true);
  });

  it('knows IANA zones', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });
});
