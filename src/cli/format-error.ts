// The one place errors become text: `error[CODE]: message`, causes, hint; stacks only for bugs.
import { ArborError, Exit, type ExitStatus, describeErrno } from '../common/errors.js';

export function formatError(error: unknown): string {
  if (!(error instanceof ArborError)) {
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    return `error[E_INTERNAL]: arbor hit a bug; please report it with this output\n${stack}\n`;
  }
  const lines = [`error[${error.code}]: ${error.message}`];
  let cause = error.cause;
  for (let depth = 0; cause !== undefined && depth < 4; depth++) {
    const text = cause instanceof ArborError ? cause.message : describeErrno(cause);
    if (!lines.some((l) => l.includes(text))) lines.push(`  caused by: ${text}`);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  if (error.steps.length > 0) lines.push(`  during: ${error.steps.join(' › ')}`);
  if (error.hint) lines.push(`hint: ${error.hint}`);
  return `${lines.join('\n')}\n`;
}

export function exitStatusOf(error: unknown): ExitStatus {
  return error instanceof ArborError ? error.exit : Exit.Internal;
}
