// The repository `config` file: an INI file like ostree's, recording mode and format version.
import { UsageError } from '../common/errors.js';

export type RepoMode = 'bare' | 'bare-user' | 'archive';
export const REPO_MODES: readonly RepoMode[] = ['bare', 'bare-user', 'archive'];

/**
 * The repository layout this code reads and writes; `open` refuses any other. Version 2: objects
 * of OBJECT_FORMAT_VERSION 2 (dirtrees record file sizes); a version-1 repository must be re-created.
 */
export const REPO_FORMAT_VERSION = 2;

/** Sections of an INI file: section name → key → value, in file order. */
export type Ini = Map<string, Map<string, string>>;

export function isRepoMode(text: string): text is RepoMode {
  return (REPO_MODES as readonly string[]).includes(text);
}

/** Parses `[section]` headers and `key=value` lines; `#`/`;` start comments. */
export function parseIni(text: string, what: string): Ini {
  const ini: Ini = new Map();
  let section: Map<string, string> | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      const name = header[1] as string;
      section = ini.get(name) ?? new Map();
      ini.set(name, section);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || !section) throw new UsageError('E_CONFIG_INVALID', `${what}:${index + 1}: cannot parse '${line}'`);
    section.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  });
  return ini;
}

export function formatIni(ini: Ini): string {
  const parts: string[] = [];
  for (const [name, entries] of ini) {
    parts.push(`[${name}]`);
    for (const [key, value] of entries) parts.push(`${key}=${value}`);
    parts.push('');
  }
  return parts.join('\n');
}
