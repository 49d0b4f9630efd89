// The repository `config` file: an INI file like ostree's, recording mode and format version.
import { UsageError } from '../common/errors.js';
import { type Ini, iniValues, parseIni } from '../common/ini.js';

export type RepoMode = 'bare' | 'bare-user' | 'archive';
export const REPO_MODES: readonly RepoMode[] = ['bare', 'bare-user', 'archive'];

/**
 * The repository layout this code reads and writes; `open` refuses any other. Version 2: objects
 * of OBJECT_FORMAT_VERSION 2 (dirtrees record file sizes); a version-1 repository must be re-created.
 */
export const REPO_FORMAT_VERSION = 2;

export function isRepoMode(text: string): text is RepoMode {
  return (REPO_MODES as readonly string[]).includes(text);
}

/**
 * The repository `config` read from `what` (named in errors), by the shared INI rules
 * (src/common/ini.ts); E_CONFIG_INVALID (exit 2) names `FILE:LINE` of the first line that breaks one.
 */
export function parseRepoConfig(text: string, what: string): Ini {
  const parsed = parseIni(text);
  if ('error' in parsed)
    throw new UsageError('E_CONFIG_INVALID', `${what}:${parsed.error.line}: ${parsed.error.problem}`, {
      hint: 'fix or restore that line',
    });
  return iniValues(parsed.sections);
}
