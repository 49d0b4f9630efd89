// Verifying fetched objects and storing them: nothing enters a transaction before its bytes hash to
// the checksum it was asked for. Shared by object-by-object pulls (in-process or through the fetch
// helper) and static-delta application.
import { rmSync } from 'node:fs';
import { ArborError, CorruptionError, errnoCode, ioError } from '../common/errors.js';
import { type Checksum, hashBytes } from '../common/hash.js';
import type { HelperObject } from './fetch-privsep.js';
import { encodeFileHeader } from './objects/index.js';
import type { FetchedFile } from './pull-source.js';
import { type ReceivedObject, hashFile, stageArchiveObject, stageReceivedObject } from './object-writer.js';
import type { Transaction } from './transaction.js';

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
  const source = 'content' in fetched ? { buffer: fetched.content } : { path: fetched.contentPath };
  explainErrno(tx, () => tx.writeFile(checksum, fetched.header, source));
}

/** Stores an object the fetch helper inflated (see stageReceivedObject); the main thread's way. */
function storeHelperObject(
  tx: Transaction,
  checksum: Checksum,
  fetched: HelperObject,
  contentSize: number,
  where: string,
): void {
  const received = receivedObject(fetched);
  if (tx.has(checksum, 'file')) {
    if ('path' in received.content) rmSync(received.content.path, { force: true });
    return;
  }
  const staged = explainErrno(tx, () => stageReceivedObject(tx.stagingContext, checksum, received, contentSize));
  if ('problem' in staged) throw corruptObject(`file ${checksum}`, where, staged.problem);
  tx.adoptStaged(checksum, staged.devino);
}

/** A fetch helper's object as the staging code takes it. */
function receivedObject(fetched: HelperObject): ReceivedObject {
  return {
    headerBytes: fetched.headerBytes,
    hashed: fetched.hashed,
    content: 'content' in fetched ? { buffer: fetched.content } : { path: fetched.spillPath },
  };
}

/** Runs a staging write; errno failures (ENOSPC, EACCES, …) become the ArborErrors the store workers raise. */
function explainErrno<T>(tx: Transaction, write: () => T): T {
  try {
    return write();
  } catch (error) {
    if (errnoCode(error) === undefined || error instanceof ArborError) throw error;
    throw ioError('write object into', tx.staging, error);
  }
}
