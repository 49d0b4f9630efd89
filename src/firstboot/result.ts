// What the first-boot script recorded in a deployment (/etc/arbor/firstboot/result, `key=value` lines,
// and the output of a failed step), read for `arbor status` without trusting the files' contents.
import { readFileInRoot, realDirInRoot } from '../deploy/index.js';
import { FIRSTBOOT_DIR } from './install.js';

export interface FirstbootResult {
  /** pending: configured, not run yet (or interrupted before recording). */
  readonly state: 'pending' | 'applied' | 'failed';
  /** When the script recorded its result, as it wrote it (ISO 8601, UTC). */
  readonly time: string | null;
  /** Steps that succeeded. */
  readonly steps: number | null;
  readonly failedStep: string | null;
  readonly exit: number | null;
  /** The failed step's output (its last 64 KiB). */
  readonly output: string | null;
}

const MAX_RESULT_BYTES = 64 * 1024;
const MAX_OUTPUT_BYTES = 64 * 1024 + 1;

/** The first-boot result of the deployment at `root`, or null when it has no first-boot configuration. */
export function readFirstbootResult(root: string): FirstbootResult | null {
  if (realDirInRoot(root, FIRSTBOOT_DIR).kind !== 'dir') return null;
  const text = readFileInRoot(root, `/${FIRSTBOOT_DIR}/result`, MAX_RESULT_BYTES)?.toString('utf8');
  const fields = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const status = fields.get('status');
  const state = status === 'applied' || status === 'failed' ? status : 'pending';
  const int = (key: string): number | null => {
    const v = fields.get(key);
    return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : null;
  };
  return {
    state,
    time: fields.get('time') ?? null,
    steps: int('steps'),
    failedStep: state === 'failed' ? (fields.get('step') ?? null) : null,
    exit: state === 'failed' ? int('exit') : null,
    output:
      state === 'failed'
        ? (readFileInRoot(root, `/${FIRSTBOOT_DIR}/failed-step.log`, MAX_OUTPUT_BYTES)?.toString('utf8') ?? null)
        : null,
  };
}
