// What runs in the composed tree's sandbox: the packages' scriptlets and triggers as a fresh rpm
// install of the whole set would run them (planScriptlets: pure, rpm's order and arguments), and
// the treefile's postprocess scripts.
import { basename } from 'node:path';
import { ArborError, present } from '../common/errors.js';
import type { Transaction, TreeEditor } from '../repo/index.js';
import type { RpmFile, RpmPackage, RpmScript, RpmTrigger } from './rpm/index.js';
import { ScriptFlag } from './rpm/tags.js';
import { SANDBOX_SCRIPT_PATH, type SandboxOptions, type SandboxStep, runInTree } from './sandbox.js';
import { readTreefileInput } from './treefile-input.js';
import { evrSatisfies, parseEvr } from './solve/evr.js';

/** A package of the compose, in install order. */
export interface ComposePackage {
  /** name-[epoch:]version-release.arch, for reports and errors. */
  readonly nevra: string;
  readonly pkg: RpmPackage;
}

type ScriptletSlot =
  | '%pretrans'
  | '%pre'
  | '%post'
  | '%posttrans'
  | '%triggerprein'
  | '%triggerin'
  | '%filetriggerin'
  | '%transfiletriggerin';

/** One scriptlet of one package. */
export interface ScriptletRef {
  readonly nevra: string;
  readonly scriptlet: ScriptletSlot;
  /** Package and per-package file triggers: the package whose install set it off. */
  readonly setOffBy?: string;
}

/** A scriptlet to run, with the arguments and standard input rpm gives it. */
export interface PlannedScriptlet extends ScriptletRef {
  readonly script: RpmScript;
  /** $1 (and $2): counts of installed instances, as rpm passes them. */
  readonly args: readonly number[];
  /** File triggers: the matching paths, one per line. */
  readonly stdin?: string;
}

/** A scriptlet a compose never runs, and why. */
interface IgnoredScriptlet extends ScriptletRef {
  readonly reason: string;
}

export interface ScriptletPlan {
  readonly run: readonly PlannedScriptlet[];
  readonly ignored: readonly IgnoredScriptlet[];
}

export interface ScriptletReport {
  readonly ran: readonly ScriptletRef[];
  /** With `noScripts`: every scriptlet that would have run. */
  readonly skipped: readonly ScriptletRef[];
  readonly ignored: readonly IgnoredScriptlet[];
}

export interface ScriptletOptions extends SandboxOptions {
  /** Run nothing; the report lists what would have run as skipped. */
  readonly noScripts?: boolean;
  /** The hint a failing scriptlet's error carries (default: compose's). */
  readonly failureHint?: string;
}

/** rpm runs file triggers of priority ≥ this before %post, lower ones after (TRIGGER_PRIORITY_BOUND). */
const TRIGGER_PRIORITY_BOUND = 10000;
/** RPMTRIGGER_DEFAULT_PRIORITY: a file trigger without -P. */
const DEFAULT_TRIGGER_PRIORITY = 1000000;

/** "NEVRA %slot", plus what set a trigger off: the form commit metadata records. */
export function formatScriptletRef(ref: ScriptletRef): string {
  return `${ref.nevra} ${ref.scriptlet}${ref.setOffBy !== undefined ? ` (set off by ${ref.setOffBy})` : ''}`;
}

/** One trigger script with all its conditions (rpm keeps one header entry per name or prefix). */
interface TriggerGroup {
  readonly order: number;
  readonly entries: readonly RpmTrigger[];
  readonly script: RpmScript;
  readonly priority: number;
}

/**
 * A package's triggers of one type and slot, one group per script: rpm's TRIGGERINDEX (RpmTrigger's
 * `index`) ties header entries (sorted by name) to the script they run.
 */
function triggerGroups(pkg: RpmPackage, type: RpmTrigger['type'], when: RpmTrigger['when']): TriggerGroup[] {
  const groups = new Map<string, { order: number; entries: RpmTrigger[]; script: RpmScript; priority: number }>();
  pkg.triggers.forEach((trigger) => {
    if (trigger.type !== type || trigger.when !== when) return;
    const key = `#${trigger.index}`;
    const group = groups.get(key);
    if (group) group.entries.push(trigger);
    else
      groups.set(key, {
        order: trigger.index,
        entries: [trigger],
        script: trigger.script,
        priority: trigger.priority ?? DEFAULT_TRIGGER_PRIORITY,
      });
  });
  return [...groups.values()].sort((a, b) => a.order - b.order);
}

/** rpm's order of file triggers: priority high to low, then install order, then trigger index. */
const byPriority = <T extends { group: TriggerGroup; pkg: number }>(a: T, b: T): number =>
  b.group.priority - a.group.priority || a.pkg - b.pkg || a.group.order - b.group.order;

