// Postprocessing a composed tree into the shape an image-based OS boots (like rpm-ostree's):
// /etc becomes /usr/etc (the defaults a deployment's /etc is merged from), what packages put in
// /var becomes systemd-tmpfiles entries (/var belongs to the machine, not the image), and the
// top-level directories that hold machine state become symlinks into /var. All by object ids.
import { ArborError } from '../common/errors.js';
import {
  type Checksum,
  DEFAULT_DIR_META,
  type Transaction,
  TreeEditor,
  encodeDirMeta,
  encodeDirTree,
  isSymlink,
} from '../repo/index.js';

/** Top-level paths that become symlinks, and their targets (relative, as rpm-ostree makes them). */
const STATE_LINKS: readonly (readonly [path: string, target: string, varDir: string])[] = [
  ['/home', 'var/home', '/var/home'],
  ['/opt', 'var/opt', '/var/opt'],
  ['/srv', 'var/srv', '/var/srv'],
  ['/mnt', 'var/mnt', '/var/mnt'],
  ['/root', 'var/roothome', '/var/roothome'],
];

/** Where the generated entries for /var go. */
export const VAR_TMPFILES = '/usr/lib/tmpfiles.d/arbor-var.conf';

export interface PostprocessReport {
  /** tmpfiles.d lines written for what packages had under /var. */
  readonly tmpfilesLines: number;
  /** Regular files under /var that tmpfiles.d cannot recreate: dropped, and listed here. */
  readonly droppedVarFiles: string[];
}

/** tmpfiles.d(5) fields may be quoted, with C-style escapes inside: used for paths with blanks or quotes. */
function tmpfilesPath(path: string): string {
  return /[\s"'\\]/.test(path) ? `"${path.replace(/["\\]/g, (c) => `\\${c}`)}"` : path;
}

export function postprocessTree(tx: Transaction, edit: TreeEditor): PostprocessReport {
  // /etc → /usr/etc
  if (edit.get('/etc')) {
    if (edit.get('/usr/etc'))
      throw new ArborError('E_COMPOSE_LAYOUT', 'the tree has both /etc and /usr/etc; a package must not ship /usr/etc');
    edit.move('/etc', '/usr/etc');
  }
  // State directories: their content moves under /var (and from there into tmpfiles.d), they become links.
  for (const [path, target, varDir] of STATE_LINKS) {
    const entry = edit.get(path);
    if (entry?.kind === 'dir') {
      if (!edit.get(varDir)) edit.move(path, varDir);
      else edit.remove(path);
    } else if (entry) edit.remove(path);
    edit.symlink(path, target);
    // The link's target must exist on the booted system even when no package shipped the directory.
    if (!edit.get(varDir)) {
      const meta = { ...DEFAULT_DIR_META, mode: varDir === '/var/roothome' ? 0o040700 : DEFAULT_DIR_META.mode };
      edit.set(varDir, {
        kind: 'dir',
        tree: tx.writeMetadata('dirtree', encodeDirTree({ files: [], dirs: [] })),
        meta: tx.writeMetadata('dirmeta', encodeDirMeta(meta)),
      });
    }
  }
  const { lines, dropped } = varToTmpfiles(tx, edit);
  if (lines.length > 0)
    edit.writeFile(
      VAR_TMPFILES,
      Buffer.from(`# Made by arbor compose from what packages put in /var.\n${lines.join('\n')}\n`),
    );
  return { tmpfilesLines: lines.length, droppedVarFiles: dropped };
}

/**
 * Takes everything out of /var, returning tmpfiles.d(5) lines that recreate its directories and
 * symlinks (parents first) and the paths of what they cannot express (regular files, devices,
 * fifos), which are dropped.
 */
export function varToTmpfiles(tx: Transaction, edit: TreeEditor): { lines: string[]; dropped: string[] } {
  const lines: string[] = [];
  const dropped: string[] = [];
  const visit = (path: string): void => {
    const listing = edit.list(path);
    if (!listing) return;
    for (const name of [...listing.dirs].sort()) {
      const child = `${path}/${name}`;
      const entry = edit.get(child);
      if (entry?.kind !== 'dir') continue;
      const meta = edit.dirMeta(entry.meta);
      lines.push(
        `d ${tmpfilesPath(child)} ${(meta.mode & 0o7777).toString(8).padStart(4, '0')} ${meta.uid} ${meta.gid} - -`,
      );
      visit(child);
    }
    for (const name of [...listing.files].sort()) {
      const child = `${path}/${name}`;
      const entry = edit.get(child);
      if (entry?.kind !== 'file') continue;
      const header = tx.readFileHeader(entry.checksum as Checksum);
      if (isSymlink(header.mode)) lines.push(`L ${tmpfilesPath(child)} - - - - ${header.symlinkTarget}`);
      else dropped.push(child); // regular files, device nodes, fifos
    }
  };
  if (edit.get('/var')?.kind === 'dir') {
    visit('/var');
    for (const name of edit.list('/var')?.dirs ?? []) edit.remove(`/var/${name}`);
    for (const name of edit.list('/var')?.files ?? []) edit.remove(`/var/${name}`);
  }
  return { lines, dropped };
}
