// Verifying fetched objects and storing them: nothing enters a transaction before its bytes hash to
// the checksum it was asked for. Shared by object-by-object pulls (in-process or through the fetch
// helper) and static-delta application.
import { rmSync } from 'node:fs';
import { ArborError, CorruptionError, errnoCode, ioError } from '../common/errors.js';
import { type Checksum, hashBytes } from '../common/hash.js';
import type { HelperObject } from './fetch-privsep.js';
import { type FileHeader, decodeFileHeader, encodeFileHeader } from './objects/index.js';
import type { FetchedFile } from './pull-source.js';
import { type ContentSource, hashFile, stageArchiveObject } from './object-writer.js';
import type { Transaction } from './store.js';

export function corruptObject(what: string, where: string, problem: string): CorruptionError {
  return new CorruptionError('E_PULL_CORRUPT', `${what} from ${where} ${problem}`, {
    hint: 'the server or the network corrupted it; nothing of it was stored. Run the pull again; if it persists, run `arbor fsck` on the server',
  });
}

/** Verifies a metadata object's bytes against its name and stages it. */
export function storeMetadata(
  tx: Transaction,
  checksum: Checksum,
  kind: 'dirtree' | 'dirmeta' | 'commit',
  bytes: Buffer,
  where: string,
): void {
  const actual = hashBytes(bytes);
  if (actual !== checksum) throw corruptObject(`${kind} ${checksum}`, where, `hashes to ${actual}`);
  tx.writeMetadata(kind, bytes);
}

/**
 * Verifies a fetched file object against its checksum and the content size its dirtree records,
 * and stages it in the transaction's repository mode; archive objects inflate in bounded steps.
 */
export function storeFetchedFile(
  tx: Transaction,
  checksum: Checksum,
  fetched: FetchedFile,
  contentSize: number,
  where: string,
): void {
  const what = `file ${checksum}`;
  if ('compressed' in fetched || 'compressedPath' in fetched) {
    const input = 'compressed' in fetched ? { buffer: fetched.compressed } : { path: fetched.compressedPath };
    const staged = stageArchiveObject(tx.stagingContext, input, checksum, contentSize);
    if ('problem' in staged) throw corruptObject(what, where, staged.problem);
    tx.adoptStaged(checksum, staged.devino);
    return;
  }
  if ('headerBytes' in fetched) {
    storeHelperObject(tx, checksum, fetched, contentSize, where);
    return;
  }
  if (fetched.header.size !== contentSize)
    throw corruptObject(
      what,
      where,
      `has a header saying ${fetched.header.size} content bytes, but its dirtree records ${contentSize}`,
    );
  const headerBytes = encodeFileHeader(fetched.header);
  const actual =
    'content' in fetched
      ? hashBytes(headerBytes, fetched.content)
      : hashFile(fetched.contentPath, headerBytes, fetched.header.size).checksum;
  if (actual !== checksum) throw corruptObject(what, where, `hashes to ${actual}`);
  writeVerified(
    tx,
    checksum,
    fetched.header,
    'content' in fetched ? { buffer: fetched.content } : { path: fetched.contentPath },
  );
}

/**
 * Stores an object the fetch helper inflated: it must have hashed to its name as it arrived, and
 * only then is its header decoded (strictly: the helper's split between header and content is
 * believed no more than its bytes) and the size it says compared with the dirtree's. Archive
 * repositories compress it again here. A spilled content file is consumed either way.
 */
function storeHelperObject(
  tx: Transaction,
  checksum: Checksum,
  fetched: HelperObject,
  contentSize: number,
  where: string,
): void {
  const what = `file ${checksum}`;
  try {
    if (fetched.hashed !== checksum) throw corruptObject(what, where, `hashes to ${fetched.hashed}`);
    let header: FileHeader;
    try {
      header = decodeFileHeader(fetched.headerBytes, what);
    } catch (error) {
      throw corruptObject(what, where, `has a header that does not decode: ${(error as Error).message}`);
    }
    if (header.size !== contentSize)
      throw corruptObject(
        what,
        where,
        `has a header saying ${header.size} content bytes, but its dirtree records ${contentSize}`,
      );
    writeVerified(
      tx,
      checksum,
      header,
      'content' in fetched ? { buffer: fetched.content } : { path: fetched.spillPath },
    );
  } finally {
    if ('spillPath' in fetched) rmSync(fetched.spillPath, { force: true });
  }
}

/** Stages a verified object; errno failures (ENOSPC, EACCES, …) become the ArborErrors the store workers raise. */
function writeVerified(tx: Transaction, checksum: Checksum, header: FileHeader, source: ContentSource): void {
  try {
    tx.writeFile(checksum, header, source);
  } catch (error) {
    if (errnoCode(error) === undefined || error instanceof ArborError) throw error;
    throw ioError('write object into', tx.staging, error);
  }
}
