// What a composed commit records: the input hash --unless-changed compares, the version counted
// from the parent's, and the commit object with the treefile's metadata and the package list.
import { readFileSync } from 'node:fs';
import { ioError } from '../common/errors.js';
import { hashBytes } from '../common/hash.js';
import type { Checksum, Commit, MetadataValue } from '../repo/index.js';
import type { ComposeOptions } from './compose.js';
import { type Heads, headOf } from './compose-resolve.js';
import type { RpmHead } from './rpm/read.js';
import type { Candidate } from './solve/universe.js';
import type { Treefile } from './treefile.js';
import { readTreefileInput } from './treefile-input.js';

/** Bumped when the same inputs would make a different tree (so --unless-changed recomposes). */
const COMPOSE_FORMAT = 1;

/** The commit object: treefile metadata, version, input hash, package list, kernel version. */
export function composeCommit(
  treefile: Treefile,
  made: {
    parent: Checksum | null;
    version: string | null;
    inputHash: string;
    root: { tree: Checksum; meta: Checksum };
    packages: readonly Candidate[];
    heads: Heads;
    skipped: readonly string[];
    kernel: { version: string } | null;
  },
): Commit {
  const metadata = new Map<string, MetadataValue>();
  for (const [key, value] of treefile.addCommitMetadata) {
    metadata.set(
      key,
      typeof value === 'string'
        ? { type: 'string', value }
        : typeof value === 'number'
          ? { type: 'int', value }
          : { type: 'bool', value },
    );
  }
  if (made.version !== null) metadata.set('version', { type: 'string', value: made.version });
  metadata.set('arbor.compose.input-hash', { type: 'string', value: made.inputHash });
  metadata.set('arbor.packages', {
    type: 'strings',
    value: made.packages.map((c) => `${nevraWithEpoch(c)} ${headOf(made.heads, c).headerSha256}`),
  });
  if (made.skipped.length > 0)
    metadata.set('arbor.compose.scripts-skipped', { type: 'strings', value: [...made.skipped] });
  if (made.kernel) metadata.set('arbor.linux', { type: 'string', value: made.kernel.version });
  return {
    parent: made.parent,
    timestamp: Math.floor(Date.now() / 1000),
    subject: `${treefile.ref}${made.version !== null ? ` ${made.version}` : ''}`,
    body: `Composed from ${made.packages.length} packages.`,
    rootTree: made.root.tree,
    rootMeta: made.root.meta,
    metadata,
  };
}

const nevraWithEpoch = (c: Candidate): string =>
  `${c.pkg.name}-${c.pkg.epoch}:${c.pkg.version}-${c.pkg.release}.${c.pkg.arch}`;

/**
 * The input hash: the compose format, every treefile read (in include order), the options that
 * change the tree, and each chosen package's header digest, in install order.
 */
export function computeInputHash(treefile: Treefile, heads: readonly RpmHead[], options: ComposeOptions): string {
  const parts: Buffer[] = [Buffer.from(`arbor-compose ${COMPOSE_FORMAT}\0noScripts=${options.noScripts === true}\0`)];
  for (const source of treefile.sources) parts.push(Buffer.from(`${source.path}\0`), source.bytes, Buffer.from('\0'));
  if (treefile.postprocessScript !== null)
    parts.push(readTreefileInput(treefile.postprocessScript, `postprocess-script '${treefile.postprocessScript}'`));
  // Owner names the tree does not define come from these files, so they shape the tree too.
  for (const [flag, file] of [
    ['passwd', options.passwd],
    ['group', options.group],
  ] as const) {
    if (file === undefined) continue;
    try {
      parts.push(Buffer.from(`--${flag}\0`), readFileSync(file), Buffer.from('\0'));
    } catch (error) {
      throw ioError('read', file, error);
    }
  }
  for (const head of heads) parts.push(Buffer.from(`${head.headerSha256}\0`));
  return hashBytes(...parts);
}

/**
 * The commit's version: the treefile's `version`, or `automatic-version-prefix` counted up from
 * the parent's version as rpm-ostree does (PREFIX, then PREFIX.1, PREFIX.2...).
 */
export function nextVersion(
  treefile: Pick<Treefile, 'version' | 'automaticVersionPrefix'>,
  parentMeta: ReadonlyMap<string, MetadataValue> | null,
): string | null {
  if (treefile.version !== null) return treefile.version;
  const prefix = treefile.automaticVersionPrefix;
  if (prefix === null) return null;
  const last = parentMeta?.get('version');
  const previous = last?.type === 'string' ? last.value : null;
  if (previous === null || (previous !== prefix && !previous.startsWith(`${prefix}.`))) return prefix;
  if (previous === prefix) return `${prefix}.1`;
  const n = Number(previous.slice(prefix.length + 1));
  return Number.isInteger(n) ? `${prefix}.${n + 1}` : `${prefix}.1`;
}
