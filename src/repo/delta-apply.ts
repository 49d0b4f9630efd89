// Applying a static delta: check the superblock against the summary (or, offline, the commit it
// carries), check each part's checksum before reading a byte of it (refetching once), inflate it no
// further than the superblock says, rebuild every object from the operations and verify it against
// its name, then check the target tree is whole and its file sizes are what its dirtrees record.
// A patched file is rebuilt one window at a time into a staged file, hashed as it is written.
import { closeSync, constants, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { InflateError, frameContentSize, inflateBounded, inflateInto, inflateWindow } from './bounded-inflate.js';
import { PATCH_SLACK_BYTES, PATCH_WINDOW_BYTES, ZSTD_DICT_MAGIC } from './delta-window.js';
import { ArborError, CorruptionError, ioError, present } from '../common/errors.js';
import { type Checksum, StreamHasher, hashBytes } from '../common/hash.js';
import {
  ChecksumList,
  type Commit,
  type DeltaOp,
  type DeltaPartInfo,
  type DirTreeFile,
  DELTA_FORMAT_VERSION,
  type FileHeader,
  type PatchWindow,
  type Superblock,
  TRANSFER_TAG,
  decodeCommit,
  decodeCommitMeta,
  decodeDirMeta,
  decodeDirTree,
  decodeSuperblock,
  encodeFileHeader,
  isRegular,
  readDeltaPart,
} from './objects/index.js';
import { hashFile } from './object-writer.js';
import { checkCommitSignatures, requireTrustedSignature } from './sign.js';
import type { Transaction } from './transaction.js';
import { corruptObject, storeMetadata } from './verify-store.js';

export interface DeltaInput {
  /** Superblock checksum from a (verified) summary, or null offline. */
  readonly expectedSuperblock: Checksum | null;
  /** The commits the summary lists the delta between: the superblock must say the same. */
  readonly expected?: { readonly from: Checksum | null; readonly to: Checksum };
  readonly where: string;
  superblock(): Promise<Buffer>;
  /**
   * The stored part, refusing more than `maxBytes` (its size in the superblock); it may be received
   * into `into` (at least maxBytes long), which the caller reuses for the next part.
   */
  part(index: number, maxBytes: number, into?: Buffer): Promise<Buffer>;
  partWhere(index: number): string;
  /** Trusted keys when the target commit must be signed. */
  readonly trustedKeys: readonly Buffer[] | null;
  /** The server's current detached metadata of the target (it may have been signed after the delta was made). */
  readonly commitMeta?: Buffer | null;
  /** The target, for messages. */
  readonly what: string;
  onObject?(): void;
}

export interface DeltaApplied {
  readonly from: Checksum | null;
  readonly to: Checksum;
  readonly objects: number;
  readonly signedBy: string | null;
}

export async function applyDelta(tx: Transaction, input: DeltaInput): Promise<DeltaApplied> {
  const sb = await fetchSuperblock(input);
  if (input.expected && (sb.from !== input.expected.from || sb.to !== input.expected.to)) {
    // A superblock of another delta, even one that hashes right, must not become this ref's commit.
    throw new CorruptionError(
      'E_DELTA_CORRUPT',
      `${input.where} is a delta from ${sb.from ?? 'scratch'} to ${sb.to}, but the summary lists it as from ${input.expected.from ?? 'scratch'} to ${input.expected.to}`,
      {
        hint: "the server's summary and deltas disagree: regenerate the summary there",
      },
    );
  }
  const repo = tx.repo;
  if (sb.from !== null && (!repo.hasObject(sb.from, 'commit') || repo.db.isPartial(sb.from))) {
    throw new ArborError(
      'E_DELTA_FROM_MISSING',
      `the delta applies to commit ${sb.from}, which is not complete in this repository`,
      { hint: 'pull that commit first, or use a delta from scratch' },
    );
  }
  const commitChecksum = hashBytes(sb.commit);
  if (commitChecksum !== sb.to)
    throw new CorruptionError(
      'E_DELTA_CORRUPT',
      `${input.where}: the commit it carries hashes to ${commitChecksum}, not ${sb.to}`,
    );
  let commit: Commit;
  try {
    commit = decodeCommit(sb.commit, `commit ${sb.to} in ${input.where}`);
  } catch (error) {
    throw new CorruptionError('E_DELTA_CORRUPT', (error as Error).message);
  }
  let signedBy: string | null = null;
  const metaBytes = input.commitMeta ?? sb.commitMeta;
  let meta: ReturnType<typeof decodeCommitMeta> = new Map();
  try {
    if (metaBytes) meta = decodeCommitMeta(metaBytes, `commitmeta of ${sb.to}`);
  } catch (error) {
    throw corruptObject(`commitmeta of ${sb.to}`, input.where, `is malformed: ${(error as Error).message}`);
  }
  if (input.trustedKeys)
    signedBy = requireTrustedSignature(checkCommitSignatures(meta, sb.to, input.trustedKeys), input.what);
  tx.repo.db.markPartial(sb.to);

  let objects = 0;
  const scratch: Scratch = { stored: EMPTY, body: EMPTY, out: EMPTY, dictionary: EMPTY };
  const largest = (sizes: number[]): number => Math.min(MAX_REUSED_PART_BYTES, Math.max(0, ...sizes));
  const floors = {
    stored: largest(sb.parts.map((p) => (p.inline ? 0 : p.size))),
    body: largest(sb.parts.map((p) => p.uncompressedSize)),
  };
  /** Content sizes of the file objects the parts rebuilt, checked against the new dirtrees. */
  const sizes = new Map<Checksum, number>();
  // Fetch the next part while this one is applied.
  const fetchAt = (index: number): Promise<Buffer> | undefined => {
    const info = sb.parts[index];
    if (info === undefined) return undefined;
    // One buffer receives every part in turn (the next is fetched once this one is inflated); a size
    // claimed beyond what generators make is received as it arrives instead of allocated up front.
    const into =
      info.inline || info.size > MAX_REUSED_PART_BYTES
        ? undefined
        : scratchOf(scratch, 'stored', info.size, floors.stored);
    return fetchPart(input, info, index, into);
  };
  let next = fetchAt(0);
  for (const [i, info] of sb.parts.entries()) {
    const body = inflatePart(
      await present(next, `the fetch of delta part ${i}`),
      info,
      input.partWhere(i),
      i,
      scratch,
      floors.body,
    );
    // The compressed part is no longer needed: the next one may be received into its buffer.
    next = fetchAt(i + 1);
    next?.catch(() => undefined); // surfaced when awaited
    try {
      let inPart = 0;
      for (const op of readDeltaPart(body, `part ${i} of ${input.where}`)) {
        applyOp(tx, op, input.partWhere(i), scratch);
        if (op.op !== 'meta') sizes.set(op.checksum, op.header.size);
        inPart++;
        input.onObject?.();
      }
      if (inPart !== info.objects)
        throw new CorruptionError(
          'E_DELTA_CORRUPT',
          `${input.partWhere(i)}: part ${i} holds ${inPart} objects, the superblock says ${info.objects}`,
        );
      objects += inPart;
    } catch (error) {
      if (error instanceof CorruptionError && error.code === 'E_OBJECT_MALFORMED')
        throw new CorruptionError('E_DELTA_CORRUPT', error.message);
      throw error;
    }
  }
  // Dropped before the tree walk below, whose garbage may then reuse their memory.
  scratch.stored = scratch.body = scratch.out = scratch.dictionary = EMPTY;
  storeMetadata(tx, sb.to, 'commit', sb.commit, input.where);
  assertComplete(tx, commit, sizes, input.where);
  if (metaBytes) {
    tx.checkpoint();
    repo.writeCommitMeta(sb.to, meta);
  }
  return { from: sb.from, to: sb.to, objects, signedBy };
}

async function fetchSuperblock(input: DeltaInput): Promise<Superblock> {
  for (let attempt = 1; ; attempt++) {
    const bytes = await input.superblock();
    const actual = hashBytes(bytes);
    if (input.expectedSuperblock === null || actual === input.expectedSuperblock) {
      assertDeltaVersion(bytes, input.where);
      try {
        return decodeSuperblock(bytes, input.where);
      } catch (error) {
        throw new CorruptionError('E_DELTA_CORRUPT', (error as Error).message);
      }
    }
    if (attempt >= 2)
      throw new CorruptionError(
        'E_DELTA_CORRUPT',
        `${input.where} hashes to ${actual}, the summary says ${input.expectedSuperblock} (fetched twice)`,
        { hint: "the server's summary and deltas disagree: regenerate the summary there" },
      );
  }
}

/** A delta of another format version is refused as such, not as corrupt: it needs another arbor or a regeneration. */
function assertDeltaVersion(superblock: Buffer, where: string): void {
  const version = superblock[1];
  if (superblock[0] !== TRANSFER_TAG.superblock || version === undefined || version === DELTA_FORMAT_VERSION) return;
  throw new ArborError(
    'E_DELTA_VERSION',
    `${where} is a delta of format version ${version}, this arbor reads version ${DELTA_FORMAT_VERSION}`,
    { hint: 'regenerate the delta with this arbor on the server, or pull with --disable-static-deltas' },
  );
}

/**
 * Buffers reused by every part and patch of one delta: fresh ones of this size per part or patched
 * file would each linger as garbage until V8 collects it, which is what a delta pull's peak was made of.
 */
interface Scratch {
  stored: Buffer;
  body: Buffer;
  out: Buffer;
  dictionary: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Compressed parts up to this size are received into the reused buffer. */
const MAX_REUSED_PART_BYTES = 64 * 1024 * 1024;

/**
 * The first `size` bytes of the scratch buffer `which`, grown (never shrunk) to hold them. A buffer
 * grows at once to at least `floor`, what the delta's parts or this generator's windows need: grown
 * op by op instead, the buffers it outgrew would be garbage adding up to more than the final one.
 * Pages of an allocUnsafe buffer cost memory only once written.
 */
function scratchOf(scratch: Scratch, which: keyof Scratch, size: number, floor = 0): Buffer {
  if (scratch[which].length < size) scratch[which] = Buffer.allocUnsafe(Math.max(size, floor));
  return scratch[which].subarray(0, size);
}

/**
 * A part's body, in the scratch buffer when the frame declares its size (its operations must be
 * applied before the next part is inflated). The compressed bytes are garbage once it returns.
 * The declared size is checked before a byte is inflated, and inflation stops at the limit.
 */
function inflatePart(
  stored: Buffer,
  info: DeltaPartInfo,
  where: string,
  index: number,
  scratch: Scratch,
  floor: number,
): Buffer {
  try {
    if (frameContentSize(stored) !== info.uncompressedSize)
      return inflateBounded(stored, info.uncompressedSize, { exact: true });
    const body = scratchOf(scratch, 'body', info.uncompressedSize, floor);
    inflateInto(stored, body);
    return body;
  } catch (error) {
    if (!(error instanceof InflateError)) throw error;
    throw new CorruptionError(
      'E_DELTA_CORRUPT',
      `${where}: part ${index} ${error.message} (the superblock's uncompressed size)`,
    );
  }
}

/** A part whose bytes do not match the superblock is fetched once more, and never applied. */
async function fetchPart(
  input: DeltaInput,
  info: DeltaPartInfo,
  index: number,
  into: Buffer | undefined,
): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    const bytes = info.inline ?? (await input.part(index, info.size, into));
    const actual = hashBytes(bytes);
    if (actual === info.checksum && bytes.length === info.size) return bytes;
    if (attempt >= 2 || info.inline) {
      throw new CorruptionError(
        'E_DELTA_CORRUPT',
        `delta part ${input.partWhere(index)} is corrupt: ${bytes.length} bytes hashing to ${actual}, the superblock says ${info.size} bytes, ${info.checksum} (fetched ${attempt} times)`,
        {
          hint: 'nothing of it was applied; run the pull again, or with --disable-static-deltas',
        },
      );
    }
  }
}

