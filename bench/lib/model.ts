// bench/lib/model.ts — owns the object-store benchmark's data model: the steps,
// raw and summarised results (medians over runs), the checkout correctness
// check, and the targets evaluated against the figures.
import type { Machine } from './host.js';
import type { Timing } from './proc.js';
import type { ToolName } from './tools.js';
import type { ObjectStats, TreeCount, TreeInfo } from './trees.js';

export type StepId = 'a' | 'b' | 'c' | 'd' | 's1' | 's2';

export const STEPS: readonly { id: StepId; title: string }[] = [
  { id: 'a', title: 'commit v1 into a fresh bare repo' },
  { id: 'b', title: 'hardlink checkout of v1' },
  { id: 'c', title: 're-commit of the hardlinked checkout' },
  { id: 'd', title: 'commit of v2 (fresh copy) on top of v1' },
  { id: 's1', title: 'commit of the small-file tree into a fresh bare repo' },
  { id: 's2', title: 'hardlink checkout of the small-file tree' },
];

type StepTimings = Record<StepId, Timing>;

/** One tool's run through steps a–d, s1 and s2. */
export interface Pass {
  run: number;
  timings: StepTimings;
  cachesDropped: boolean;
  checkout: TreeCount;
  /** What s2 checked out. */
  smallCheckout: TreeCount;
  /** Objects written by step d: files and bytes under objects/ after minus before. */
  newObjects: ObjectStats;
  /** d's floor: the fresh copy of v2 read cold, every file, in parallel (no tool involved). */
  coldReadV2: Timing;
}

export interface ToolSummary {
  median: StepTimings;
  newObjects: ObjectStats;
  /** Median wall of d / median wall of a. */
  commitV2OverV1: number;
  /** Median wall of reading the fresh v2 copy cold, and d's median wall over it. */
  coldReadV2: Timing;
  commitV2OverColdRead: number;
  peakRssMiB: number;
}

interface ToolResult {
  version: string;
  commands: Record<StepId, string[]>;
  passes: Pass[];
  summary: ToolSummary;
}

export type ToolResults = Partial<Record<ToolName, ToolResult>>;

export interface TargetResult {
  step: StepId | null;
  text: string;
  value: string;
  met: boolean | null;
}

export interface BenchResult {
  benchmark: 'object-store';
  date: string;
  machine: Machine;
  trees: { v1: TreeInfo; v2: TreeInfo; small: TreeInfo };
  runs: number;
  cachesDropped: boolean;
  checkoutProblems: string[];
  tools: ToolResults;
  targets: TargetResult[];
}

/** True when every step of every pass of every tool ran with the page cache dropped first. */
export function allCachesDropped(
  tools: Partial<Record<string, { readonly passes: readonly { readonly steps: object }[] }>>,
): boolean {
  return Object.values(tools).every((t) =>
    (t?.passes ?? []).every((p) =>
      Object.values(p.steps as Record<string, { readonly cachesDropped: boolean }>).every((s) => s.cachesDropped),
    ),
  );
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The median of each field over several timings of one step. */
export function medianTiming(ts: readonly Timing[]): Timing {
  const m = (k: keyof Timing): number => median(ts.map((t) => t[k]));
  return {
    wallS: m('wallS'),
    userS: m('userS'),
    sysS: m('sysS'),
    cpuS: m('cpuS'),
    maxRssMiB: m('maxRssMiB'),
    otherCpuS: m('otherCpuS'),
  };
}

/** Commands run one after the other as one step: wall and CPU summed, RSS the largest. */
export function sumTimings(ts: readonly Timing[]): Timing {
  const sum = (k: keyof Timing): number => ts.reduce((n, t) => n + t[k], 0);
  return {
    wallS: sum('wallS'),
    userS: sum('userS'),
    sysS: sum('sysS'),
    cpuS: sum('cpuS'),
    maxRssMiB: Math.max(...ts.map((t) => t.maxRssMiB)),
    otherCpuS: sum('otherCpuS'),
  };
}

export function summarize(passes: readonly Pass[]): ToolSummary {
  const step = (id: StepId): Timing => medianTiming(passes.map((p) => p.timings[id]));
  const med = Object.fromEntries(STEPS.map((s) => [s.id, step(s.id)])) as StepTimings;
  const coldReadV2 = medianTiming(passes.map((p) => p.coldReadV2));
  return {
    median: med,
    newObjects: {
      files: median(passes.map((p) => p.newObjects.files)),
      bytes: median(passes.map((p) => p.newObjects.bytes)),
    },
    commitV2OverV1: med.d.wallS / med.a.wallS,
    coldReadV2,
    commitV2OverColdRead: med.d.wallS / coldReadV2.wallS,
    peakRssMiB: Math.max(...passes.flatMap((p) => STEPS.map((s) => p.timings[s.id].maxRssMiB))),
  };
}

function sameCount(x: TreeCount, y: TreeCount): boolean {
  return x.files === y.files && x.dirs === y.dirs && x.symlinks === y.symlinks && x.other === y.other;
}

export function describeCount(c: TreeCount): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  return `${n(c.entries)} entries (${n(c.files)} files, ${n(c.dirs)} dirs, ${n(c.symlinks)} symlinks, ${n(c.other)} other)`;
}

