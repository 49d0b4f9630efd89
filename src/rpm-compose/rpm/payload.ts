// Streams a package's payload: decompresses it, walks its cpio entries, matches each to the header's
// file list and verifies every digest (each file's, the payload's, the MD5 over header+payload)
// while the bytes pass, so memory stays bounded whatever the package's size.
import { type Hash, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ArborError, CorruptionError, ioError } from '../../common/errors.js';
import { ChunkReader } from './chunk-reader.js';
import { readCpioHeader, skipPadding } from './cpio.js';
import { decompress } from './decompress.js';
import { type RpmFile, S_IFDIR, S_IFLNK, S_IFREG, fileType, isGhost } from './package.js';
import { type RpmHead, digestMismatch } from './read.js';

/** One thing the payload makes: a file, directory, symlink or node, or a whole hardlink set. */
export interface PayloadEntry {
  /** Header file indices this entry makes: one, or every member of a hardlink set (ascending). */
  readonly indices: readonly number[];
  /** The header's record of the (first) file. */
  readonly file: RpmFile;
  /**
   * Regular files: the content in chunks, checked against the header digest as it streams (the
   * last chunk throws on a mismatch). Read it before asking for the next entry, or it is drained.
   */
  readonly content: AsyncIterable<Buffer> | undefined;
}

const READ_CHUNK_BYTES = 256 * 1024;
const MAX_SYMLINK_BYTES = 64 * 1024;

/** What readPayload checked, for `rpm info --verify` style reports and tests. */
export interface PayloadSummary {
  readonly entries: number;
  readonly payloadBytes: number;
  readonly compressedBytes: number;
}

/**
 * Yields the payload's entries in archive order. Throws CorruptionError (naming the package and,
 * where there is one, the path) on: undecompressible data, a malformed cpio header, a name not in
 * the header or holding '..', an absolute path or NUL, a size, type or symlink target that
 * disagrees with the header, a file digest mismatch, a missing or duplicated file, an incomplete
 * hardlink set, data after the trailer, and payload, MD5 or size mismatches against the headers.
 */