function applyOp(tx: Transaction, op: DeltaOp, where: string, scratch: Scratch): void {
  if (op.op === 'meta') {
    // Decoded before it is stored: a malformed dirtree must not wait for fsck to be found.
    if (op.kind === 'dirtree') decodeDirTree(op.bytes, `dirtree in ${where}`);
    else decodeDirMeta(op.bytes, `dirmeta in ${where}`);
    tx.writeMetadata(op.kind, op.bytes);
    return;
  }
  if (tx.has(op.checksum, 'file')) return;
  const headerBytes = encodeFileHeader(op.header);
  if (op.op === 'new') {
    storeVerified(tx, op.checksum, op.header, headerBytes, op.content, where);
    return;
  }
  const repo = tx.repo;
  if (op.op === 'copy' && repo.mode !== 'archive' && isRegular(op.header.mode)) {
    // The content is the source object's file itself: let the kernel copy it.
    const sourceHeader = repo.readFileHeader(op.source);
    if (!isRegular(sourceHeader.mode))
      throw corruptObject(`file ${op.checksum}`, where, `is copied from ${op.source}, which is not a regular file`);
    const path = repo.objectPath(op.source, 'file');
    const actual = hashFile(path, headerBytes, op.header.size).checksum;
    if (actual !== op.checksum)
      throw corruptObject(`file ${op.checksum}`, where, `rebuilt from ${op.source} hashes to ${actual}`);
    tx.writeFile(op.checksum, op.header, { path });
    return;
  }
  if (op.op === 'copy') {
    storeVerified(tx, op.checksum, op.header, headerBytes, repo.loadFile(op.source).content, where);
    return;
  }
  applyPatch(tx, op, headerBytes, where, scratch);
}

