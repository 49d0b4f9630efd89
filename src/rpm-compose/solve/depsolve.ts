// Dependency resolution for a fresh install: which packages of the universe a request installs.
// Pure (the universe is loaded by universe.ts). Its choices follow dnf/libsolv's policy closely
// enough that tests check it against dnf itself: the best architecture, then the newest version of
// each name, providers recommended by chosen packages first, then names in byte order; a request
// for a name another package obsoletes installs the obsoleting package; weak dependencies
// (Recommends, Supplements) are added after the hard ones whenever they can be, Suggests and
// Enhances never. Where a choice fails further down, the search backtracks to the next
// alternative (a fresh install has no installed packages to keep, so a depth-first search with
// undo is enough); only when no alternative is left does it fail, naming the request and the
// chain of packages that led to the dependency nothing can satisfy. See docs/compose.md.
import { ArborError, present } from '../../common/errors.js';
import type { RepoDependency } from '../repodata/index.js';
import { isRichDep, parseRichDep, type RichDep } from '../rpm/rich-deps.js';
import { Sense } from '../rpm/tags.js';
import { type EvrLike, compareEvr, evrOverlap, parseEvr } from './evr.js';
import type { Candidate, Universe } from './universe.js';

export interface SolveRequest {
  /** NAME, NAME-VERSION[-RELEASE][.ARCH], NAME.ARCH, a capability (optionally `CAP OP EVR`) or a path. */
  readonly packages: readonly string[];
  /** Names (globs with * and ?) never installed. */
  readonly exclude?: readonly string[];
  /** Recommends and Supplements (default true). */
  readonly installWeakDeps?: boolean;
  /** The target architecture (default x86_64). */
  readonly arch?: string;
  /**
   * The repository name of candidates installed before this request (layering's base). As libsolv
   * by default, their Recommends are not followed and a package whose Supplements one of them
   * matches is not added: what is missing of those was left out when they were installed.
   */
  readonly installedRepo?: string;
}

export interface SolveResult {
  /** In install order: what a package requires comes before it (Requires(pre) first). */
  readonly packages: readonly Candidate[];
  /** Why each package is in: requested, required by, recommended by, supplements. */
  readonly why: ReadonlyMap<Candidate, string>;
}

/** Compatible architectures, best first (rpm's arch_compat; noarch goes everywhere). */
const ARCH_POLICIES: Readonly<Record<string, readonly string[]>> = {
  x86_64: ['x86_64', 'amd64', 'ia32e', 'athlon', 'i686', 'i586', 'i486', 'i386'],
  i686: ['i686', 'i586', 'i486', 'i386'],
  aarch64: ['aarch64'],
  ppc64le: ['ppc64le'],
  s390x: ['s390x'],
  riscv64: ['riscv64'],
};

/** Past this many decisions the request is called too tangled rather than searched forever. */
const MAX_STEPS = 200_000;

interface Dep {
  readonly name: string;
  readonly flags: number;
  readonly evr: EvrLike | null;
  readonly text: string;
}

type Expr =
  | { readonly op: 'dep'; readonly dep: Dep }
  | { readonly op: 'and' | 'or' | 'with' | 'without'; readonly args: readonly Expr[] }
  | { readonly op: 'if' | 'unless'; readonly then: Expr; readonly cond: Expr; readonly else?: Expr };

const FLAG_BITS: Record<string, number> = {
  EQ: Sense.Equal,
  LT: Sense.Less,
  GT: Sense.Greater,
  LE: Sense.Less | Sense.Equal,
  GE: Sense.Greater | Sense.Equal,
};
const CMP_BITS: Record<string, number> = {
  '=': Sense.Equal,
  '==': Sense.Equal,
  '<': Sense.Less,
  '>': Sense.Greater,
  '<=': Sense.Less | Sense.Equal,
  '>=': Sense.Greater | Sense.Equal,
};
const FLAG_TEXT: Record<string, string> = { EQ: '=', LT: '<', GT: '>', LE: '<=', GE: '>=' };

