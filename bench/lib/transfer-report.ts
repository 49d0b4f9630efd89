// bench/lib/transfer-report.ts — owns the presentation of transfer results: the table on stdout,
// the generated section of docs/benchmarks.md (between the bench:transfer markers, other content
// left intact) and the raw JSON in bench/results/.
import { writeJsonResults, writeSuiteSection } from './report.js';
import { TOOL_NAMES, type ToolName } from './tools.js';
import {
  TRANSFER_STEPS,
  transferRatios,
  type StepSummary,
  type TransferResult,
  type TransferStepId,
  type TransferTarget,
} from './transfer-model.js';
import { PENDING, backgroundLoadLine, fmt, timingCells, timingHeader } from './format.js';
import { markdownTable, textTable } from './table.js';
import { noisiestOutcome } from './model.js';

/** Steps shorter than this are left out of the noise estimate: one busy tick of another process dominates them. */
const NOISE_MIN_WALL_S = 1;

const SECTION_INTRO = `## Transfer: arbor vs ostree

Serving and pulling over HTTP, arbor and the real ostree side by side on the same trees. Each tool gets an
archive-mode server repo (v1, then v2, committed on branch \`bench\`; untimed setup) served as static files by a real
nginx on 127.0.0.1 (\`sendfile on\`, keep-alive), and a bare client repo:

- **e. static delta v1→v2**: \`static-delta generate --from V1 --to V2\` on the server; size is \`du -sb\` of its
  \`deltas/\` dir. **e2**: the summary update that publishes it (\`ostree summary -u\` / \`arbor summary --update\`);
- **f. object-by-object pull of v1** (\`pull --disable-static-deltas origin bench\` while the server's \`bench\` is v1)
  into a fresh bare repo;
- **g. pull of v2 with the delta** into the client of f, which has v1.

Bytes served are the response bodies nginx logged (\`$body_bytes_sent\`). Before each timed step the page cache is
dropped; GNU time measures the client only (nginx's CPU shows up as other load). After each arbor pull,
\`arbor fsck\` must pass (untimed). Run it as root: \`npm run bench -- --suite transfer --write-doc\`.

ostree 2022.7 (Debian 12) scans the new commit while its delta parts are still being applied and fetches the
objects not yet written as loose objects too (fixed upstream in 2023.7, ostree commit fc5aef6f), so its g moves
more bytes than its delta; see [bench/results/ostree-transfer-baseline.md](../bench/results/ostree-transfer-baseline.md).

`;

function bytesCell(s: StepSummary): string {
  if (s.bytes === null) return PENDING;
  return s.served ? `${fmt.size(s.bytes)} (${fmt.int(s.served.requests)} req)` : fmt.size(s.bytes);
}

/** Four cells: wall, cpu, RSS, bytes; a failure takes the first and blanks the rest. */
function toolCells(s: StepSummary | undefined): string[] {
  if (s === undefined) return [PENDING, PENDING, PENDING, PENDING];
  if (s.failure !== null) return [s.failure, '', '', ''];
  return [...timingCells(s.timing), bytesCell(s)];
}

function ratioCell(r: TransferResult, step: TransferStepId): string {
  const { wall, bytes, bytesWithFallback } = transferRatios(r.tools, step);
  if (wall === null && bytes === null) return PENDING;
  const parts = [
    wall === null ? null : `wall ${wall.toFixed(2)}×`,
    bytes === null ? null : `bytes ${bytes.toFixed(2)}×`,
    bytesWithFallback === null ? null : `bytes incl. fallbacks ${bytesWithFallback.toFixed(2)}×`,
  ];
  return parts.filter((p) => p !== null).join(', ');
}

function targetCell(targets: readonly TransferTarget[], step: TransferStepId): string {
  return targets
    .filter((t) => t.step === step)
    .map((t) => `${t.text}: ${t.value}${fmt.mark(t.met)}`)
    .join('; ');
}

function tableRows(r: TransferResult): string[][] {
  const header = [
    'step',
    ...timingHeader('ostree'),
    'ostree bytes',
    ...timingHeader('arbor'),
    'arbor bytes',
    'arbor/ostree',
    'target',
  ];
  const rows = TRANSFER_STEPS.map((s) => [
    `${s.id}. ${s.title}`,
    ...toolCells(r.tools.ostree?.summary[s.id]),
    ...toolCells(r.tools.arbor?.summary[s.id]),
    ratioCell(r, s.id),
    targetCell(r.targets, s.id),
  ]);
  return [header, ...rows];
}

