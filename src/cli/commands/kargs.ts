// `arbor kargs`: show or edit a deployment's kernel arguments (flags or $EDITOR).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type Sysroot, editKargs, readBootState, setKargs } from '../../deploy/index.js';
import { SysrootCommand, parseDeploymentIndex } from '../sysroot-command.js';

export class KargsCommand extends SysrootCommand {
  static override paths = [['kargs']];
  static override usage = Command.Usage({
    description: "Show or edit the default deployment's kernel arguments",
    details: 'Edits write a new boot set (atomic swap); nothing is checked out. Order: --delete, --replace, --append.',
    examples: [
      ['Add an argument', '$0 kargs --append console=ttyS0'],
      ['Edit in $EDITOR', '$0 kargs --editor'],
    ],
  });
  append = Option.Array('--append', { description: 'Append K=V' });
  delete = Option.Array('--delete', { description: 'Delete K (every value) or K=V' });
  replace = Option.Array('--replace', { description: 'Replace K=... by K=V' });
  editor = Option.Boolean('--editor', false, { description: 'Edit in $EDITOR' });
  index = Option.String('--deploy-index', '0', { description: 'Deployment to edit (default 0, the default one)' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const editing = this.append || this.delete || this.replace || this.editor;
    if (this.editor && (this.append || this.delete || this.replace))
      throw new UsageError('E_USAGE', '--editor cannot be combined with --append, --delete or --replace');
    if (!editing) {
      const d = readBootState(sysroot).deployments[parseDeploymentIndex(this.index)];
      if (!d) throw new UsageError('E_DEPLOYMENT_INDEX', `there is no deployment ${this.index}`);
      this.print(d.kargs.join(' '));
      return 0;
    }
    const { after } = setKargs(sysroot, parseDeploymentIndex(this.index), (kargs) =>
      this.editor
        ? editInEditor(kargs)
        : editKargs(kargs, { append: this.append ?? [], delete: this.delete ?? [], replace: this.replace ?? [] }),
    );
    this.print(after.join(' '));
    return 0;
  }
}

/** The arguments after the user edited them in $VISUAL or $EDITOR (vi), as one line in a private file. */
function editInEditor(kargs: readonly string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-kargs-'));
  try {
    const file = join(dir, 'kargs');
    writeFileSync(file, `${kargs.join(' ')}\n# One line of kernel arguments; lines starting with # are ignored.\n`);
    const editor = process.env.VISUAL ?? process.env.EDITOR ?? 'vi';
    const r = spawnSync('sh', ['-c', `${editor} "$1"`, 'sh', file], { stdio: 'inherit' });
    if (r.status !== 0)
      throw new UsageError('E_USAGE', `the editor (${editor}) exited with ${r.status}; nothing changed`);
    const text = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join(' ');
    return editKargs(
      text.split(/\s+/).filter((a) => a !== ''),
      {},
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