function depOf(d: RepoDependency): Dep {
  if (d.flags === null || d.ver === null) return { name: d.name, flags: 0, evr: null, text: d.name };
  const evr = { epoch: d.epoch, version: d.ver, release: d.rel };
  const evrText = `${d.epoch ? `${d.epoch}:` : ''}${d.ver}${d.rel !== null ? `-${d.rel}` : ''}`;
  return { name: d.name, flags: FLAG_BITS[d.flags] ?? 0, evr, text: `${d.name} ${FLAG_TEXT[d.flags]} ${evrText}` };
}

function exprOf(rich: RichDep): Expr {
  switch (rich.op) {
    case 'dep': {
      const text = rich.cmp ? `${rich.name} ${rich.cmp} ${rich.evr}` : rich.name;
      return {
        op: 'dep',
        dep: {
          name: rich.name,
          flags: rich.cmp ? (CMP_BITS[rich.cmp] ?? 0) : 0,
          evr: rich.cmp && rich.evr ? parseEvr(rich.evr) : null,
          text,
        },
      };
    }
    case 'if':
    case 'unless':
      return {
        op: rich.op,
        then: exprOf(rich.then),
        cond: exprOf(rich.cond),
        ...(rich.else ? { else: exprOf(rich.else) } : {}),
      };
    default:
      return { op: rich.op, args: rich.args.map(exprOf) };
  }
}

/** A dependency of the repository records as an expression (rich dependencies parsed). */
function exprOfDependency(d: RepoDependency): Expr {
  return isRichDep(d.name) ? exprOf(parseRichDep(d.name)) : { op: 'dep', dep: depOf(d) };
}

const globRegExp = (glob: string): RegExp =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/** What is still to do: a request, or a dependency of a chosen package. */
type Obligation =
  | { readonly kind: 'job'; readonly spec: string; readonly alts: readonly Candidate[] }
  | {
      readonly kind: 'dep';
      readonly from: Candidate;
      readonly expr: Expr;
      readonly text: string;
      readonly verb: 'requires' | 'recommends' | 'supplements';
    };

interface Choice {
  readonly at: number;
  readonly alts: readonly Candidate[];
  next: number;
  readonly installedMark: number;
  readonly agendaLength: number;
}

interface Failure {
  readonly ob: Obligation;
  readonly problem: string;
  /** The request the failing package was chosen for, and the chain up to it, as it was then. */
  readonly request: string | null;
  readonly chain: readonly string[];
}

/** Resolves a request against a universe (see the module comment). */
export function solve(universe: Universe, request: SolveRequest): SolveResult {
  return new Solver(universe, request).run();
}

class Solver {
  readonly #u: Universe;
  readonly #weak: boolean;
  readonly #installedRepo: string | undefined;
  readonly #archRank: ReadonlyMap<string, number>;
  readonly #excluded: (name: string) => boolean;
  readonly #specs: readonly string[];
  readonly #provides = new Map<Candidate, Map<string, Dep[]>>();
  readonly #exprs = new Map<Candidate, Partial<Record<'requires' | 'recommends' | 'supplements', Obligation[]>>>();
  /** Installed packages, in the order chosen; `#byName` mirrors it. */
  readonly #installed: Candidate[] = [];
  readonly #byName = new Map<string, Candidate>();
  readonly #why = new Map<Candidate, { text: string; parent: Candidate | null }>();
  #steps = 0;
  #firstFailure: Failure | null = null;

  constructor(universe: Universe, request: SolveRequest) {
    this.#u = universe;
    this.#weak = request.installWeakDeps ?? true;
    this.#installedRepo = request.installedRepo;
    const arch = request.arch ?? 'x86_64';
    const policy = ARCH_POLICIES[arch] ?? [arch];
    this.#archRank = new Map([...policy.map((a, i) => [a, i] as const), ['noarch', 0]]);
    const patterns = (request.exclude ?? []).map(globRegExp);
    this.#excluded = (name) => patterns.some((p) => p.test(name));
    this.#specs = request.packages;
  }