function perTool(r: TransferResult, show: (name: ToolName) => string | null): string {
  return TOOL_NAMES.filter((n) => r.tools[n] !== undefined)
    .map((name) => `${name} ${show(name) ?? PENDING}`)
    .join('; ');
}

/** The timed step in which other processes (nginx included) used the largest share of the machine's CPU. */
function noiseLine(r: TransferResult): string {
  const worst = noisiestOutcome(r.tools, r.machine.nproc, NOISE_MIN_WALL_S);
  return backgroundLoadLine(worst, {
    step: 'a timed step',
    who: 'other processes, nginx included',
    none: `no timed step of ${NOISE_MIN_WALL_S} s or more`,
  });
}

function contextLines(r: TransferResult): string[] {
  const m = r.machine;
  const tree = (t: TransferResult['trees']['v1']): string =>
    `${fmt.int(t.entries)} entries, ${fmt.gb(t.apparentBytes)} apparent`;
  return [
    `Date: ${r.date}`,
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memTotalGiB} GiB RAM (free -g), Linux ${m.kernel}, scratch on ${m.scratchFs}`,
    `Tools: ${TOOL_NAMES.map((n) => r.tools[n]?.version ?? `${n} not run`).join('; ')}`,
    `Trees: v1 ${tree(r.trees.v1)}; v2 ${tree(r.trees.v2)}`,
    `Median of ${r.runs} run(s); page cache dropped before each timed step: ${r.cachesDropped ? 'yes' : 'NO (not permitted)'}`,
    noiseLine(r),
  ];
}

function findingLines(r: TransferResult, resultsFile: string): string[] {
  const s = (name: ToolName, step: TransferStepId): StepSummary | undefined => r.tools[name]?.summary[step];
  const requests =
    (step: TransferStepId) =>
    (name: ToolName): string | null => {
      const served = s(name, step)?.served;
      return served
        ? `${fmt.int(served.deltaRequests)} delta files (${fmt.size(served.deltaBodyBytes)}) + ` +
            `${fmt.int(served.objectRequests)} objects (${fmt.size(served.objectBodyBytes)}), ` +
            `${fmt.int(served.errorResponses)} error responses, ${fmt.int(served.bodyBytes)} body bytes in all`
        : null;
    };
  const delta = (name: ToolName): string | null => {
    const e = s(name, 'e');
    if (e?.bytes === null || e?.bytes === undefined) return null;
    const fallback =
      e.fallbackBytes === null
        ? ''
        : ` + ${fmt.size(e.fallbackBytes)} of fallback objects fetched loose = ` +
          `${fmt.size(e.bytes + e.fallbackBytes)}`;
    return `${fmt.int(e.deltaParts ?? 0)} parts, ${fmt.size(e.bytes)} in deltas/${fallback}`;
  };
  const setup = (name: ToolName): string | null => {
    const wall = r.tools[name]?.passes[0]?.setupWallS;
    return wall
      ? Object.entries(wall)
          .map(([k, v]) => `${k} ${fmt.s(v)} s`)
          .join(', ')
      : null;
  };
  return [
    `Delta (e): ${perTool(r, delta)}`,
    `Requests of f: ${perTool(r, requests('f'))}`,
    `Requests of g: ${perTool(r, requests('g'))}`,
    `Untimed setup, first run (caches warm): ${perTool(r, setup)}`,
    ...(r.problems.length > 0 ? [`PROBLEMS: ${r.problems.join('; ')}`] : []),
    `Raw results: ${resultsFile}`,
  ];
}

export function renderTransferText(r: TransferResult, resultsFile: string): string {
  return `${[...contextLines(r), '', textTable(tableRows(r)), '', ...findingLines(r, resultsFile)].join('\n')}\n`;
}

function renderSection(r: TransferResult, resultsFile: string): string {
  const bullets = (ls: readonly string[]): string => ls.map((l) => `- ${l}`).join('\n');
  return [bullets(contextLines(r)), markdownTable(tableRows(r)), bullets(findingLines(r, resultsFile))].join('\n\n');
}

/** (Re)writes the transfer section of docPath; appends a heading and the markers at the end when missing. */
export function writeTransferDoc(docPath: string, r: TransferResult, resultsFile: string): void {
  writeSuiteSection(docPath, 'transfer', renderSection(r, resultsFile), SECTION_INTRO);
}

/** Writes the raw results as resultsDir/transfer-<date>.json; returns the path. */
export function writeTransferResults(resultsDir: string, r: TransferResult): string {
  return writeJsonResults(resultsDir, 'transfer', r);
}
