// A deployment's origin file (`CHECKSUM.SERIAL.origin`): where upgrades come from, and transient
// state such as pinning. An ini file like ostree's (`[origin] refspec=REMOTE:REF`). Pure; strict
// both ways, and its errors name a line and a key, never a value: the file could hold anything.
import { CorruptionError, UsageError, assert, quoteText } from '../common/errors.js';
import { type IniRules, type IniValue, formatIni, parseIni } from '../common/ini.js';
import { invalidRefReason } from '../repo/index.js';

export interface Origin {
  /** `REMOTE:REF`, or a local `REF`; null for a deployment of a bare commit (nothing to upgrade). */
  readonly refspec: string | null;
  /** Kept across upgrades (never removed by cleanup). */
  readonly pinned: boolean;
  /** Deployed with --allow-downgrade: its commit is older than the deployment it was made from. */
  readonly allowDowngrade: boolean;
  /** Other keys, kept as they were: group → key → value. */
  readonly extra: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** The groups package layering keeps its requests in (rpm-ostree's; read by the layering module). */
const LAYERING_GROUPS = ['packages', 'overrides'];

/** Whether an origin records package layering requests, which a new deployment must re-apply. */
export const hasLayering = (origin: Origin): boolean =>
  LAYERING_GROUPS.some((g) => (origin.extra.get(g)?.size ?? 0) > 0);

export const EMPTY_ORIGIN: Origin = { refspec: null, pinned: false, allowDowngrade: false, extra: new Map() };

// Group and key names: what ostree and Arbor write. Values: one line without control characters
// (a newline in a value would be a line of its own: `pinned=true` injected by a refspec).
const GROUP = /^[A-Za-z0-9][A-Za-z0-9 ._-]*$/;
const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const BOOLEAN = new Set(['true', 'false']);
const ORIGIN_RULES: IniRules = {
  noun: 'group',
  sectionProblem: (name) => (GROUP.test(name) ? undefined : 'the group name is not letters, digits, space, . _ -'),
  keyProblem: (key) => (KEY.test(key) ? undefined : 'the key is not letters, digits, . _ -'),
};

/** Why `refspec` is not `REMOTE:REF` or a local `REF` by the ref rules (src/repo/refs.ts), or undefined. */
export function refspecProblem(refspec: string): string | undefined {
  // First: the ref rules' reasons quote components, which must not carry a line break into a message.
  if (CONTROL.test(refspec)) return 'it contains a control character';
  const colon = refspec.indexOf(':');
  if (colon === 0 || colon === refspec.length - 1) return 'expected REMOTE:REF with both parts';
  return invalidRefReason(refspec);
}

/** Splits `REMOTE:REF` (a ref alone means a local ref); E_REFSPEC_INVALID (exit 2) unless valid by the ref rules. */
export function parseRefspec(refspec: string): { remote: string | null; ref: string } {
  const problem = refspecProblem(refspec);
  if (problem !== undefined) {
    throw new UsageError('E_REFSPEC_INVALID', `${quoteText(refspec)} is not a valid refspec: ${problem}`, {
      hint: 'write REMOTE:REF, or a local REF (letters, digits, . _ - + @, and / between components)',
    });
  }
  const colon = refspec.indexOf(':');
  if (colon < 0) return { remote: null, ref: refspec };
  return { remote: refspec.slice(0, colon), ref: refspec.slice(colon + 1) };
}

/**
 * Parses origin text read from `where` (named in errors) by the shared INI rules (src/common/ini.ts)
 * and ORIGIN_RULES. E_ORIGIN_INVALID (exit 3: local state is damaged) for a line of another form, a
 * bad group or key name, a duplicate key, a control character, a refspec the ref rules refuse, or a
 * flag other than true/false. Messages give the line number and key only.
 */
export function parseOrigin(text: string, where: string): Origin {
  const fail = (line: number, problem: string): never => {
    throw new CorruptionError('E_ORIGIN_INVALID', `origin file '${where}' line ${line}: ${problem}`, {
      hint: 'arbor writes this file: restore it, or fix that line (`arbor rebase REMOTE:REF` makes a new deployment with a fresh origin)',
    });
  };
  const parsed = parseIni(text, ORIGIN_RULES);
  if ('error' in parsed) return fail(parsed.error.line, parsed.error.problem);
  const groups = parsed.sections;
  /** Takes a known key out of its group (what stays is `extra`). */
  const take = (groupName: string, key: string): IniValue | undefined => {
    const found = groups.get(groupName)?.get(key);
    groups.get(groupName)?.delete(key);
    return found;
  };
  const flag = (groupName: string, key: string): boolean => {
    const found = take(groupName, key);
    if (found !== undefined && !BOOLEAN.has(found.value)) fail(found.line, `key '${key}' must be true or false`);
    return found?.value === 'true';
  };
  const spec = take('origin', 'refspec');
  if (spec !== undefined && refspecProblem(spec.value) !== undefined)
    fail(spec.line, "key 'refspec' is not a valid refspec");
  const pinned = flag('arbor-transient', 'pinned');
  const allowDowngrade = flag('origin', 'allow-downgrade');
  const extra = new Map<string, Map<string, string>>();
  for (const [name, g] of groups) if (g.size > 0) extra.set(name, new Map([...g].map(([k, v]) => [k, v.value])));
  return { refspec: spec?.value ?? null, pinned, allowDowngrade, extra };
}

/**
 * The origin as text, which parseOrigin reads back equal. A refspec the ref rules refuse is
 * E_REFSPEC_INVALID (exit 2: it came from the command line); other keys come from a parsed file
 * or from Arbor and are checked as invariants.
 */
export function formatOrigin(origin: Origin): string {
  if (origin.refspec !== null) parseRefspec(origin.refspec);
  const groups = new Map<string, Map<string, string>>();
  const set = (group: string, key: string, value: string): void => {
    const g = groups.get(group) ?? new Map<string, string>();
    g.set(key, value);
    groups.set(group, g);
  };
  // Known keys first in their groups, then the others as read.
  if (origin.refspec !== null) set('origin', 'refspec', origin.refspec);
  if (origin.allowDowngrade) set('origin', 'allow-downgrade', 'true');
  if (origin.pinned) set('arbor-transient', 'pinned', 'true');
  for (const [name, g] of origin.extra) for (const [k, v] of g) set(name, k, v);
  const ordered = [...groups].sort(([a], [b]) => (a === 'origin' ? -1 : b === 'origin' ? 1 : a < b ? -1 : 1));
  for (const [name, g] of ordered) {
    assert(GROUP.test(name), `origin group name ${quoteText(name)} cannot be written`);
    for (const [k, v] of g) {
      // Values are trimmed when read back: surrounding whitespace would not round-trip.
      assert(
        KEY.test(k) && !CONTROL.test(v) && v === v.trim(),
        `origin key ${quoteText(k)} in [${name}] cannot be written`,
      );
    }
  }
  return formatIni(new Map(ordered));
}