  run(): SolveResult {
    const jobs: Obligation[] = this.#specs.map((spec) => ({ kind: 'job', spec, alts: this.#jobAlternatives(spec) }));
    if (!this.#achieve(jobs)) throw this.#error();
    if (this.#weak) this.#addWeakDependencies();
    const why = new Map<Candidate, string>();
    for (const c of this.#installed) why.set(c, this.#why.get(c)?.text ?? '');
    return { packages: this.#installOrder(), why };
  }

  // ---- what a package provides, requires, conflicts with ----

  #allowed(c: Candidate): boolean {
    return this.#archRank.has(c.pkg.arch) && !this.#excluded(c.pkg.name);
  }

  #providesOf(c: Candidate): Map<string, Dep[]> {
    let map = this.#provides.get(c);
    if (map === undefined) {
      map = new Map();
      const self: Dep = { name: c.pkg.name, flags: Sense.Equal, evr: c.pkg, text: c.pkg.name };
      map.set(c.pkg.name, [self]);
      for (const p of c.pkg.dependencies.provides) {
        const dep = depOf(p);
        const list = map.get(dep.name);
        if (list) list.push(dep);
        else map.set(dep.name, [dep]);
      }
      this.#provides.set(c, map);
    }
    return map;
  }

  #matches(c: Candidate, dep: Dep): boolean {
    if (dep.name.startsWith('/') && c.files.has(dep.name)) return true;
    const provided = this.#providesOf(c).get(dep.name);
    if (!provided) return false;
    const { evr } = dep;
    if (evr === null) return true;
    return provided.some((p) => p.evr === null || evrOverlap(p.evr, p.flags, evr, dep.flags));
  }

  /** Obsoletes match package names and versions, not provides (rpm ≥ 4.9, libsolv's default). */
  #obsoletes(by: Candidate, c: Candidate): boolean {
    return by.pkg.dependencies.obsoletes.some((o) => {
      if (o.name !== c.pkg.name) return false;
      const dep = depOf(o);
      return dep.evr === null || evrOverlap(c.pkg, Sense.Equal, dep.evr, dep.flags);
    });
  }

