// bench/lib/format.ts — owns how every benchmark writes its numbers (seconds, MiB, ratios, shares)
// and the lines every suite prints alike: a timed step's figures and the background-load verdict.
import type { Timing } from './proc.js';

/** A cell whose figure a later run fills in. */
export const PENDING = 'pending';
/** Above this share of the machine's CPU taken by other processes, a run's figures are called noisy. */
const NOISY_SHARE = 0.1;

/** Number formats of every benchmark table and log line. */
export const fmt = {
  s: (x: number): string => x.toFixed(2),
  ms: (x: number): string => x.toFixed(x < 10 ? 1 : 0),
  mib: (x: number): string => x.toFixed(0),
  int: (x: number): string => x.toLocaleString('en-US'),
  /** Bytes as decimal megabytes, as package sizes are quoted. */
  mb: (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`,
  /** Bytes as MiB with one decimal. */
  size: (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`,
  /** Bytes as decimal gigabytes, as apparent tree sizes are quoted. */
  gb: (bytes: number): string => `${(bytes / 1e9).toFixed(2)} GB`,
  ratio: (x: number | null | undefined): string => (x === null || x === undefined ? PENDING : `${x.toFixed(2)}×`),
  /** A share (0.25) as a percentage with `digits` decimals ("25 %"). */
  percent: (share: number, digits = 0): string => `${(share * 100).toFixed(digits)} %`,
  mark: (met: boolean | null): string => (met === null ? '' : met ? ' ✓' : ' ✗'),
};

/** One timed run as the logs show it: wall and CPU seconds, peak RSS. */
export const timingText = (t: Timing): string =>
  `${fmt.s(t.wallS)} s wall, ${fmt.s(t.cpuS)} s cpu, ${fmt.mib(t.maxRssMiB)} MiB RSS`;

/**
 * The background-load line under a results table: the largest share of the machine's CPU other
 * processes (WHO) used during one STEP, and whether that makes the figures noisy.
 */
export function backgroundLoadLine(
  worst: { readonly share: number; readonly where: string } | null,
  o: { readonly step: string; readonly who?: string; readonly none: string },
): string {
  if (worst === null) return `Background load: ${o.none}`;
  const verdict = worst.share > NOISY_SHARE ? ': figures are noisy, rerun on an idle machine' : '';
  return (
    `Background load${o.who ? ` (${o.who})` : ''}: ${o.who ? '' : 'other processes used '}at most ${fmt.percent(worst.share)} ` +
    `of the machine's CPU during ${o.step} (${worst.where})${verdict}`
  );
}

/** A timed step's table cells (wall s, CPU s, RSS MiB); pending when it has not run. */
export function timingCells(t: Timing | null | undefined): string[] {
  return t ? [fmt.s(t.wallS), fmt.s(t.cpuS), fmt.mib(t.maxRssMiB)] : [PENDING, PENDING, PENDING];
}

/** A step's cells: its timing, `failure` in the first cell when it failed, pending when it has not run. */
export function stepCells(
  s: { readonly timing: Timing | null; readonly failure?: string | null } | undefined,
): string[] {
  if (s !== undefined && s.timing === null) return [s.failure ?? 'failed', '', ''];
  return timingCells(s?.timing);
}

/** The header cells over timingCells for TOOL. */
export const timingHeader = (tool: string): string[] => [`${tool} wall s`, `${tool} cpu s`, `${tool} RSS MiB`];