/** The directory part of a path with its trailing slash, as rpm's DIRNAMES index holds it. */
const dirnameOf = (path: string): string => path.slice(0, path.lastIndexOf('/') + 1);

/**
 * What a fresh install of `packages` (in this order, as one transaction) runs, in rpm's order with
 * rpm's arguments (lib/psm.cc rpmPackageInstall, lib/rpmtriggers.cc; checked against rpm 4.18 in
 * test/integration/sandbox.test.ts). For each package P:
 *   1. %triggerprein of installed packages set off by P, then P's own set off by installed ones;
 *   2. %pre of P ($1 = instances of P's name, P included);
 *   3. %filetriggerin of priority ≥ 10000 (rpm's TRIGGER_PRIORITY_BOUND; its docs say 100000):
 *      triggers of installed packages and P matching P's files (stdin: those files), by priority,
 *      install order, trigger; then P's own over files installed before P (rpm leaves P's own out
 *      there, so a trigger of P on P's files runs once with them, once with the others');
 *   4. %post of P; 5. %triggerin, as in 1; 6. the other %filetriggerin, as in 3.
 * Then every %posttrans, then every %transfiletriggerin over all files. A prefix matches as a plain
 * string prefix of a path; over installed packages rpm also requires one of the package's
 * directories to start with it, and so does this. Arguments are rpm 4.20's (file triggers get
 * $1 $2; 4.18 passed them only 0). Unlike rpm (and like rpm-ostree), every package's files are in
 * the tree before the first scriptlet runs. %pretrans is ignored: it is for the state before a
 * transaction, which a compose's tree no longer shows. Uninstall slots never fire on a fresh install.
 */