export async function* readPayload(head: RpmHead, summary?: { value?: PayloadSummary }): AsyncGenerator<PayloadEntry> {
  const { path, pkg } = head;
  const corrupt = (problem: string): CorruptionError =>
    new CorruptionError('E_RPM_PAYLOAD', `package '${path}': ${problem}`);
  if (pkg.payload.format !== 'cpio') {
    throw new ArborError('E_RPM_UNSUPPORTED', `package '${path}': payload format '${pkg.payload.format}' is not cpio`);
  }
  const { integrity } = pkg;
  const payloadHash = integrity.payloadDigest ? createHash(integrity.payloadDigest.algo) : undefined;
  const payloadAltHash = integrity.payloadDigestAlt ? createHash(integrity.payloadDigestAlt.algo) : undefined;
  const md5 = integrity.md5 !== undefined ? createHash('md5').update(head.header.bytes) : undefined;
  let compressedBytes = 0;
  let payloadBytes = 0;

  const raw = async function* (): AsyncGenerator<Buffer> {
    const stream = createReadStream(path, { start: head.payloadOffset, highWaterMark: READ_CHUNK_BYTES });
    try {
      for await (const chunk of stream) {
        const buffer = chunk as Buffer;
        compressedBytes += buffer.length;
        payloadHash?.update(buffer);
        md5?.update(buffer);
        yield buffer;
      }
    } catch (error) {
      throw ioError('read', path, error);
    }
  };
  const decompressed = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of decompress(raw(), pkg.payload.compressor, path)) {
      payloadBytes += chunk.length;
      payloadAltHash?.update(chunk);
      yield chunk;
    }
  };
  const reader = new ChunkReader(decompressed(), (error) =>
    error instanceof ArborError
      ? error
      : new CorruptionError(
          'E_RPM_PAYLOAD',
          `package '${path}': ${pkg.payload.compressor ?? 'gzip'} payload does not decompress: ${describe(error)}`,
          { cause: error },
        ),
  );

  const files = pkg.files;
  const byPath = new Map<string, number>();
  files.forEach((file, i) => byPath.set(file.path, i));
  const { setOf, sets } = hardlinkSets(files);
  const seen = new Uint8Array(files.length);
  const setProgress = new Map<number, { seen: number; contentFrom?: number }>();
  let entries = 0;

  for (;;) {
    const cpio = await readCpioHeader(reader, corrupt);
    if (cpio.kind === 'trailer') break;
    let index: number;
    let size: number;
    if (cpio.kind === 'stripped') {
      index = cpio.fileIndex;
      if (index >= files.length)
        throw corrupt(`cpio entry names file index ${index}, but the header lists ${files.length} files`);
      const file = files[index]!;
      const set = setOf[index];
      // Stripped headers carry no size: all but the last member of a hardlink set have none.
      size = set !== undefined && sets[set]!.at(-1) !== index ? 0 : fileType(file.mode) === S_IFDIR ? 0 : file.size;
    } else {
      index = indexOfName(cpio.name, byPath, corrupt);
      size = cpio.size;
    }
    const file = files[index]!;
    if (seen[index]) throw corrupt(`'${file.path}' appears twice in the payload`);
    seen[index] = 1;
    if (isGhost(file)) throw corrupt(`'${file.path}' is a %ghost file but is in the payload`);
    if (cpio.kind === 'newc' && cpio.mode !== file.mode) {
      throw corrupt(
        `'${file.path}' has mode ${cpio.mode.toString(8)} in the payload and ${file.mode.toString(8)} in the header`,
      );
    }
    const type = fileType(file.mode);
    const onShort = (): Error => corrupt(`payload ends inside '${file.path}'`);

    if (type === S_IFREG) {
      const set = setOf[index];
      if (size !== file.size && !(set !== undefined && size === 0)) {
        throw corrupt(`'${file.path}' is ${size} bytes in the payload and ${file.size} in the header`);
      }
      if (set !== undefined) {
        const members = sets[set]!;
        const progress = setProgress.get(set) ?? { seen: 0 };
        setProgress.set(set, progress);
        progress.seen++;
        const hasContent = size > 0 || (file.size === 0 && progress.seen === members.length);
        if (hasContent) {
          if (progress.contentFrom !== undefined) throw corrupt(`hardlink set of '${file.path}' has content twice`);
          if (progress.seen !== members.length)
            throw corrupt(`content of hardlink set '${file.path}' comes before its other members`);
          progress.contentFrom = index;
        } else {
          continue;
        }
        entries++;
        yield* emitContent(members, file, size);
      } else {
        entries++;
        yield* emitContent([index], file, size);
      }
    } else if (type === S_IFLNK) {
      if (size !== Buffer.byteLength(file.linkTo)) {
        throw corrupt(
          `symlink '${file.path}' has a ${size}-byte target in the payload, the header says '${file.linkTo}'`,
        );
      }
      if (size > MAX_SYMLINK_BYTES) throw corrupt(`symlink '${file.path}' has a ${size}-byte target`);
      const target = await reader.read(size);
      if (target === undefined) throw onShort();
      if (target.toString('utf8') !== file.linkTo)
        throw corrupt(
          `symlink '${file.path}' points at '${target.toString('utf8')}' in the payload and '${file.linkTo}' in the header`,
        );
      entries++;
      yield { indices: [index], file, content: undefined };
    } else {
      if (size !== 0) throw corrupt(`'${file.path}' is not a regular file but has ${size} bytes of data`);
      entries++;
      yield { indices: [index], file, content: undefined };
    }
  }

  // After the trailer only zero padding may follow; reading to the end also completes the digests.
  let trailing = false;
  await reader.drain((piece) => {
    if (piece.some((b) => b !== 0)) trailing = true;
  });
  if (trailing) throw corrupt('data follows the cpio trailer');
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    if (!seen[i] && !isGhost(file)) throw corrupt(`'${file.path}' is in the header but not in the payload`);
  }
  for (const [set, progress] of setProgress) {
    if (progress.contentFrom === undefined)
      throw corrupt(`hardlink set of '${files[sets[set]![0]!]!.path}' has no content`);
  }
  if (integrity.payloadDigest && payloadHash) {
    const actual = payloadHash.digest('hex');
    if (actual !== integrity.payloadDigest.hex)
      throw digestMismatch(path, 'payload digest', integrity.payloadDigest.hex, actual);
  }
  if (integrity.payloadDigestAlt && payloadAltHash) {
    const actual = payloadAltHash.digest('hex');
    if (actual !== integrity.payloadDigestAlt.hex)
      throw digestMismatch(path, 'uncompressed payload digest', integrity.payloadDigestAlt.hex, actual);
  }
  if (integrity.md5 !== undefined && md5) {
    const actual = md5.digest('hex');
    if (actual !== integrity.md5) throw digestMismatch(path, 'header+payload MD5', integrity.md5, actual);
  }
  if (integrity.payloadBytes !== undefined && integrity.payloadBytes !== payloadBytes) {
    throw corrupt(`payload is ${payloadBytes} bytes uncompressed, the signature says ${integrity.payloadBytes}`);
  }
  if (summary) summary.value = { entries, payloadBytes, compressedBytes };

  async function* emitContent(indices: readonly number[], file: RpmFile, size: number): AsyncGenerator<PayloadEntry> {
    const hash = file.digest !== '' ? createHash(pkg.fileDigestAlgo) : undefined;
    // Pulled by hand, not with for-await: a consumer that stops early must not close the source.
    const source = reader.stream(size, () => corrupt(`payload ends inside '${file.path}'`));
    let done = false;
    const pump = async (): Promise<Buffer | undefined> => {
      if (done) return undefined;
      const next = await source.next();
      if (next.done) {
        done = true;
        verify(hash, file);
        return undefined;
      }
      hash?.update(next.value);
      return next.value;
    };
    const content = (async function* (): AsyncGenerator<Buffer> {
      for (let chunk = await pump(); chunk !== undefined; chunk = await pump()) yield chunk;
    })();
    yield { indices, file, content };
    // Whatever the consumer left unread is drained here, so the digests still get checked.
    while ((await pump()) !== undefined);
    await skipPadding(reader, corrupt);
  }

  function verify(hash: Hash | undefined, file: RpmFile): void {
    if (!hash) return;
    const actual = hash.digest('hex');
    if (actual !== file.digest) {
      throw new CorruptionError(
        'E_RPM_DIGEST',
        `package '${path}': digest mismatch in '${file.path}': expected ${file.digest}, got ${actual}`,
      );
    }
  }
}

