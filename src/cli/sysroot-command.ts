// The base class of the host-side commands: every one takes --sysroot (default /), so all of
// them run on a directory; and the deployment index argument several of them take.
import { Option } from 'clipanion';
import { UsageError } from '../common/errors.js';
import { Sysroot } from '../deploy/index.js';
import type { Rendered } from './render/deploy.js';
import { ArborCommand } from './repo-command.js';

/** Commands that act on a sysroot: it is opened once and closed whatever happens. */
export abstract class SysrootCommand extends ArborCommand {
  sysrootPath = Option.String('--sysroot', '/', { description: 'The sysroot to act on (default: /)' });
  protected abstract runWith(sysroot: Sysroot): Promise<number>;
  protected async run(): Promise<number> {
    const sysroot = Sysroot.open(this.sysrootPath);
    try {
      return await this.runWith(sysroot);
    } finally {
      sysroot.close();
    }
  }
  /** Writes a renderer's output: warnings to stderr, data to stdout. */
  protected emit(rendered: Rendered): void {
    if (rendered.stderr !== '') this.context.stderr.write(rendered.stderr);
    if (rendered.stdout !== '') this.context.stdout.write(rendered.stdout);
  }
}

/** A deployment index as `arbor status` numbers them (0, 1, ...). */
export function parseDeploymentIndex(text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError('E_USAGE', `expected a deployment index (0, 1, ...), got '${text}'`);
  return Number(text);
}