export function planScriptlets(packages: readonly ComposePackage[]): ScriptletPlan {
  const run: PlannedScriptlet[] = [];
  const ignored: IgnoredScriptlet[] = [];
  // Computed once per package: groups are compared by identity (a trigger runs once per install).
  const cache = new Map<RpmPackage, Map<string, TriggerGroup[]>>();
  const groupsOf = (pkg: RpmPackage, type: RpmTrigger['type'], when: RpmTrigger['when']): TriggerGroup[] => {
    let byKind = cache.get(pkg);
    if (!byKind) cache.set(pkg, (byKind = new Map()));
    let groups = byKind.get(`${type} ${when}`);
    if (!groups) byKind.set(`${type} ${when}`, (groups = triggerGroups(pkg, type, when)));
    return groups;
  };
  /** Installed instances of a name among the first `n` packages (rpmdbCountPackages). */
  const count = (name: string, n: number): number => packages.slice(0, n).filter((p) => p.pkg.name === name).length;
  const matches = (entry: RpmTrigger, source: RpmPackage): boolean =>
    entry.name === source.name &&
    (entry.cmp === undefined || entry.evr === undefined || evrSatisfies(source, entry.flags, parseEvr(entry.evr)));

  // Each target/source pair runs at most one script: that of the first entry (header order) that matches.
  const firstMatch = (target: RpmPackage, when: RpmTrigger['when'], source: RpmPackage): TriggerGroup | undefined => {
    const entry = target.triggers.find((e) => e.type === 'package' && e.when === when && matches(e, source));
    return entry && groupsOf(target, 'package', when).find((g) => g.entries.includes(entry));
  };

  // Files of the packages in the rpm database: those before `n`. Per prefix, the packages some
  // dirname of which starts with it (rpm's prefix index), then their files starting with it.
  const filesInDb = (group: TriggerGroup, n: number): { paths: string[]; first: string | undefined } => {
    const paths: string[] = [];
    let first: string | undefined;
    for (const { name: prefix } of group.entries) {
      for (const { pkg } of packages.slice(0, n)) {
        if (!pkg.files.some((f) => dirnameOf(f.path).startsWith(prefix))) continue;
        const hits = pkg.files.filter((f) => f.path.startsWith(prefix)).map((f) => f.path);
        if (hits.length > 0) first ??= pkg.name;
        paths.push(...hits);
      }
    }
    return { paths, first };
  };
  const filesOf = (group: TriggerGroup, files: readonly RpmFile[]): string[] =>
    group.entries.flatMap(({ name: prefix }) => files.filter((f) => f.path.startsWith(prefix)).map((f) => f.path));
  const stdinOf = (paths: readonly string[]): string => paths.map((p) => `${p}\n`).join('');

  // Package triggers of packages in the database set off by `source` (runTriggers), then the
  // source's own triggers set off by packages in the database (runImmedTriggers).
  // Most packages have no triggers: the loops over the database skip them (a whole OS is 300² pairs).
  const withTriggers = (type: RpmTrigger['type']): ComposePackage[] =>
    packages.filter((p) => p.pkg.triggers.some((t) => t.type === type));
  const withPackageTriggers = withTriggers('package');
  const withFileTriggers = withTriggers('file');
  const index = new Map(packages.map((p, i) => [p, i]));
  const before = (list: readonly ComposePackage[], n: number): ComposePackage[] =>
    list.filter((p) => (index.get(p) ?? n) < n);

  const packageTriggers = (source: ComposePackage, when: 'prein' | 'in', slot: ScriptletSlot, dbSize: number): void => {
    for (const target of before(withPackageTriggers, dbSize)) {
      const group = firstMatch(target.pkg, when, source.pkg);
      if (!group) continue;
      run.push({
        nevra: target.nevra,
        scriptlet: slot,
        setOffBy: source.nevra,
        script: group.script,
        args: [count(target.pkg.name, dbSize), count(source.pkg.name, dbSize)],
      });
    }
    const ran = new Set<TriggerGroup>();
    for (const entry of source.pkg.triggers.filter((e) => e.type === 'package' && e.when === when)) {
      const named = packages.slice(0, dbSize).filter((p) => p.pkg.name === entry.name);
      for (const other of named) {
        const group = firstMatch(source.pkg, when, other.pkg);
        if (!group || ran.has(group)) continue;
        ran.add(group);
        run.push({
          nevra: source.nevra,
          scriptlet: slot,
          setOffBy: other.nevra,
          script: group.script,
          args: [count(source.pkg.name, dbSize), named.length],
        });
      }
    }
  };

  // %filetriggerin of one priority class after package i's files are in (runFileTriggers, then runImmedFileTriggers).
  const fileTriggers = (q: ComposePackage, i: number, high: boolean): void => {
    const inClass = (g: TriggerGroup): boolean => g.priority >= TRIGGER_PRIORITY_BOUND === high;
    const setOff: { group: TriggerGroup; pkg: number; target: ComposePackage }[] = [];
    for (const target of before(withFileTriggers, i + 1)) {
      const t = index.get(target) ?? 0;
      for (const group of groupsOf(target.pkg, 'file', 'in')) {
        if (inClass(group) && filesOf(group, q.pkg.files).length > 0) setOff.push({ group, pkg: t, target });
      }
    }
    for (const { group, target } of setOff.sort(byPriority)) {
      run.push({
        nevra: target.nevra,
        scriptlet: '%filetriggerin',
        setOffBy: q.nevra,
        script: group.script,
        args: [count(target.pkg.name, i + 1), count(q.pkg.name, i) + 1],
        stdin: stdinOf(filesOf(group, q.pkg.files)),
      });
    }
    // Its own triggers against the files already installed: rpm 4.18 and later leave out the
    // package's own files here (their file states are set only later), which the step above covered.
    for (const group of groupsOf(q.pkg, 'file', 'in')
      .filter(inClass)
      .sort((a, b) => b.priority - a.priority || a.order - b.order)) {
      const { paths, first } = filesInDb(group, i);
      if (paths.length === 0) continue;
      run.push({
        nevra: q.nevra,
        scriptlet: '%filetriggerin',
        script: group.script,
        args: [count(q.pkg.name, i) + 1, count(present(first, 'the first package with a matching file'), i + 1)],
        stdin: stdinOf(paths),
      });
    }
  };

  packages.forEach(({ nevra, pkg }) => {
    if (pkg.scripts.pretrans)
      ignored.push({
        nevra,
        scriptlet: '%pretrans',
        reason: 'runs before a transaction unpacks anything, and a compose unpacks every package first',
      });
  });
  packages.forEach((p, i) => {
    const { nevra, pkg } = p;
    const arg = count(pkg.name, i) + 1;
    packageTriggers(p, 'prein', '%triggerprein', i);
    if (pkg.scripts.prein) run.push({ nevra, scriptlet: '%pre', script: pkg.scripts.prein, args: [arg] });
    fileTriggers(p, i, true);
    if (pkg.scripts.postin) run.push({ nevra, scriptlet: '%post', script: pkg.scripts.postin, args: [arg] });
    packageTriggers(p, 'in', '%triggerin', i + 1);
    fileTriggers(p, i, false);
  });
  packages.forEach(({ nevra, pkg }) => {
    if (pkg.scripts.posttrans)
      run.push({
        nevra,
        scriptlet: '%posttrans',
        script: pkg.scripts.posttrans,
        args: [count(pkg.name, packages.length)],
      });
  });
  // rpm documents no priority order across packages for these; within one package, high first.
  packages.forEach(({ nevra, pkg }) => {
    for (const group of [...groupsOf(pkg, 'transfile', 'in')].sort(
      (a, b) => b.priority - a.priority || a.order - b.order,
    )) {
      const { paths } = filesInDb(group, packages.length);
      if (paths.length === 0) continue;
      run.push({
        nevra,
        scriptlet: '%transfiletriggerin',
        script: group.script,
        args: [count(pkg.name, packages.length)],
        stdin: stdinOf(paths),
      });
    }
  });
  return { run, ignored };
}

