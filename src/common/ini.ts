// INI text as ostree writes its repository config and deployment origins: `[section]` headers,
// `key=value` lines and `#`/`;` comments. One strict parser with line numbers for both, and the writer.

/** Sections in file order: section name → key → value. */
export type Ini = Map<string, Map<string, string>>;

/** A value and the line (1-based) it was read from, so a caller can say where a bad value is. */
export interface IniValue {
  readonly value: string;
  readonly line: number;
}

/** What one kind of file adds to the shared syntax: its word for a section and its name rules. */
export interface IniRules {
  /** The word messages use for a section (default 'section'; origins say 'group', as GKeyFile does). */
  readonly noun?: string;
  /** Why a section name is refused, or undefined when it is accepted. */
  readonly sectionProblem?: (name: string) => string | undefined;
  /** Why a key is refused, or undefined when it is accepted. */
  readonly keyProblem?: (key: string) => string | undefined;
}

/** Where and why the text does not parse; `problem` never quotes a value or a whole line. */
export interface IniError {
  readonly line: number;
  readonly problem: string;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Parses INI text line by line, each line trimmed (so CRLF files read the same):
 * - an empty line, or one starting with `#` or `;`, is a comment;
 * - no line may hold a control character (a value is one line: nothing can smuggle in another);
 * - a line starting with `[` is a header and must be `[NAME]`, NAME non-empty and without `[` or
 *   `]`; a section named twice continues the first;
 * - every other line is `key=value` inside a section: split at the first `=`, both sides trimmed,
 *   the key non-empty and not repeated within its section.
 * The first line breaking a rule (the shared ones, then `rules`) is returned as the error.
 */
export function parseIni(
  text: string,
  rules: IniRules = {},
): { sections: Map<string, Map<string, IniValue>> } | { error: IniError } {
  const noun = rules.noun ?? 'section';
  const sections = new Map<string, Map<string, IniValue>>();
  let section: Map<string, IniValue> | undefined;
  for (const [index, raw] of text.split('\n').entries()) {
    const line = index + 1;
    const fail = (problem: string): { error: IniError } => ({ error: { line, problem } });
    const content = raw.trim();
    if (content === '' || content.startsWith('#') || content.startsWith(';')) continue;
    if (CONTROL.test(content)) return fail('it contains a control character');
    if (content.startsWith('[')) {
      const name = /^\[(.*)\]$/.exec(content)?.[1];
      if (name === undefined) return fail(`expected [${noun}] or key=value`);
      if (name === '' || /[[\]]/.test(name)) return fail(`the ${noun} name is empty or holds a bracket`);
      const problem = rules.sectionProblem?.(name);
      if (problem !== undefined) return fail(problem);
      section = sections.get(name) ?? new Map();
      sections.set(name, section);
      continue;
    }
    const eq = content.indexOf('=');
    if (eq <= 0 || section === undefined) return fail(`expected [${noun}] or key=value`);
    const key = content.slice(0, eq).trim();
    const problem = rules.keyProblem?.(key);
    if (problem !== undefined) return fail(problem);
    if (section.has(key)) return fail(`key '${key}' appears twice in its ${noun}`);
    section.set(key, { value: content.slice(eq + 1).trim(), line });
  }
  return { sections };
}

/** The sections without line numbers. */
export function iniValues(sections: ReadonlyMap<string, ReadonlyMap<string, IniValue>>): Ini {
  return new Map([...sections].map(([name, entries]) => [name, new Map([...entries].map(([k, v]) => [k, v.value]))]));
}

/**
 * INI text of `ini`, in its order: `[name]` and its `key=value` lines, an empty line between
 * sections. It reads back equal when names and values are what parseIni accepts (one line,
 * trimmed, no brackets in names, no `=` in keys); callers check that.
 */
export function formatIni(ini: ReadonlyMap<string, ReadonlyMap<string, string>>): string {
  const parts: string[] = [];
  for (const [name, entries] of ini) {
    parts.push(`[${name}]`);
    for (const [key, value] of entries) parts.push(`${key}=${value}`);
    parts.push('');
  }
  return parts.join('\n');
}
