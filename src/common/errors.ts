// Errors users can act on, their stable codes, and the exit statuses they map to (docs/errors.md).

/** Exit statuses are a contract with scripts: see docs/errors.md. */
export const Exit = { Ok: 0, Failed: 1, Usage: 2, Corrupt: 3, Internal: 70, Busy: 75 } as const;
export type ExitStatus = (typeof Exit)[keyof typeof Exit];

/** An expected failure the user can act on. Printed without a stack trace. */
export class ArborError extends Error {
  readonly exit: ExitStatus = Exit.Failed;
  readonly hint: string | undefined;
  /** The steps of a long operation this failure happened in, outermost first (see inStep). */
  readonly steps: string[] = [];
  constructor(
    readonly code: `E_${string}`,
    message: string,
    opts: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.hint = opts.hint;
  }
}

/** Bad flags or arguments, or input the user gave that cannot be used (exit 2). */
export class UsageError extends ArborError {
  override readonly exit = Exit.Usage;
}

/** Stored data does not match its checksum or is structurally broken (exit 3). */
export class CorruptionError extends ArborError {
  override readonly exit = Exit.Corrupt;
}

/** Another process holds a lock we need (exit 75: try again). */
export class BusyError extends ArborError {
  override readonly exit = Exit.Busy;
}

/**
 * Runs one named step of a long operation (ostree's GLNX_AUTO_PREFIX_ERROR): an ArborError thrown
 * inside records the step, so the user reads which step failed; its code, exit and hint stay.
 * Bugs (plain Errors) pass unchanged: their stack says more.
 */
export async function inStep<T>(step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw withStep(error, step);
  }
}

/** inStep for synchronous work. */
export function inStepSync<T>(step: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw withStep(error, step);
  }
}

function withStep(error: unknown, step: string): unknown {
  // The same error object can pass one step twice (a cached failure re-thrown): record it once.
  if (error instanceof ArborError && error.steps[0] !== step) error.steps.unshift(step);
  return error;
}

/** Throws a plain Error (exit 70) when one of our own invariants is broken. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`internal error: ${message}`);
}

/**
 * `value`, which our own invariants say is there (a map entry made earlier, an index in range, a
 * regex group that always matches): instead of `value as T`, a missing one fails loudly (exit 70)
 * naming `what`, rather than flowing on as undefined.
 */
export function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal error: ${what} is missing`);
  return value;
}

/** The errno code of a Node or native error, or undefined. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Describes an errno error briefly ("permission denied (EACCES)") for messages. */
export function describeErrno(error: unknown): string {
  const code = errnoCode(error);
  const known: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    ENOTDIR: 'not a directory',
    EISDIR: 'is a directory',
    ENOTSUP: 'operation not supported',
    EIO: 'input/output error',
    ELOOP: 'too many levels of symbolic links',
    EEXIST: 'file exists',
    ENOTEMPTY: 'directory not empty',
  };
  if (code && known[code]) return `${known[code]} (${code})`;
  return error instanceof Error ? error.message : String(error);
}

/** Wraps an errno failure at an I/O edge into an ArborError naming the path. */
export function ioError(action: string, path: string, cause: unknown): ArborError {
  const code = errnoCode(cause);
  const message = `cannot ${action} '${path}': ${describeErrno(cause)}`;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ArborError('E_NO_SPACE', message, { cause });
  if (code === 'EACCES' || code === 'EPERM') return new ArborError('E_PERMISSION', message, { cause });
  return new ArborError('E_IO', message, { cause });
}

/**
 * `'text'` for a message, with control characters, `'` and `\` escaped: a value read from a file
 * or a tree, or typed with a line break in it, cannot break the message's lines or fake one.
 */
export function quoteText(text: string): string {
  const escaped = text.replace(/[\u0000-\u001f\u007f\\']/g, (ch) =>
    ch === '\n'
      ? '\\n'
      : ch === '\t'
        ? '\\t'
        : ch === '\\' || ch === "'"
          ? `\\${ch}`
          : `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return `'${escaped}'`;
}
