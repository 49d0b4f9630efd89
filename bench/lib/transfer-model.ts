// bench/lib/transfer-model.ts — owns the transfer benchmark's data model: its steps, the outcome
// of a step (timing, bytes, or the failure that replaced them), per-tool medians over runs, and the
// transfer targets evaluated against the figures.
import type { Machine } from './host.js';
import { median, medianTiming } from './model.js';
import type { Timing } from './proc.js';
import type { ToolName } from './tools.js';
import type { TreeInfo } from './trees.js';

export type TransferStepId = 'e' | 'e2' | 'f' | 'g';

/** Table order; the harness runs f first (the server holds only v1 then), then e, e2, g. */
export const TRANSFER_STEPS: readonly { id: TransferStepId; title: string; bytes: string }[] = [
  { id: 'e', title: 'static delta v1→v2: generate', bytes: 'delta size (du -sb deltas/)' },
  { id: 'e2', title: 'summary update after the delta', bytes: 'summary file size' },
  { id: 'f', title: 'HTTP pull of v1, object by object, into a fresh bare repo', bytes: 'response bodies served' },
  { id: 'g', title: 'HTTP pull of v2 with the delta into the repo of f', bytes: 'response bodies served' },
];

/** What nginx's access log says a pull fetched. */
export interface Served {
  requests: number;
  /** Sum of `$body_bytes_sent`. */
  bodyBytes: number;
  /** Sum of `$bytes_sent` (bodies and response heads). */
  bytes: number;
  /** Requests under /deltas/ (superblocks and parts). */
  deltaRequests: number;
  deltaBodyBytes: number;
  /** Requests under /objects/. */
  objectRequests: number;
  objectBodyBytes: number;
  /** Responses with status ≥ 400 (probes of optional files such as summary.sig count here). */
  errorResponses: number;
}

export interface StepOutcome {
  /** null when the step failed or did not run. */
  timing: Timing | null;
  cachesDropped: boolean;
  /** `failed: <first stderr line>` or `not run: <why>`; null on success. */
  failure: string | null;
  /** See TRANSFER_STEPS[].bytes. */
  bytes: number | null;
  served?: Served;
  /** e: files in the deltas dir other than superblocks. */
  deltaParts?: number;
  /**
   * e: bytes of the objects the delta leaves for the client to fetch loose (ostree's "fallback"
   * objects, `static-delta show`: Total Fallback Size); absent when the tool does not say.
   */
  fallbackBytes?: number;
}

export interface TransferPass {
  run: number;
  steps: Record<TransferStepId, StepOutcome>;
  /** Wall seconds of untimed setup commands (page cache not dropped), by label. */
  setupWallS: Record<string, number>;
}

export interface StepSummary {
  timing: Timing | null;
  bytes: number | null;
  failure: string | null;
  served: Served | null;
  deltaParts: number | null;
  fallbackBytes: number | null;
}

interface TransferToolResult {
  version: string;
  commands: Record<TransferStepId, string[]>;
  passes: TransferPass[];
  summary: Record<TransferStepId, StepSummary>;
}

export type TransferToolResults = Partial<Record<ToolName, TransferToolResult>>;

export interface TransferTarget {
  step: TransferStepId;
  text: string;
  value: string;
  met: boolean | null;
}

export interface TransferResult {
  benchmark: 'transfer';
  date: string;
  machine: Machine;
  trees: { v1: TreeInfo; v2: TreeInfo };
  runs: number;
  cachesDropped: boolean;
  tools: TransferToolResults;
  targets: TransferTarget[];
  /** Things a reader must know: a pull that did not use the delta, a failed fsck. */
  problems: string[];
}

export const notRun = (why: string): StepOutcome => ({
  timing: null,
  cachesDropped: true,
  failure: `not run: ${why}`,
  bytes: null,
});

function medianOf<T>(xs: readonly T[], pick: (x: T) => number): number {
  return median(xs.map(pick));
}

function medianServed(ss: readonly Served[]): Served {
  const m = (k: keyof Served): number => medianOf(ss, (s) => s[k]);
  return {
    requests: m('requests'),
    bodyBytes: m('bodyBytes'),
    bytes: m('bytes'),
    deltaRequests: m('deltaRequests'),
    deltaBodyBytes: m('deltaBodyBytes'),
    objectRequests: m('objectRequests'),
    objectBodyBytes: m('objectBodyBytes'),
    errorResponses: m('errorResponses'),
  };
}

