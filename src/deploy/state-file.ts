// The small files Arbor keeps beside deployments (origins, /etc conflict lists, the staged
// deployment, trial failure records), read safely: a link there is never followed, and a
// directory, fifo or device there is reported as damaged local state, not opened or crashed on.
import { CorruptionError } from '../common/errors.js';
import { readBoundedFile } from '../common/read-bounded.js';

export interface StateFileKind {
  /** The error code a damaged file is reported with (exit 3). */
  readonly code: `E_${string}`;
  /** What the file is, for messages: `origin file`, `staged deployment file`. */
  readonly noun: string;
  /** Larger files are refused: these are a few lines each. */
  readonly maxBytes: number;
}

function damaged(kind: StateFileKind, path: string, problem: string): CorruptionError {
  return new CorruptionError(kind.code, `${kind.noun} '${path}' ${problem}`, {
    hint: 'arbor writes this file itself: move it away (or restore it) and run the command again',
  });
}

/**
 * The text of the state file at `path`, or null when it does not exist. It must be a regular file
 * (checked with lstat before it is opened, so a device is never opened, and again on the open
 * descriptor, opened with O_NOFOLLOW) of at most `kind.maxBytes`; otherwise `kind.code`, naming the
 * path and what is there instead, never its content.
 */
export function readStateFile(path: string, kind: StateFileKind): string | null {
  const read = readBoundedFile(path, kind.maxBytes);
  if (read === null) return null;
  if ('problem' in read) throw damaged(kind, path, read.problem);
  return read.bytes.toString('utf8');
}

/** JSON state (etc-conflicts, staged deployment) parsed without letting the parser's message, which quotes the text, into the error. */
export function parseStateJson(text: string, path: string, kind: StateFileKind): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The SyntaxError quotes the text around the fault: it is left out on purpose.
    throw damaged(kind, path, 'is not valid JSON');
  }
}

/** The error for a state file that parses but does not hold what it should. */
export function stateFileInvalid(kind: StateFileKind, path: string, problem: string): CorruptionError {
  return damaged(kind, path, problem);
}

export const ORIGIN_FILE: StateFileKind = { code: 'E_ORIGIN_INVALID', noun: 'origin file', maxBytes: 64 * 1024 };
export const ETC_CONFLICTS_FILE: StateFileKind = {
  code: 'E_DEPLOY_STATE_INVALID',
  noun: '/etc conflict list',
  maxBytes: 16 * 1024 * 1024,
};
export const STAGED_FILE: StateFileKind = {
  code: 'E_DEPLOY_STATE_INVALID',
  noun: 'staged deployment file',
  maxBytes: 1024 * 1024,
};
export const TRIAL_RECORD_FILE: StateFileKind = {
  code: 'E_DEPLOY_STATE_INVALID',
  noun: 'trial failure record',
  maxBytes: 64 * 1024,
};
