// Errors across a thread or process boundary: a worker reports a failure as plain data, and the
// main thread revives an error of the same class (so the exit status holds), code, hint, steps and
// causes. Structured cloning alone keeps only a plain Error's message.
import { ArborError, BusyError, CorruptionError, UsageError } from './errors.js';

/** A failure as plain, cloneable data. */
export interface ErrorReport {
  /** Which class to revive: one of Arbor's error classes, or a plain Error (an errno or a bug). */
  readonly kind: 'ArborError' | 'UsageError' | 'CorruptionError' | 'BusyError' | 'Error';
  readonly message: string;
  /** An ArborError's `E_…` code, or an errno code such as ENOSPC. */
  readonly code?: string | undefined;
  readonly hint?: string | undefined;
  readonly steps?: readonly string[] | undefined;
  /** A bug's stack, so the main thread's report still shows where it happened. */
  readonly stack?: string | undefined;
  readonly cause?: ErrorReport | undefined;
}

const CLASSES = { ArborError, UsageError, CorruptionError, BusyError } as const;
/** Causes deeper than this are dropped (formatError prints four). */
const MAX_CAUSES = 4;

/** Turns any thrown value into a report. */
export function reportError(error: unknown, depth = 0): ErrorReport {
  const cause =
    error instanceof Error && error.cause !== undefined && depth < MAX_CAUSES
      ? reportError(error.cause, depth + 1)
      : undefined;
  if (error instanceof ArborError) {
    const kind =
      error instanceof CorruptionError
        ? 'CorruptionError'
        : error instanceof UsageError
          ? 'UsageError'
          : error instanceof BusyError
            ? 'BusyError'
            : 'ArborError';
    return { kind, message: error.message, code: error.code, hint: error.hint, steps: [...error.steps], cause };
  }
  const code =
    typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
      ? error.code
      : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return { kind: 'Error', message, code, stack: error instanceof Error ? error.stack : undefined, cause };
}

/** The error a report describes: the same class, code, hint, steps and causes. */
export function reviveError(report: ErrorReport): Error {
  const cause = report.cause === undefined ? undefined : reviveError(report.cause);
  if (report.kind === 'Error' || report.code === undefined || !report.code.startsWith('E_')) {
    const error = new Error(report.message, { cause });
    if (report.code !== undefined) Object.assign(error, { code: report.code });
    if (report.stack !== undefined) error.stack = report.stack;
    return error;
  }
  const ErrorClass = CLASSES[report.kind];
  const error = new ErrorClass(report.code as `E_${string}`, report.message, { hint: report.hint, cause });
  error.steps.push(...(report.steps ?? []));
  return error;
}