/**
 * Rebuilds a patched file window by window into a file in the staging directory: each window's
 * source range is read from the old object, inflated into a buffer of exactly the window's size and
 * hashed as it is written, so memory holds one source range and one window, whatever the file's size.
 */
function applyPatch(
  tx: Transaction,
  op: DeltaOp & { op: 'patch' },
  headerBytes: Buffer,
  where: string,
  scratch: Scratch,
): void {
  const what = `file ${op.checksum}`;
  const source = openPatchSource(tx, op.source, what, where);
  const path = join(tx.staging, `${op.checksum}.patching`);
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const hasher = new StreamHasher().update(headerBytes);
    for (const [i, w] of op.windows.entries()) {
      if (w.sourceOffset + w.sourceSize > source.size)
        throw corruptObject(
          what,
          where,
          `has patch window ${i} reading bytes ${w.sourceOffset}–${w.sourceOffset + w.sourceSize} of ${op.source}, which holds ${source.size}`,
        );
      const range = source.read(
        w.sourceOffset,
        scratchOf(scratch, 'dictionary', w.sourceSize, PATCH_WINDOW_BYTES + 2 * PATCH_SLACK_BYTES),
      );
      if (range.subarray(0, 4).equals(ZSTD_DICT_MAGIC))
        throw corruptObject(
          what,
          where,
          `has patch window ${i} whose source range starts with zstd's dictionary magic`,
        );
      const content = scratchOf(scratch, 'out', w.outputSize, PATCH_WINDOW_BYTES);
      inflatePatchWindow(w, range, content, what, `has patch window ${i} (against ${op.source}) that`, where);
      hasher.update(content);
      writeAll(fd, content, path);
    }
    closeSync(fd);
    fd = undefined;
    const actual = hasher.digest();
    if (actual !== op.checksum) throw corruptObject(what, where, `rebuilds to content hashing to ${actual}`);
    tx.writeFile(op.checksum, op.header, { path, owned: true });
  } finally {
    if (fd !== undefined) closeSync(fd);
    source.close();
    rmSync(path, { force: true });
  }
}