/** Medians over the passes; one failed pass makes the step failed, with the first failure's text. */
export function summarizeTransfer(passes: readonly TransferPass[]): Record<TransferStepId, StepSummary> {
  const one = (id: TransferStepId): StepSummary => {
    const outcomes = passes.map((p) => p.steps[id]);
    const failure = outcomes.find((o) => o.failure !== null)?.failure ?? null;
    if (failure !== null || outcomes.length === 0) {
      return { timing: null, bytes: null, failure, served: null, deltaParts: null, fallbackBytes: null };
    }
    const served = outcomes.flatMap((o) => (o.served ? [o.served] : []));
    const parts = outcomes.flatMap((o) => (o.deltaParts === undefined ? [] : [o.deltaParts]));
    const fallback = outcomes.flatMap((o) => (o.fallbackBytes === undefined ? [] : [o.fallbackBytes]));
    return {
      timing: medianTiming(outcomes.map((o) => o.timing!)),
      bytes: outcomes.every((o) => o.bytes !== null) ? medianOf(outcomes, (o) => o.bytes!) : null,
      failure: null,
      served: served.length === outcomes.length ? medianServed(served) : null,
      deltaParts: parts.length === outcomes.length ? median(parts) : null,
      fallbackBytes: fallback.length === outcomes.length ? median(fallback) : null,
    };
  };
  return { e: one('e'), e2: one('e2'), f: one('f'), g: one('g') };
}

export interface Ratios {
  wall: number | null;
  bytes: number | null;
  /** e only: arbor's delta (plus its fallbacks, if it reports any) / ostree's delta plus its fallback objects. */
  bytesWithFallback: number | null;
}

/** arbor / ostree for one step, null where either side is missing. */
export function transferRatios(tools: TransferToolResults, step: TransferStepId): Ratios {
  const o = tools.ostree?.summary[step];
  const a = tools.arbor?.summary[step];
  const div = (x: number | null | undefined, y: number | null | undefined): number | null =>
    x === null || x === undefined || y === null || y === undefined || y === 0 ? null : x / y;
  const withFallback = (s: StepSummary | undefined): number | null =>
    s?.bytes === null || s?.bytes === undefined ? null : s.bytes + (s.fallbackBytes ?? 0);
  return {
    wall: div(a?.timing?.wallS, o?.timing?.wallS),
    bytes: div(a?.bytes, o?.bytes),
    bytesWithFallback: step === 'e' && o?.fallbackBytes ? div(withFallback(a), withFallback(o)) : null,
  };
}

function target(
  step: TransferStepId,
  text: string,
  value: number | null,
  limit: number,
  failure: string | null,
): TransferTarget {
  // The failure text itself is in the arbor cells of the row.
  if (value === null)
    return { step, text, value: failure?.split(':', 1)[0] ?? 'pending', met: failure === null ? null : false };
  return { step, text, value: `${value.toFixed(2)}×`, met: value <= limit };
}

/** The performance targets of pull and serving. */
export function evaluateTransferTargets(tools: TransferToolResults): TransferTarget[] {
  const failure = (step: TransferStepId): string | null => tools.arbor?.summary[step].failure ?? null;
  return [
    target('e', 'delta size arbor/ostree ≤ 0.7×', transferRatios(tools, 'e').bytes, 0.7, failure('e')),
    target('e', 'generation wall arbor/ostree ≤ 1×', transferRatios(tools, 'e').wall, 1, failure('e')),
    target('f', 'wall arbor/ostree ≤ 1×', transferRatios(tools, 'f').wall, 1, failure('f')),
    target('g', 'wall arbor/ostree ≤ 1×', transferRatios(tools, 'g').wall, 1, failure('g')),
  ];
}

/** Pulls of g that fetched no delta part, and pulls of f that fetched one. */
export function transferProblems(tools: TransferToolResults): string[] {
  return Object.entries(tools).flatMap(([name, r]) =>
    r.passes.flatMap((p) => {
      const problems: string[] = [];
      const { f, g } = p.steps;
      if (g.served && g.failure === null && g.served.deltaRequests === 0)
        problems.push(`${name} run ${p.run}: g fetched no delta (object-by-object fallback)`);
      if (f.served && f.failure === null && f.served.deltaRequests > 0)
        problems.push(
          `${name} run ${p.run}: f fetched ${f.served.deltaRequests} delta files despite --disable-static-deltas`,
        );
      return problems;
    }),
  );
}