/** Each checkout of step b must hold the same entries, by type, as v1, and each of s2 as the small-file tree. */
export function checkoutProblems(v1: TreeCount, small: TreeCount, tools: ToolResults): string[] {
  return Object.entries(tools).flatMap(([name, r]) =>
    r.passes.flatMap((p) => [
      ...(sameCount(p.checkout, v1)
        ? []
        : [`${name} run ${p.run}: checkout has ${describeCount(p.checkout)}, v1 has ${describeCount(v1)}`]),
      ...(sameCount(p.smallCheckout, small)
        ? []
        : [
            `${name} run ${p.run}: small-file checkout has ${describeCount(p.smallCheckout)}, the tree has ${describeCount(small)}`,
          ]),
    ]),
  );
}

export interface Noise {
  where: string;
  /** CPU used by other processes / (wall × nproc). */
  share: number;
}

/** The timed step during which other processes used the largest share of the machine's CPU. */
/**
 * Over every pass of every tool, the timed step of at least `minWallS` in which other processes
 * used the largest share of the machine's CPU; `label` names a tool in `where`.
 */
export function noisiestOutcome(
  tools: Readonly<
    Record<string, { passes: readonly { run: number; steps: Readonly<Record<string, { timing: Timing | null }>> }[] }>
  >,
  nproc: number,
  minWallS: number,
  label: (tool: string) => string = (tool) => tool,
): Noise | null {
  const shares = Object.entries(tools).flatMap(([name, t]) =>
    t.passes.flatMap((p) =>
      Object.entries(p.steps).flatMap(([step, o]) =>
        o.timing && o.timing.wallS >= minWallS
          ? [
              {
                where: `${label(name)} run ${p.run} step ${step}`,
                share: o.timing.otherCpuS / (o.timing.wallS * nproc),
              },
            ]
          : [],
      ),
    ),
  );
  return shares.reduce<Noise | null>((w, x) => (w === null || x.share > w.share ? x : w), null);
}

export function noisiestStep(tools: ToolResults, nproc: number): Noise | null {
  const all = Object.entries(tools).flatMap(([name, r]) =>
    r.passes.flatMap((p) =>
      STEPS.map((s) => {
        const t = p.timings[s.id];
        return { where: `${name} run ${p.run} step ${s.id}`, share: t.otherCpuS / (t.wallS * nproc) };
      }),
    ),
  );
  return all.reduce<Noise | null>((worst, n) => (worst === null || n.share > worst.share ? n : worst), null);
}

export function ratio(tools: ToolResults, step: StepId): number | null {
  const [o, a] = [tools.ostree, tools.arbor];
  return o && a ? a.summary.median[step].wallS / o.summary.median[step].wallS : null;
}

function target(
  step: StepId | null,
  text: string,
  value: number | null,
  ok: (v: number) => boolean,
  unit: string,
): TargetResult {
  if (value === null) return { step, text, value: 'pending', met: null };
  return { step, text, value: `${value.toFixed(2)}${unit}`, met: ok(value) };
}

export function evaluateTargets(tools: ToolResults): TargetResult[] {
  const arbor = tools.arbor?.summary;
  return [
    target('a', 'arbor/ostree ≤ 1× (aim 0.5×)', ratio(tools, 'a'), (r) => r <= 1, '×'),
    target('b', 'arbor/ostree ≤ 1×', ratio(tools, 'b'), (r) => r <= 1, '×'),
    target('c', 'arbor/ostree ≤ 1× (vs ostree --link-checkout-speedup)', ratio(tools, 'c'), (r) => r <= 1, '×'),
    target('d', 'arbor d/a < 0.3', arbor ? arbor.commitV2OverV1 : null, (r) => r < 0.3, '×'),
    target('d', 'arbor d ≤ 1.3× its floor', arbor ? arbor.commitV2OverColdRead : null, (r) => r <= 1.3, '×'),
    target('s1', 'arbor/ostree ≤ 0.6×', ratio(tools, 's1'), (r) => r <= 0.6, '×'),
    target('s2', 'arbor/ostree ≤ 0.8×', ratio(tools, 's2'), (r) => r <= 0.8, '×'),
    target(null, 'arbor peak RSS < 160 MiB', arbor ? arbor.peakRssMiB : null, (m) => m < 160, ' MiB'),
  ];
}