/** "%post of 'foo-1-1.noarch'" and, for a trigger, what set it off. */
function labelOf(ref: ScriptletRef): string {
  return `${ref.scriptlet} of '${ref.nevra}'${ref.setOffBy !== undefined ? ` (set off by '${ref.setOffBy}')` : ''}`;
}

/** A scriptlet as rpm execs it: interpreter (default /bin/sh), then the body's file and the arguments. */
function stepOf(planned: PlannedScriptlet): SandboxStep {
  const label = labelOf(planned);
  const interpreter = planned.script.interpreter.length > 0 ? planned.script.interpreter : ['/bin/sh'];
  const hint = 'compose with --no-scripts to run none (each is recorded as skipped in the commit)';
  if (interpreter[0] === '<lua>') {
    throw new ArborError(
      'E_SCRIPTLET_UNSUPPORTED',
      `${label} is a Lua scriptlet (-p <lua>), which only rpm's embedded interpreter can run`,
      { hint },
    );
  }
  if ((planned.script.flags & (ScriptFlag.Expand | ScriptFlag.QFormat)) !== 0) {
    throw new ArborError(
      'E_SCRIPTLET_UNSUPPORTED',
      `${label} asks rpm to expand macros or query formats in its body when it runs (-e, -q)`,
      { hint },
    );
  }
  // rpm passes the script file and the arguments only when there is a body: `%post -p /sbin/ldconfig` gets none.
  const hasBody = planned.script.body !== '';
  return {
    label,
    argv: hasBody ? [...interpreter, SANDBOX_SCRIPT_PATH, ...planned.args.map(String)] : [...interpreter],
    script: hasBody ? planned.script.body : undefined,
    stdin: planned.stdin,
    failureCode: 'E_SCRIPTLET_FAILED',
    failureHint:
      'a compose fails on any failing scriptlet (plain rpm only warns for %post); fix the package, or compose with --no-scripts',
  };
}

/**
 * Runs the packages' scriptlets (planScriptlets) in the tree's sandbox and applies their changes to
 * `edit`. Every failure fails the compose, %post's too (plain rpm only warns for those), as in
 * rpm-ostree: a tree whose scriptlets half ran is not one to boot.
 */
export async function runScriptlets(
  tx: Transaction,
  edit: TreeEditor,
  packages: readonly ComposePackage[],
  options: ScriptletOptions = {},
): Promise<ScriptletReport> {
  const plan = planScriptlets(packages);
  const refs = plan.run.map(
    ({ nevra, scriptlet, setOffBy }): ScriptletRef => ({
      nevra,
      scriptlet,
      ...(setOffBy !== undefined && { setOffBy }),
    }),
  );
  if (options.noScripts) return { ran: [], skipped: refs, ignored: plan.ignored };
  const hint = options.failureHint;
  const steps = plan.run.map((p) => (hint === undefined ? stepOf(p) : { ...stepOf(p), failureHint: hint }));
  await runInTree(tx, edit, steps, options);
  return { ran: refs, skipped: [], ignored: plan.ignored };
}

/** The treefile's postprocess scripts: inline ones first, then the script file (rpm-ostree's order). */
export interface PostprocessScripts {
  readonly postprocess: readonly string[];
  /** A host path, or null. */
  readonly postprocessScript: string | null;
}

/**
 * Runs the postprocess scripts in the tree's sandbox, each exec'd from a file (its `#!` line picks
 * the interpreter from the tree; none means /bin/sh); returns their labels in order.
 */
export async function runPostprocessScripts(
  tx: Transaction,
  edit: TreeEditor,
  scripts: PostprocessScripts,
  options: SandboxOptions = {},
): Promise<string[]> {
  const failureHint = 'postprocess scripts run with the tree as / and no network; a failing one fails the compose';
  const steps: SandboxStep[] = scripts.postprocess.map((script, i) => ({
    label: `postprocess script ${i + 1}`,
    argv: [SANDBOX_SCRIPT_PATH],
    script,
    failureCode: 'E_POSTPROCESS_FAILED',
    failureHint,
  }));
  if (scripts.postprocessScript !== null) {
    const script = readTreefileInput(scripts.postprocessScript, `postprocess-script '${scripts.postprocessScript}'`);
    steps.push({
      label: `postprocess-script '${basename(scripts.postprocessScript)}'`,
      argv: [SANDBOX_SCRIPT_PATH],
      script,
      failureCode: 'E_POSTPROCESS_FAILED',
      failureHint,
    });
  }
  await runInTree(tx, edit, steps, options);
  return steps.map((s) => s.label);
}