/** Maps a cpio name ("./usr/bin/a") to its header index, refusing names that could escape the tree. */
function indexOfName(name: string, byPath: ReadonlyMap<string, number>, corrupt: (problem: string) => Error): number {
  const shown = name.replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?');
  if (name.startsWith('/')) throw corrupt(`cpio entry '${shown}' has an absolute path`);
  const relative = name === '.' || name === './' ? '' : name.startsWith('./') ? name.slice(2) : name;
  if (relative !== '' && relative.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw corrupt(`cpio entry '${shown}' has an empty, '.' or '..' path component`);
  }
  // Source packages list bare names ("foo.spec"), binary ones absolute paths.
  const index = byPath.get(`/${relative}`) ?? byPath.get(relative);
  if (index === undefined) throw corrupt(`cpio entry '${shown}' is not in the header's file list`);
  return index;
}

/** Hardlink sets: non-ghost regular files sharing (device, inode), two or more, members ascending. */
function hardlinkSets(files: readonly RpmFile[]): { setOf: (number | undefined)[]; sets: number[][] } {
  const byInode = new Map<string, number[]>();
  files.forEach((file, i) => {
    if (fileType(file.mode) !== S_IFREG || isGhost(file)) return;
    const key = `${file.device}:${file.inode}`;
    const members = byInode.get(key);
    if (members) members.push(i);
    else byInode.set(key, [i]);
  });
  const setOf: (number | undefined)[] = Array.from({ length: files.length }, () => undefined);
  const sets: number[][] = [];
  for (const members of byInode.values()) {
    if (members.length < 2) continue;
    for (const i of members) setOf[i] = sets.length;
    sets.push(members);
  }
  return { setOf, sets };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
