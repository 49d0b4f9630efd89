// repodata/repomd.xml: the index of a yum repository's metadata files, with the checksum and size
// of each, which every later read is verified against.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArborError, CorruptionError, errnoCode, ioError } from '../../common/errors.js';
import {
  type Digest,
  type ParseContext,
  type XmlHandlers,
  parseCount,
  parseDigest,
  parseMetadataFile,
  resolveHref,
} from './metadata-file.js';

/** One `<data type="…">` entry. */
export interface RepomdData {
  /** primary, filelists, other, primary_db, group, updateinfo, modules… */
  readonly type: string;
  /** `href` is relative to the repository directory (checked: no '..', not absolute). */
  readonly location: { readonly href: string; readonly base: string | null };
  /** Of the file as stored (compressed). */
  readonly checksum: Digest;
  /** Of the decompressed content; null when not listed. */
  readonly openChecksum: Digest | null;
  readonly sizeBytes: number | null;
  readonly openSizeBytes: number | null;
  /** Seconds since the epoch; null when not listed. */
  readonly timestamp: number | null;
}

export interface Repomd {
  /** The repository directory, as given. */
  readonly dir: string;
  readonly revision: string | null;
  /** Every data entry by type, in file order. */
  readonly data: ReadonlyMap<string, RepomdData>;
  readonly primary: RepomdData;
  readonly filelists: RepomdData | null;
  readonly other: RepomdData | null;
}

/** `repodata/repomd.xml` of a repository directory. */
export const repomdPath = (dir: string): string => join(dir, 'repodata', 'repomd.xml');

type Fail = (message: string) => never;

interface Draft {
  type: string;
  href?: string;
  base: string | null;
  checksum?: Digest;
  openChecksum: Digest | null;
  sizeBytes: number | null;
  openSizeBytes: number | null;
  timestamp: number | null;
}

function repomdHandlers(
  dir: string,
  file: string,
  revision: { value: string | null },
  context: ParseContext<RepomdData>,
): XmlHandlers {
  const fail: Fail = context.fail;
  const stack: string[] = [];
  let draft: Draft | undefined;
  let text = '';
  let checksumType: string | undefined;
  const seen = new Set<string>();
  return {
    open(name, attributes) {
      text = '';
      const depth = stack.push(name);
      if (depth === 1 && name !== 'repomd') fail(`the root element is <${name}>, not <repomd>`);
      if (depth === 2 && name === 'data') {
        const type = attributes.type ?? fail('a <data> element has no type attribute');
        draft = { type, base: null, openChecksum: null, sizeBytes: null, openSizeBytes: null, timestamp: null };
      }
      if (depth === 3 && draft) {
        if (name === 'checksum' || name === 'open-checksum') checksumType = attributes.type;
        if (name === 'location') {
          draft.href = attributes.href ?? fail('a <location> element has no href attribute');
          draft.base = attributes['xml:base'] ?? null;
        }
      }
    },
    text(chunk) {
      text += chunk;
    },
    close(name) {
      const depth = stack.length;
      stack.pop();
      if (depth === 2 && name === 'revision') revision.value = text.trim();
      if (depth === 3 && draft) {
        if (name === 'checksum') draft.checksum = parseDigest(checksumType, text, file, fail);
        else if (name === 'open-checksum') draft.openChecksum = parseDigest(checksumType, text, file, fail);
        else if (name === 'size') draft.sizeBytes = parseCount(text, '<size>', fail);
        else if (name === 'open-size') draft.openSizeBytes = parseCount(text, '<open-size>', fail);
        else if (name === 'timestamp') draft.timestamp = parseCount(text, '<timestamp>', fail);
      }
      if (depth === 2 && name === 'data' && draft) {
        const { href, checksum, ...rest } = draft;
        if (href === undefined) fail(`<data type="${draft.type}"> has no <location>`);
        if (checksum === undefined) fail(`<data type="${draft.type}"> has no <checksum>`);
        if (seen.has(draft.type)) fail(`<data type="${draft.type}"> is listed twice`);
        seen.add(draft.type);
        resolveHref(dir, href, fail);
        context.emit({ ...rest, location: { href, base: draft.base }, checksum });
        draft = undefined;
      }
      text = '';
    },
    end() {},
  };
}

/**
 * Reads `DIR/repodata/repomd.xml`. Fails with E_REPODATA_MISSING when there is none, and with
 * E_REPODATA_INVALID (file and line named) when it does not parse, lists a type twice, or has no
 * primary entry.
 */
export async function readRepomd(dir: string): Promise<Repomd> {
  const path = repomdPath(dir);
  try {
    await stat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') {
      throw new ArborError('E_REPODATA_MISSING', `no repository metadata at '${path}'`, {
        hint: `make it with 'createrepo_c ${dir}', or check the path`,
        cause: error,
      });
    }
    throw ioError('read', path, error);
  }
  const data = new Map<string, RepomdData>();
  const revision = { value: null as string | null };
  await parseMetadataFile<RepomdData>(
    { path },
    (context) => repomdHandlers(dir, path, revision, context),
    (entry) => void data.set(entry.type, entry),
  );
  const primary = data.get('primary');
  if (primary === undefined) {
    throw new CorruptionError(
      'E_REPODATA_INVALID',
      `repodata '${path}' lists no primary metadata (<data type="primary">)`,
      {
        hint: `run 'createrepo_c ${dir}' again`,
      },
    );
  }
  return {
    dir,
    revision: revision.value,
    data,
    primary,
    filelists: data.get('filelists') ?? null,
    other: data.get('other') ?? null,
  };
}
