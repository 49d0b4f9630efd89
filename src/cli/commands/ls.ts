// `arbor ls`: list a directory of a commit (like ostree ls).
import { Command, Option } from 'clipanion';
import { type Checksum, type Repo, type TreeEntry, isSymlink, lookupPath, resolveRev } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';

interface Row {
  type: 'd' | '-' | 'l' | 'c' | 'b' | 'p';
  mode: string;
  uid: number;
  gid: number;
  size: number;
  path: string;
  target?: string;
  checksum: Checksum;
}

const TYPE_CHAR: Record<number, Row['type']> = {
  0o100000: '-',
  0o120000: 'l',
  0o020000: 'c',
  0o060000: 'b',
  0o010000: 'p',
  0o040000: 'd',
};

export class LsCommand extends RepoCommand {
  static override paths = [['ls']];
  static override usage = Command.Usage({
    description: 'List files of a commit: type, mode, owner, size, path',
    examples: [['Everything, recursively', '$0 ls --repo repo os/main / -R']],
  });
  rev = Option.String({ required: true, name: 'REV' });
  treePath = Option.String({ required: false, name: 'PATH' });
  recursive = Option.Boolean('-R,--recursive', false, { description: 'Descend into directories' });
  checksums = Option.Boolean('-C,--checksum', false, { description: 'Show object checksums' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    const commit = resolveRev(repo, this.rev);
    const start = (this.treePath ?? '/').replace(/\/+$/, '') || '/';
    const rows: Row[] = [];
    const visit = (entry: TreeEntry, path: string, descend: boolean): void => {
      if (entry.kind === 'file') {
        const h = repo.readFileHeader(entry.checksum);
        rows.push({
          type: TYPE_CHAR[h.mode & 0o170000] ?? '-',
          mode: (h.mode & 0o7777).toString(8).padStart(4, '0'),
          uid: h.uid,
          gid: h.gid,
          size: h.size,
          path,
          ...(isSymlink(h.mode) && { target: h.symlinkTarget }),
          checksum: entry.checksum,
        });
        return;
      }
      const meta = repo.readDirMeta(entry.meta);
      rows.push({
        type: 'd',
        mode: (meta.mode & 0o7777).toString(8).padStart(4, '0'),
        uid: meta.uid,
        gid: meta.gid,
        size: 0,
        path,
        checksum: entry.tree,
      });
      if (!descend) return;
      const tree = repo.readDirTree(entry.tree);
      const prefix = path === '/' ? '' : path;
      const children: [string, TreeEntry][] = [
        ...tree.files.map((f): [string, TreeEntry] => [f.name, { kind: 'file', checksum: f.checksum, size: f.size }]),
        ...tree.dirs.map((d): [string, TreeEntry] => [d.name, { kind: 'dir', tree: d.tree, meta: d.meta }]),
      ].sort((a, b) => (a[0] < b[0] ? -1 : 1));
      for (const [name, child] of children) visit(child, `${prefix}/${name}`, this.recursive);
    };
    visit(lookupPath(repo, commit, start), start.startsWith('/') ? start : `/${start}`, true);
    if (this.json) {
      this.printJson(rows);
      return 0;
    }
    const lines = rows.map(
      (r) =>
        `${r.type}${r.mode} ${String(r.uid).padStart(5)} ${String(r.gid).padStart(5)} ${String(r.size).padStart(10)} ${this.checksums ? `${r.checksum} ` : ''}${r.path}${r.target !== undefined ? ` -> ${r.target}` : ''}`,
    );
    this.print(lines.join('\n'));
    return 0;
  }
}