function inflatePatchWindow(
  w: PatchWindow,
  range: Buffer,
  content: Buffer,
  what: string,
  problem: string,
  where: string,
): void {
  try {
    // The window (signed metadata) says how big it is: the frame cannot write past that buffer.
    inflateWindow(w.frame, range, content);
  } catch (error) {
    if (!(error instanceof InflateError)) throw error;
    throw corruptObject(what, where, `${problem} ${error.message}`);
  }
}

function writeAll(fd: number, bytes: Buffer, path: string): void {
  try {
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
  } catch (error) {
    throw ioError('write patched file', path, error);
  }
}

/** The content of a patch's source object, read by range: from the object file itself unless it is compressed. */
interface PatchSource {
  readonly size: number;
  /** Fills `into` from `offset` and returns it. */
  read(offset: number, into: Buffer): Buffer;
  close(): void;
}

function openPatchSource(tx: Transaction, source: Checksum, what: string, where: string): PatchSource {
  const repo = tx.repo;
  const header = repo.readFileHeader(source);
  if (!isRegular(header.mode))
    throw corruptObject(what, where, `is a patch against ${source}, which is not a regular file`);
  if (repo.mode === 'archive') {
    // Archive objects are compressed whole; archive repositories are mirrors, not hosts.
    const content = repo.loadFile(source).content;
    return {
      size: content.length,
      read: (offset, into) => (content.copy(into, 0, offset, offset + into.length), into),
      close: () => undefined,
    };
  }
  // An object from FROM was verified when it was pulled; a changed one fails the target's checksum.
  const path = repo.objectPath(source, 'file');
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  return {
    size: header.size,
    read: (offset, into) => {
      let got = 0;
      while (got < into.length) {
        const n = readSync(fd, into, got, into.length - got, offset + got);
        if (n === 0)
          throw new CorruptionError(
            'E_OBJECT_CORRUPT',
            `file ${source} is corrupt: it ends before ${offset + into.length} bytes`,
          );
        got += n;
      }
      return into;
    },
    close: () => closeSync(fd),
  };
}

