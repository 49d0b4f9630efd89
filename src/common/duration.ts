// Durations as users write them (`7d`, `3 days`, `90`): command-line options and config files.
import { UsageError } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  s: 1,
  sec: 1,
  second: 1,
  m: 60,
  min: 60,
  minute: 60,
  h: 3600,
  hour: 3600,
  d: 86400,
  day: 86400,
  w: 604800,
  week: 604800,
};

/** "3 days", "12h", "90 s", "7d" → seconds (≥ 0). */
export function parseDuration(text: string): number {
  const [, count, unitName] = /^\s*(\d{1,9})\s*([a-z]*?)s?\s*$/i.exec(text) ?? [];
  const unit = unitName === undefined ? undefined : UNITS[unitName.toLowerCase()];
  if (unit === undefined)
    throw new UsageError('E_USAGE', `cannot read '${text}' as a duration`, { hint: 'use e.g. "3 days", "12h", "30m"' });
  return Number(count) * unit;
}

/** parseDuration for an option that needs a duration above zero (`what` names it in the error). */
export function positiveDuration(what: string, text: string): number {
  const seconds = parseDuration(text);
  if (seconds <= 0) throw new UsageError('E_USAGE', `${what}: expected a duration above zero, like 7d, got '${text}'`);
  return seconds;
}