  #depsOf(c: Candidate, verb: 'requires' | 'recommends' | 'supplements'): Obligation[] {
    let cached = this.#exprs.get(c);
    if (cached === undefined) {
      cached = {};
      this.#exprs.set(c, cached);
    }
    const got = cached[verb];
    if (got) return got;
    const list: Obligation[] = [];
    for (const d of c.pkg.dependencies[verb]) {
      if (d.name.startsWith('rpmlib(')) continue;
      list.push({
        kind: 'dep',
        from: c,
        expr: exprOfDependency(d),
        text: d.name.startsWith('(') ? d.name : depOf(d).text,
        verb,
      });
    }
    // Requires(pre) first: what a scriptlet needs is chosen before the rest.
    if (verb === 'requires') {
      const pre = new Set(c.pkg.dependencies.requires.filter((d) => d.pre).map((d) => d.name));
      list.sort(
        (a, b) => Number(pre.has((b as { text: string }).text)) - Number(pre.has((a as { text: string }).text)),
      );
    }
    cached[verb] = list;
    return list;
  }

  #conflictsOf(c: Candidate): Expr[] {
    return c.pkg.dependencies.conflicts.map(exprOfDependency);
  }

  // ---- the installed set ----

  #install(c: Candidate, why: string, parent: Candidate | null): void {
    this.#installed.push(c);
    this.#byName.set(c.pkg.name, c);
    this.#why.set(c, { text: why, parent });
  }

  #undoTo(mark: number): void {
    for (const c of this.#installed.splice(mark)) {
      this.#byName.delete(c.pkg.name);
      this.#why.delete(c);
    }
  }

  #isInstalled(c: Candidate): boolean {
    return this.#byName.get(c.pkg.name) === c;
  }

  /** Whether some installed package (or `extra`) satisfies a simple dependency. */
  #satisfiedDep(dep: Dep, extra?: Candidate): boolean {
    if (extra && this.#matches(extra, dep)) return true;
    const check = (list: readonly Candidate[] | undefined): boolean =>
      list?.some((c) => this.#isInstalled(c) && this.#matches(c, dep)) ?? false;
    return check(this.#u.byProvide.get(dep.name)) || (dep.name.startsWith('/') && check(this.#u.byFile.get(dep.name)));
  }

  #satisfied(e: Expr, extra?: Candidate): boolean {
    switch (e.op) {
      case 'dep':
        return this.#satisfiedDep(e.dep, extra);
      case 'and':
        return e.args.every((a) => this.#satisfied(a, extra));
      case 'or':
        return e.args.some((a) => this.#satisfied(a, extra));
      case 'if':
        return this.#satisfied(e.cond, extra)
          ? this.#satisfied(e.then, extra)
          : e.else === undefined || this.#satisfied(e.else, extra);
      case 'unless':
        return this.#satisfied(e.cond, extra)
          ? e.else === undefined || this.#satisfied(e.else, extra)
          : this.#satisfied(e.then, extra);
      case 'with':
      case 'without': {
        const pool = [...this.#installed, ...(extra ? [extra] : [])];
        return pool.some((c) => this.#packageMatches(c, e));
      }
    }
  }

  /** For `with`/`without`: one package satisfying the whole expression by itself. */
  #packageMatches(c: Candidate, e: Expr): boolean {
    switch (e.op) {
      case 'dep':
        return this.#matches(c, e.dep);
      case 'with':
      case 'and':
        return e.args.every((a) => this.#packageMatches(c, a));
      case 'or':
        return e.args.some((a) => this.#packageMatches(c, a));
      case 'without':
        return (
          this.#packageMatches(c, present(e.args[0], "the left side of 'without'")) &&
          !this.#packageMatches(c, present(e.args[1], "the right side of 'without'"))
        );
      default:
        return false;
    }
  }

  /** Why `c` cannot join the installed set, or null when it can. */
  #conflict(c: Candidate): string | null {
    const same = this.#byName.get(c.pkg.name);
    if (same !== undefined) return same === c ? 'it is already chosen' : `${same.nevra} is already chosen`;
    for (const e of this.#conflictsOf(c)) {
      if (this.#satisfied(e)) return `it conflicts with '${exprText(e)}', which ${this.#installedMatching(e)} provides`;
    }
    for (const other of this.#installed) {
      for (const e of this.#conflictsOf(other)) {
        if (this.#satisfied(e, c) && !this.#satisfied(e)) return `${other.nevra} conflicts with '${exprText(e)}'`;
      }
      if (this.#obsoletes(c, other)) return `it obsoletes ${other.nevra}`;
      if (this.#obsoletes(other, c)) return `${other.nevra} obsoletes it`;
    }
    return null;
  }

  #installedMatching(e: Expr): string {
    const names = this.#installed.filter((c) => e.op !== 'dep' || this.#matches(c, e.dep)).map((c) => c.nevra);
    return names.slice(0, 3).join(', ') || 'an installed package';
  }

  // ---- choosing ----

  /** Orders providers: best arch, newest version per name, recommended first, then names. */
  #order(list: readonly Candidate[]): Candidate[] {
    const groups = new Map<string, Candidate[]>();
    for (const c of list) {
      if (!this.#allowed(c)) continue;
      const g = groups.get(c.pkg.name);
      if (g) {
        if (!g.includes(c)) g.push(c);
      } else groups.set(c.pkg.name, [c]);
    }
    const rank = (c: Candidate): number =>
      c.pkg.arch === 'noarch' ? 0 : present(this.#archRank.get(c.pkg.arch), 'the rank of an allowed arch');
    for (const g of groups.values()) {
      // libsolv keeps only the best architecture among a name's arch-specific packages.
      const bestArch = Math.min(...g.filter((c) => c.pkg.arch !== 'noarch').map(rank));
      g.sort((a, b) => {
        const ra = a.pkg.arch === 'noarch' ? 0 : rank(a) - (Number.isFinite(bestArch) ? bestArch : 0);
        const rb = b.pkg.arch === 'noarch' ? 0 : rank(b) - (Number.isFinite(bestArch) ? bestArch : 0);
        return compareEvr(b.pkg, a.pkg) || ra - rb || a.id - b.id;
      });
    }
    const recommended = (name: string): boolean =>
      this.#installed.some((i) =>
        i.pkg.dependencies.recommends.some(
          (r) =>
            !r.name.startsWith('(') &&
            present(groups.get(name), 'the candidates of a name').some((c) => this.#matches(c, depOf(r))),
        ),
      );
    const names = [...groups.keys()].sort(
      (a, b) => Number(recommended(b)) - Number(recommended(a)) || (a < b ? -1 : a > b ? 1 : 0),
    );
    const out: Candidate[] = [];
    for (let round = 0; ; round++) {
      let any = false;
      for (const n of names) {
        const c = present(groups.get(n), 'the candidates of a name')[round];
        if (c) {
          out.push(c);
          any = true;
        }
      }
      if (!any) return out;
    }
  }

  #providers(dep: Dep): Candidate[] {
    const list = [
      ...(this.#u.byProvide.get(dep.name) ?? []),
      ...(dep.name.startsWith('/') ? (this.#u.byFile.get(dep.name) ?? []) : []),
    ];
    return this.#order(list.filter((c) => this.#matches(c, dep)));
  }

  /** Candidates that would bring an unsatisfied expression closer to satisfied, best first. */
  #alternatives(e: Expr): Candidate[] {
    switch (e.op) {
      case 'dep':
        return this.#providers(e.dep);
      case 'and': {
        const first = e.args.find((a) => !this.#satisfied(a));
        return first ? this.#alternatives(first) : [];
      }
      case 'or':
        // libsolv orders the alternatives of an `or` like the providers of one capability: by name.
        return this.#order([...new Set(e.args.flatMap((a) => this.#alternatives(a)))]);
      case 'if':
        return this.#satisfied(e.cond) ? this.#alternatives(e.then) : e.else ? this.#alternatives(e.else) : [];
      case 'unless':
        return this.#satisfied(e.cond) ? (e.else ? this.#alternatives(e.else) : []) : this.#alternatives(e.then);
      case 'with':
      case 'without': {
        const head = firstDep(present(e.args[0], `the left side of '${e.op}'`));
        return head ? this.#providers(head).filter((c) => this.#packageMatches(c, e)) : [];
      }
    }
  }

  /** The candidates a request names (see SolveRequest.packages), best first. */
  #jobAlternatives(spec: string): Candidate[] {
    const u = this.#u;
    let matched: Candidate[] = [];
    if (spec.startsWith('/')) {
      matched = [...(u.byFile.get(spec) ?? []), ...(u.byProvide.get(spec) ?? [])];
    } else {
      matched = [...(u.byName.get(spec) ?? [])];
      const forms: ((c: Candidate) => string)[] = [
        (c) => `${c.pkg.name}.${c.pkg.arch}`,
        (c) => `${c.pkg.name}-${c.pkg.version}-${c.pkg.release}.${c.pkg.arch}`,
        (c) => `${c.pkg.name}-${c.pkg.version}-${c.pkg.release}`,
        (c) => `${c.pkg.name}-${c.pkg.epoch}:${c.pkg.version}-${c.pkg.release}`,
        (c) => `${c.pkg.name}-${c.pkg.version}`,
      ];
      for (const form of forms) {
        if (matched.length > 0) break;
        matched = u.candidates.filter((c) => form(c) === spec);
      }
      if (matched.length === 0) {
        const [, name, cmp, evr] = /^(\S+)\s*(<=|>=|=|==|<|>)\s*(\S+)$/.exec(spec) ?? [];
        const dep: Dep =
          name !== undefined && cmp !== undefined && evr !== undefined
            ? { name, flags: CMP_BITS[cmp] ?? 0, evr: parseEvr(evr), text: spec }
            : { name: spec, flags: 0, evr: null, text: spec };
        matched = (u.byProvide.get(dep.name) ?? []).filter((c) => this.#matches(c, dep));
      }
    }
    const ordered = this.#order(matched);
    // dnf installs what obsoletes the requested package instead of it ("obsoleted by ..., trying ...").
    const best = ordered[0];
    if (best) {
      const obsoleters = this.#order(
        u.candidates.filter((c) => c.pkg.name !== best.pkg.name && this.#obsoletes(c, best)),
      );
      if (obsoleters.length > 0) return [...obsoleters, ...ordered];
    }
    return ordered;
  }

  // ---- the search ----

  #obSatisfied(ob: Obligation): boolean {
    return ob.kind === 'job' ? ob.alts.some((c) => this.#isInstalled(c)) : this.#satisfied(ob.expr);
  }

  #recordFailure(ob: Obligation, problem: string): void {
    if (this.#firstFailure !== null) return;
    const chain: string[] = [];
    let request: string | null = null;
    const seen = new Set<Candidate>();
    for (let c: Candidate | null = ob.kind === 'dep' ? ob.from : null; c !== null && !seen.has(c); ) {
      seen.add(c);
      const w = this.#why.get(c);
      chain.push(`${c.nevra} (${w?.text ?? '?'})`);
      request = /^requested as '(.*)'$/.exec(w?.text ?? '')?.[1] ?? request;
      c = w?.parent ?? null;
    }
    this.#firstFailure = { ob, problem, request, chain };
  }

  /**
   * Satisfies every obligation (and those of every package chosen on the way), backtracking over
   * choices made in this call. On failure the installed set is as it was on entry.
   */
  #achieve(initial: readonly Obligation[]): boolean {
    const entryMark = this.#installed.length;
    const agenda: Obligation[] = [...initial];
    const choices: Choice[] = [];
    let at = 0;
    const backtrack = (): boolean => {
      for (;;) {
        const top = choices[choices.length - 1];
        if (top === undefined) {
          this.#undoTo(entryMark);
          return false;
        }
        this.#undoTo(top.installedMark);
        agenda.length = top.agendaLength;
        const alt = top.alts[top.next++];
        if (alt !== undefined && this.#conflict(alt) === null) {
          this.#choose(alt, present(agenda[top.at], `obligation ${top.at}`), agenda);
          at = top.at;
          return true;
        }
        if (alt === undefined) choices.pop();
      }
    };
    for (;;) {
      if (++this.#steps > MAX_STEPS) {
        throw new ArborError('E_SOLVE_TOO_COMPLEX', `the request needed more than ${MAX_STEPS} decisions; giving up`, {
          hint: 'name more packages explicitly in the treefile',
        });
      }
      if (at >= agenda.length) {
        // A conditional dependency can become due when a later choice makes its condition true.
        const due = this.#installed
          .flatMap((c) => this.#depsOf(c, 'requires'))
          .filter(
            (ob) => ob.kind === 'dep' && (ob.expr.op === 'if' || ob.expr.op === 'unless') && !this.#satisfied(ob.expr),
          );
        if (due.length === 0) return true;
        agenda.push(...due);
        continue;
      }
      const ob = present(agenda[at], `obligation ${at}`);
      if (this.#obSatisfied(ob)) {
        at++;
        continue;
      }
      const alts = ob.kind === 'job' ? ob.alts : this.#alternatives(ob.expr);
      const usable: Candidate[] = [];
      const refused: string[] = [];
      for (const c of alts) {
        const why = this.#conflict(c);
        if (why === null) usable.push(c);
        else refused.push(`${c.nevra}: ${why}`);
      }
      if (usable.length === 0) {
        this.#recordFailure(
          ob,
          alts.length === 0 ? this.#nothingProvides(ob) : `every candidate is ruled out (${refused.join('; ')})`,
        );
        if (!backtrack()) return false;
        continue;
      }
      choices.push({ at, alts: usable, next: 1, installedMark: this.#installed.length, agendaLength: agenda.length });
      this.#choose(present(usable[0], 'a usable candidate'), ob, agenda);
    }
  }

  #choose(c: Candidate, ob: Obligation, agenda: Obligation[]): void {
    const why =
      ob.kind === 'job'
        ? `requested as '${ob.spec}'`
        : `${ob.verb === 'supplements' ? 'supplements' : `${ob.verb === 'requires' ? 'required' : 'recommended'} by`} ${ob.from.nevra} ('${ob.text}')`;
    this.#install(c, why, ob.kind === 'job' ? null : ob.from);
    agenda.push(...this.#depsOf(c, 'requires'));
  }

  #nothingProvides(ob: Obligation): string {
    if (ob.kind === 'job') {
      const all = this.#u.byName.get(ob.spec) ?? [];
      if (all.length > 0 && all.every((c) => this.#excluded(c.pkg.name)))
        return `'${ob.spec}' is excluded (exclude-packages)`;
      if (all.length > 0)
        return `no package '${ob.spec}' for a compatible architecture (found ${all.map((c) => c.pkg.arch).join(', ')})`;
      return `no package matches '${ob.spec}'`;
    }
    if (ob.expr.op === 'dep') {
      const dep = ob.expr.dep;
      const all = [
        ...(this.#u.byProvide.get(dep.name) ?? []),
        ...(dep.name.startsWith('/') ? (this.#u.byFile.get(dep.name) ?? []) : []),
      ].filter((c) => this.#matches(c, dep));
      const excluded = all.filter((c) => this.#excluded(c.pkg.name));
      if (excluded.length > 0)
        return `its only providers are excluded (exclude-packages): ${[...new Set(excluded.map((c) => c.nevra))].join(', ')}`;
      if (all.length > 0)
        return `its providers are for other architectures: ${[...new Set(all.map((c) => c.nevra))].join(', ')}`;
    }
    return 'nothing provides it';
  }

  #error(): ArborError {
    const f = this.#firstFailure;
    if (f === null) return new ArborError('E_SOLVE_UNSATISFIABLE', 'the request cannot be satisfied');
    if (f.ob.kind === 'job')
      return new ArborError('E_SOLVE_UNSATISFIABLE', `cannot install '${f.ob.spec}': ${f.problem}`);
    const ob = f.ob;
    return new ArborError(
      'E_SOLVE_UNSATISFIABLE',
      `cannot install '${f.request ?? '?'}': ${ob.from.nevra} ${ob.verb} '${ob.text}', but ${f.problem}\n  chain: ${f.chain.join('\n    ← ')}`,
    );
  }

  // ---- weak dependencies ----

  #addWeakDependencies(): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const c of [...this.#installed]) {
        if (c.repo === this.#installedRepo) continue;
        for (const ob of this.#depsOf(c, 'recommends')) {
          if (!this.#obSatisfied(ob) && this.#tryWeak(ob)) changed = true;
        }
      }
      const seen = new Set<string>();
      for (const c of this.#order(this.#u.candidates.filter((x) => !this.#byName.has(x.pkg.name)))) {
        if (seen.has(c.pkg.name) || this.#byName.has(c.pkg.name)) continue;
        seen.add(c.pkg.name);
        const sup = this.#depsOf(c, 'supplements').find(
          (ob) => ob.kind === 'dep' && this.#satisfied(ob.expr) && !this.#supplementsInstalled(ob.expr),
        );
        if (sup && sup.kind === 'dep') {
          const ob: Obligation = { kind: 'job', spec: c.pkg.name, alts: [c] };
          const mark = this.#installed.length;
          const saved = this.#firstFailure;
          if (this.#achieve([ob])) {
            const target = this.#installed.find((i) => i !== c && this.#matchesExpr(i, sup.expr));
            this.#why.set(c, {
              text: `supplements ${target?.nevra ?? 'an installed package'} ('${sup.text}')`,
              parent: null,
            });
            changed = changed || this.#installed.length > mark;
          }
          this.#firstFailure = saved;
        }
      }
    }
  }

  /** Whether a package installed before the request matches a Supplements (then it adds nothing). */
  #supplementsInstalled(e: Expr): boolean {
    return (
      this.#installedRepo !== undefined &&
      this.#installed.some((i) => i.repo === this.#installedRepo && this.#matchesExpr(i, e))
    );
  }

  #matchesExpr(c: Candidate, e: Expr): boolean {
    return e.op === 'dep' ? this.#matches(c, e.dep) : this.#packageMatches(c, e);
  }

  #tryWeak(ob: Obligation): boolean {
    const saved = this.#firstFailure;
    const ok = this.#achieve([ob]);
    this.#firstFailure = saved;
    return ok;
  }

  // ---- order ----

  /** Dependencies before dependents (depth-first, Requires(pre) edges first, names as tie-break). */
  #installOrder(): Candidate[] {
    const out: Candidate[] = [];
    const state = new Map<Candidate, 'visiting' | 'done'>();
    const position = new Map(this.#installed.map((c, i) => [c, i]));
    // Installed packages that may provide what `e` names, in installed order: only they can match.
    const mayProvide = (e: Expr): Candidate[] => {
      const found = new Set<Candidate>();
      const walk = (x: Expr): void => {
        switch (x.op) {
          case 'dep':
            for (const c of this.#u.byProvide.get(x.dep.name) ?? []) found.add(c);
            if (x.dep.name.startsWith('/')) for (const c of this.#u.byFile.get(x.dep.name) ?? []) found.add(c);
            return;
          case 'if':
          case 'unless':
            walk(x.then);
            if (x.else !== undefined) walk(x.else);
            return;
          default:
            for (const a of x.args) walk(a);
        }
      };
      walk(e);
      return [...found].filter((c) => position.has(c)).sort((a, b) => (position.get(a) ?? 0) - (position.get(b) ?? 0));
    };
    const visit = (c: Candidate): void => {
      if (state.has(c)) return;
      state.set(c, 'visiting');
      for (const ob of this.#depsOf(c, 'requires')) {
        if (ob.kind !== 'dep') continue;
        for (const p of mayProvide(ob.expr)) if (p !== c && this.#providesFor(p, ob.expr)) visit(p);
      }
      state.set(c, 'done');
      out.push(c);
    };
    const sorted = [...this.#installed].sort((a, b) =>
      a.pkg.name < b.pkg.name ? -1 : a.pkg.name > b.pkg.name ? 1 : 0,
    );
    for (const c of sorted) visit(c);
    return out;
  }

  #providesFor(c: Candidate, e: Expr): boolean {
    switch (e.op) {
      case 'dep':
        return this.#matches(c, e.dep);
      case 'if':
      case 'unless':
        return this.#providesFor(c, e.then) || (e.else !== undefined && this.#providesFor(c, e.else));
      case 'without':
        return this.#providesFor(c, present(e.args[0], "the left side of 'without'"));
      default:
        return e.args.some((a) => this.#providesFor(c, a));
    }
  }
}

function firstDep(e: Expr): Dep | undefined {
  switch (e.op) {
    case 'dep':
      return e.dep;
    case 'if':
    case 'unless':
      return firstDep(e.then);
    default:
      return e.args[0] ? firstDep(e.args[0]) : undefined;
  }
}

function exprText(e: Expr): string {
  switch (e.op) {
    case 'dep':
      return e.dep.text;
    case 'if':
    case 'unless':
      return `(${exprText(e.then)} ${e.op} ${exprText(e.cond)}${e.else ? ` else ${exprText(e.else)}` : ''})`;
    default:
      return `(${e.args.map(exprText).join(` ${e.op} `)})`;
  }
}
