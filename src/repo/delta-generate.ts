// Generating a static delta FROM→TO (or from scratch): every object of TO that FROM lacks becomes
// one operation — metadata as is, a file as new content, as a copy of an old object's content
// (only its header changed), or as a zstd patch against its previous version (same path, else the
// best same-named file among paths that went away), cut into windows each patched against a range
// of the old content. Operations are packed into compressed parts.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Compressor, type CompressParameters } from 'zstd-napi';
import { ArborError, ioError } from '../common/errors.js';
import { type Checksum, hashBytes } from '../common/hash.js';
import { fsyncDir } from '../common/fs-atomic.js';
import { native } from '../common/native.js';
import { type ContentStream, SlidingRange, openContentStream } from './content-stream.js';
import {
  PATCH_SLACK_BYTES,
  PATCH_WINDOW_BYTES,
  type WindowPlan,
  ZSTD_DICT_MAGIC,
  planPatchWindows,
} from './delta-window.js';
import {
  type DeltaOp,
  type DeltaPartInfo,
  DeltaPartWriter,
  type PatchWindow,
  encodeCommitMeta,
  encodeSuperblock,
  isRegular,
} from './objects/index.js';
import type { Repo } from './store.js';

export interface GenerateOptions {
  readonly from: Checksum | null;
  readonly to: Checksum;
  /** Put the parts inside the superblock (one file to fetch; for small deltas). */
  readonly inline?: boolean;
  /** Start a new part once one holds this many bytes of operations (default DEFAULT_PART_BYTES). */
  readonly maxChunkBytes?: number;
  /** zstd level of parts other than patches (default 19). */
  readonly level?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface GenerateReport {
  readonly dir: string;
  readonly superblock: Checksum;
  /** Bytes of superblock and parts. */
  readonly size: number;
  readonly parts: number;
  readonly ops: { meta: number; new: number; copy: number; patch: number };
  /** Content bytes of the new files, before patching and compression. */
  readonly contentBytes: number;
}

/** The directory of a delta inside a repository. */
function deltaDirName(from: Checksum | null, to: Checksum): string {
  return from === null ? to : `${from}-${to}`;
}

interface TreeIndex {
  /** Every dirtree and dirmeta. */
  readonly meta: Map<Checksum, 'dirtree' | 'dirmeta'>;
  /** Path → file object. */
  readonly files: Map<string, Checksum>;
  /** File object → content size, as the dirtrees record it. */
  readonly sizes: Map<Checksum, number>;
}

function indexTree(repo: Repo, commit: Checksum): TreeIndex {
  const c = repo.readCommit(commit);
  const index: TreeIndex = { meta: new Map(), files: new Map(), sizes: new Map() };
  const seenTrees = new Map<Checksum, string>();
  const walk = (tree: Checksum, meta: Checksum, prefix: string): void => {
    index.meta.set(meta, 'dirmeta');
    index.meta.set(tree, 'dirtree');
    const dir = repo.readDirTree(tree);
    seenTrees.set(tree, prefix);
    for (const f of dir.files) {
      index.files.set(`${prefix}${f.name}`, f.checksum);
      index.sizes.set(f.checksum, f.size);
    }
    for (const d of dir.dirs) walk(d.tree, d.meta, `${prefix}${d.name}/`);
  };
  walk(c.rootTree, c.rootMeta, '/');
  return index;
}

const basename = (path: string): string => path.slice(path.lastIndexOf('/') + 1);
/** A name with its version numbers blotted out: `vmlinuz-6.1.0-13-amd64` → `vmlinuz-#.#.#-#-amd#`. */
const stem = (path: string): string => basename(path).replace(/[0-9]+/g, '#');

/** How alike two paths are: shared trailing components first, then shared leading ones. */
function pathLikeness(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  let tail = 0;
  while (tail < pa.length && tail < pb.length && pa[pa.length - 1 - tail] === pb[pb.length - 1 - tail]) tail++;
  let head = 0;
  while (head < pa.length && head < pb.length && pa[head] === pb[head]) head++;
  return tail * 1000 + head;
}

/** zstd "patch-from" settings sized to a window: the zstd window must span its source range and its output. */
function patchParameters(sourceBytes: number, newBytes: number): CompressParameters {
  const windowLog = Math.min(30, Math.max(17, Math.ceil(Math.log2(sourceBytes + newBytes + 1))));
  // Match tables must index the whole source range, or most of it is never found (a 58 MB pair:
  // 27 MB patch with 2^24 entries, 6 MB with 2^26). Ranges are bounded, and so are the tables.
  const tableLog = Math.min(26, Math.max(17, Math.ceil(Math.log2(sourceBytes + 1))));
  return {
    compressionLevel: 9,
    windowLog,
    hashLog: tableLog,
    chainLog: tableLog,
    strategy: 'lazy2',
    // Long-distance matching finds the new window's repeats within itself before the source's
    // longer matches: on a 320 MB library with a few bytes changed, patches 13 times bigger.
    enableLongDistanceMatching: false,
    contentSizeFlag: true,
    checksumFlag: false,
  };
}

/** The smallest files worth patching: below this, compressed new content is as small. */
const MIN_PATCH_BYTES = 512;

/**
 * Files (or their sources) bigger than this are patched as streams, a window at a time: held whole,
 * a 300 MB library and its old version took 1 GB of a generator's memory.
 */
const STREAM_MIN_BYTES = 16 * 1024 * 1024;

/**
 * Operations per part unless told otherwise: a client holds one part's body and zstd's window for
 * it while it applies the part, so this bounds a delta pull's memory (small parts cost little size).
 */
const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

export async function generateDelta(repo: Repo, options: GenerateOptions): Promise<GenerateReport> {
  const maxChunk = options.maxChunkBytes ?? DEFAULT_PART_BYTES;
  const toCommitBytes = repo.readMetadataBytes(options.to, 'commit');
  const to = indexTree(repo, options.to);
  const from: TreeIndex =
    options.from === null ? { meta: new Map(), files: new Map(), sizes: new Map() } : indexTree(repo, options.from);
  const fromObjects = new Set<Checksum>(from.files.values());

  // Candidate sources among old paths that no longer exist: a renamed directory (a new kernel
  // version's modules) keeps its files' names; a versioned name (vmlinuz-6.1.0-13) keeps its stem.
  const goneByName = new Map<string, string[]>();
  const goneByStem = new Map<string, string[]>();
  const remember = (map: Map<string, string[]>, key: string, path: string): void => {
    const list = map.get(key);
    if (list) list.push(path);
    else map.set(key, [path]);
  };
  for (const path of from.files.keys()) {
    if (to.files.has(path)) continue;
    remember(goneByName, basename(path), path);
    remember(goneByStem, stem(path), path);
  }
  const closest = (candidates: readonly string[] | undefined, path: string): Checksum | undefined => {
    const [first, ...rest] = candidates ?? [];
    if (first === undefined) return undefined;
    let best = first;
    for (const c of rest) if (pathLikeness(c, path) > pathLikeness(best, path)) best = c;
    return from.files.get(best);
  };
  /** The old object to patch from: the same path, else a gone path with the same name, else the same stem. */
  const sourceFor = (paths: readonly string[]): Checksum | undefined => {
    for (const p of paths) {
      const same = from.files.get(p);
      if (same !== undefined) return same;
    }
    for (const p of paths) {
      const byName = closest(goneByName.get(basename(p)), p);
      if (byName !== undefined) return byName;
    }
    for (const p of paths) {
      const byStem = closest(goneByStem.get(stem(p)), p);
      if (byStem !== undefined) return byStem;
    }
    return undefined;
  };

  const deltasDir = join(repo.path, 'deltas');
  const name = deltaDirName(options.from, options.to);
  const finalDir = join(deltasDir, name);
  const workDir = join(deltasDir, `.tmp-${name.slice(0, 16)}-${process.pid}`);
  rmSync(workDir, { recursive: true, force: true });
  try {
    mkdirSync(workDir, { recursive: true });
  } catch (error) {
    throw ioError('create delta directory', workDir, error);
  }

  const parts: DeltaPartInfo[] = [];
  const ops = { meta: 0, new: 0, copy: 0, patch: 0 };
  let contentBytes = 0;
  // Two streams of parts: patches are zstd frames already and only cost time to compress again,
  // so they go to parts compressed at level 1; everything else gets the chosen level.
  const writers = { dense: new DeltaPartWriter(), patches: new DeltaPartWriter() };
  const partCompressor = new Compressor();
  const flush = (which: keyof typeof writers): void => {
    const writer = writers[which];
    if (writer.objects === 0) return;
    const body = writer.finish();
    const level = which === 'patches' ? 1 : (options.level ?? 19);
    partCompressor.setParameters({
      compressionLevel: level,
      windowLog: Math.min(27, Math.max(20, Math.ceil(Math.log2(body.length + 1)))),
      contentSizeFlag: true,
    });
    const stored = partCompressor.compress(body);
    const index = parts.length;
    if (!options.inline) writeFileSync(join(workDir, String(index)), stored);
    parts.push({
      checksum: hashBytes(stored),
      size: stored.length,
      uncompressedSize: body.length,
      objects: writer.objects,
      inline: options.inline ? stored : null,
    });
    writers[which] = new DeltaPartWriter();
  };
  const add = (op: DeltaOp): void => {
    const which = op.op === 'patch' ? 'patches' : 'dense';
    writers[which].add(op);
    if (writers[which].length >= maxChunk) flush(which);
  };

  try {
    for (const [checksum, kind] of to.meta) {
      if (from.meta.has(checksum)) continue;
      add({ op: 'meta', kind, bytes: repo.readMetadataBytes(checksum, kind) });
      ops.meta++;
    }
    // Each new file object once, with every path it has in the new tree.
    const newFiles = new Map<Checksum, string[]>();
    for (const [path, checksum] of to.files) {
      if (fromObjects.has(checksum)) continue;
      const paths = newFiles.get(checksum);
      if (paths) paths.push(path);
      else newFiles.set(checksum, [path]);
    }
    let done = 0;
    const patcher = new Compressor();
    for (const [checksum, paths] of newFiles) {
      const size = to.sizes.get(checksum) ?? 0;
      const sourceSum = size >= MIN_PATCH_BYTES ? sourceFor(paths) : undefined;
      const big = sourceSum !== undefined && Math.max(size, from.sizes.get(sourceSum) ?? 0) > STREAM_MIN_BYTES;
      const op =
        (big ? bigFileOp(repo, patcher, checksum, sourceSum) : null) ??
        fileOp(repo, patcher, checksum, big ? undefined : sourceSum);
      contentBytes += op.header.size;
      add(op);
      ops[op.op]++;
      options.onProgress?.(++done, newFiles.size);
    }
    flush('dense');
    flush('patches');
    const commitMeta = repo.hasObject(options.to, 'commitmeta') ? readCommitMetaBytes(repo, options.to) : null;
    const superblock = encodeSuperblock({
      from: options.from,
      to: options.to,
      commit: toCommitBytes,
      commitMeta,
      parts,
      metadata: new Map([['arbor.generated', { type: 'int', value: Math.floor(Date.now() / 1000) }]]),
    });
    writeFileSync(join(workDir, 'superblock'), superblock);
    native.syncfs(workDir);
    rmSync(finalDir, { recursive: true, force: true });
    renameSync(workDir, finalDir);
    fsyncDir(deltasDir);
    const size = superblock.length + (options.inline ? 0 : parts.reduce((n, p) => n + p.size, 0));
    return { dir: finalDir, superblock: hashBytes(superblock), size, parts: parts.length, ops, contentBytes };
  } catch (error) {
    rmSync(workDir, { recursive: true, force: true });
    if (error instanceof ArborError) throw error;
    throw ioError('write delta', workDir, error);
  }
}

/** The operation that rebuilds one file object. */
type FileDeltaOp = Exclude<DeltaOp, { op: 'meta' }>;

/** Ranges of a file's content by offset and size: views of a buffer, or of a stream read in order. */
type ContentRange = (offset: number, size: number) => Buffer;

/** A patch is kept when it beats the content clearly (parts compress new content too). */
const worthPatching = (windows: readonly PatchWindow[], contentBytes: number): boolean =>
  windows.reduce((n, w) => n + w.frame.length, 0) < contentBytes / 2;

/**
 * The operation for a file held in memory: a copy when its content is the source's, a patch when
 * that is small, else new content.
 */
function fileOp(repo: Repo, patcher: Compressor, checksum: Checksum, sourceSum: Checksum | undefined): FileDeltaOp {
  const { header, content } = repo.loadFile(checksum);
  if (sourceSum !== undefined && isRegular(header.mode)) {
    const source = repo.loadFile(sourceSum);
    if (isRegular(source.header.mode)) {
      if (source.content.equals(content)) return { op: 'copy', checksum, header, source: sourceSum };
      if (source.content.length > 0 && !source.content.subarray(0, 4).equals(ZSTD_DICT_MAGIC)) {
        const windows = patchWindows(
          patcher,
          (offset, size) => source.content.subarray(offset, offset + size),
          (offset, size) => content.subarray(offset, offset + size),
          source.content.length,
          content.length,
        );
        if (worthPatching(windows, content.length))
          return { op: 'patch', checksum, header, source: sourceSum, windows };
      }
    }
  }
  return { op: 'new', checksum, header, content };
}

/**
 * The copy or patch operation for a big file, reading it and its source in order, a window and a
 * source range at a time (memory holds those, never the files); null when new content is better.
 */
function bigFileOp(repo: Repo, patcher: Compressor, checksum: Checksum, sourceSum: Checksum): FileDeltaOp | null {
  const open = (): [ContentStream, ContentStream] | null => {
    const content = openContentStream(repo, checksum);
    const source = content && openContentStream(repo, sourceSum);
    if (source) return [content, source];
    content?.close();
    return null;
  };
  let streams = open();
  if (streams === null) return null;
  try {
    const [content, source] = streams;
    const { header } = content;
    if (header.size === source.header.size) {
      if (sameContent(content, source)) {
        content.verify();
        source.verify();
        return { op: 'copy', checksum, header, source: sourceSum };
      }
      for (const s of streams) s.close();
      streams = open();
      if (streams === null) return null;
    }
    const [newer, older] = streams;
    if (older.header.size === 0) return null;
    const sourceRange = new SlidingRange(older, PATCH_WINDOW_BYTES + 2 * PATCH_SLACK_BYTES);
    const contentRange = new SlidingRange(newer, PATCH_WINDOW_BYTES);
    const windows = patchWindows(
      patcher,
      (offset, size) => sourceRange.range(offset, size),
      (offset, size) => contentRange.range(offset, size),
      older.header.size,
      header.size,
    );
    // Every byte of both is read and hashed, so the patch rebuilds what the checksum names.
    newer.verify();
    older.verify();
    return worthPatching(windows, header.size) ? { op: 'patch', checksum, header, source: sourceSum, windows } : null;
  } finally {
    for (const s of streams ?? []) s.close();
  }
}

/** Reads two streams of the same size until they differ; true when they never do. */
function sameContent(a: ContentStream, b: ContentStream): boolean {
  const step = 1024 * 1024;
  const [x, y] = [Buffer.allocUnsafe(step), Buffer.allocUnsafe(step)];
  for (;;) {
    const n = a.read(x);
    if (b.read(y) !== n || !x.subarray(0, n).equals(y.subarray(0, n))) return false;
    if (n < step) return true;
  }
}

/** Patches `contentSize` bytes against `sourceSize` window by window (see delta-window.ts). */
function patchWindows(
  patcher: Compressor,
  source: ContentRange,
  content: ContentRange,
  sourceSize: number,
  contentSize: number,
): PatchWindow[] {
  return planPatchWindows(sourceSize, contentSize).map((plan) => {
    let dictionary = source(plan.sourceOffset, plan.sourceSize);
    let { sourceOffset } = plan;
    const output = content(plan.outputOffset, plan.outputSize);
    const verbatim = verbatimAt(dictionary, plan, output);
    if (verbatim !== null) {
      // The window is old bytes unchanged: its frame needs only them, and finds them at once.
      dictionary = dictionary.subarray(verbatim, verbatim + output.length);
      sourceOffset += verbatim;
      patcher.setParameters(verbatimParameters(output.length));
    } else {
      // A range starting with the dictionary magic would be read as a formatted dictionary: skip a byte.
      if (dictionary.subarray(0, 4).equals(ZSTD_DICT_MAGIC)) {
        dictionary = dictionary.subarray(1);
        sourceOffset++;
      }
      patcher.setParameters(patchParameters(dictionary.length, output.length));
    }
    patcher.loadDictionary(dictionary);
    return { sourceOffset, sourceSize: dictionary.length, outputSize: output.length, frame: patcher.compress(output) };
  });
}

/**
 * Where in its source range a window's content sits unchanged, at the same offset as in the new
 * content (the file grew at its end, or only changed elsewhere) or at its proportional position;
 * null when it does not.
 */
function verbatimAt(range: Buffer, plan: WindowPlan, output: Buffer): number | null {
  for (const at of new Set([plan.outputOffset - plan.sourceOffset, plan.center - plan.sourceOffset])) {
    const candidate = range.subarray(at, at + output.length);
    if (at < 0 || candidate.length !== output.length || candidate.subarray(0, 4).equals(ZSTD_DICT_MAGIC)) continue;
    if (candidate.equals(output)) return at;
  }
  return null;
}

/**
 * Settings for a window that is its dictionary verbatim: the quickest that still index all of it
 * (zstd loads at most the last 2^(hashLog + 3) bytes of a dictionary). A 4 MiB window costs about
 * a fifth of the CPU of patchParameters, for a frame of a few hundred bytes either way.
 */
function verbatimParameters(size: number): CompressParameters {
  const tableLog = Math.min(26, Math.max(17, Math.ceil(Math.log2(size + 1)) - 3));
  return {
    compressionLevel: 3,
    windowLog: Math.min(30, Math.max(17, Math.ceil(Math.log2(2 * size + 1)))),
    hashLog: tableLog,
    chainLog: tableLog,
    strategy: 'dfast',
    enableLongDistanceMatching: false,
    contentSizeFlag: true,
    checksumFlag: false,
  };
}

function readCommitMetaBytes(repo: Repo, checksum: Checksum): Buffer | null {
  const meta = repo.readCommitMeta(checksum);
  if (meta.size === 0) return null;
  return encodeCommitMeta(meta);
}
