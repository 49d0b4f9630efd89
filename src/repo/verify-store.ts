// Verifying fetched objects and storing them: nothing enters a transaction before its bytes hash to
// the checksum it was asked for. Shared by object-by-object pulls and static-delta application.
import { CorruptionError } from '../common/errors.js';
import { type Checksum, hashBytes } from '../common/hash.js';
import { encodeFileHeader } from './objects/index.js';
import type { FetchedFile } from './pull-source.js';
import { hashFile, stageArchiveObject } from './object-writer.js';
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
  tx.writeFile(
    checksum,
    fetched.header,
    'content' in fetched ? { buffer: fetched.content } : { path: fetched.contentPath },
  );
}