function storeVerified(
  tx: Transaction,
  checksum: Checksum,
  header: FileHeader,
  headerBytes: Buffer,
  content: Buffer,
  where: string,
): void {
  if (content.length !== header.size)
    throw corruptObject(
      `file ${checksum}`,
      where,
      `rebuilds to ${content.length} bytes, its header says ${header.size}`,
    );
  const actual = hashBytes(headerBytes, content);
  if (actual !== checksum) throw corruptObject(`file ${checksum}`, where, `rebuilds to content hashing to ${actual}`);
  tx.writeFile(checksum, header, { buffer: content });
}

/** After the parts: every object of the target tree must be here (from the old commit or the delta). */
function assertComplete(tx: Transaction, commit: Commit, sizes: ReadonlyMap<Checksum, number>, where: string): void {
  const missing: string[] = [];
  const wrongSize: string[] = [];
  // Files are checked for presence all at once, a directory of objects at a time (Transaction.absentFiles).
  const files = new ChecksumList();
  for (const f of treeFiles(tx, commit, missing)) {
    files.add(f.checksum);
    // Objects from FROM were checked when they were pulled; those the delta rebuilt are checked here.
    const size = sizes.get(f.checksum);
    if (size !== undefined && size !== f.size)
      wrongSize.push(`file ${f.checksum} ('${f.name}') holds ${size} bytes, its dirtree records ${f.size}`);
  }
  const absent = new Set(tx.absentFiles(files));
  // Rare: a second walk finds the names of the absent files, for the message.
  if (absent.size > 0)
    for (const f of treeFiles(tx, commit, []))
      if (absent.delete(f.checksum)) missing.push(`file ${f.checksum} (${f.name})`);
  if (wrongSize.length > 0)
    throw new CorruptionError(
      'E_DELTA_CORRUPT',
      `${where} rebuilds ${wrongSize.length} objects of another size than the new commit's dirtrees record, first ${wrongSize.slice(0, 3).join(', ')}`,
    );
  if (missing.length > 0) {
    throw new CorruptionError(
      'E_DELTA_INCOMPLETE',
      `${where} leaves ${missing.length} objects of the new commit missing, first ${missing.slice(0, 3).join(', ')}`,
      {
        hint: 'the delta was generated against other objects; run the pull with --disable-static-deltas',
      },
    );
  }
}

/** Every file entry of the commit's tree, each distinct subtree once; missing metadata goes to `missing`. */
function* treeFiles(tx: Transaction, commit: Commit, missing: string[]): Generator<DirTreeFile> {
  const seen = new Set<Checksum>();
  const stack: [Checksum, Checksum][] = [[commit.rootTree, commit.rootMeta]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [tree, meta] = next;
    // The dirmeta first: an identical subtree seen before may sit in a directory of another owner or mode.
    if (!tx.has(meta, 'dirmeta')) missing.push(`dirmeta ${meta}`);
    if (seen.has(tree)) continue;
    seen.add(tree);
    if (!tx.has(tree, 'dirtree')) {
      missing.push(`dirtree ${tree}`);
      continue;
    }
    const dir = decodeDirTree(tx.readStagedOrStored(tree, 'dirtree'), `dirtree ${tree}`);
    yield* dir.files;
    for (const d of dir.dirs) stack.push([d.tree, d.meta]);
  }
}
