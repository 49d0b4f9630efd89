// Verifying fetched objects and storing them: nothing enters a transaction before its bytes hash to
// the checksum it was asked for. Shared by object-by-object pulls and static-delta application.
import { closeSync, createReadStream, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { DecompressStream } from 'zstd-napi';
import { ByteReader } from '../common/bytes.js';
import { CorruptionError } from '../common/errors.js';
import { type Checksum, StreamHasher, hashBytes } from '../common/hash.js';
import { type FileHeader, encodeFileHeader, readFileHeader } from './objects/index.js';
import type { FetchedFile } from './pull-source.js';
import { hashFile, openArchiveObject } from './object-writer.js';
import type { Transaction } from './store.js';

/** Headers bigger than this (xattrs) cannot be real: a stream that never yields a header is corrupt. */
const MAX_HEADER = 16 * 1024 * 1024;

export function corruptObject(what: string, where: string, problem: string): CorruptionError {
  return new CorruptionError('E_PULL_CORRUPT', `${what} from ${where} ${problem}`, {
    hint: 'the server or the network corrupted it; nothing of it was stored. Run the pull again; if it persists, run `arbor fsck` on the server',
  });
}

/** Verifies a metadata object's bytes against its name and stages it. */
export function storeMetadata(tx: Transaction, checksum: Checksum, kind: 'dirtree' | 'dirmeta' | 'commit', bytes: Buffer, where: string): void {
  const actual = hashBytes(bytes);
  if (actual !== checksum) throw corruptObject(`${kind} ${checksum}`, where, `hashes to ${actual}`);
  tx.writeMetadata(kind, bytes);
}

/** Verifies a fetched file object and stages it in the transaction's repository mode. */
export async function storeFetchedFile(tx: Transaction, checksum: Checksum, fetched: FetchedFile, where: string): Promise<void> {
  const what = `file ${checksum}`;
  if ('compressed' in fetched) {
    const opened = openArchiveObject(fetched.compressed, checksum);
    if ('problem' in opened) throw corruptObject(what, where, opened.problem);
    if (tx.repo.mode === 'archive') tx.writeCompressedFile(checksum, { buffer: fetched.compressed });
    else tx.writeFile(checksum, opened.header, { buffer: opened.content });
    return;
  }
  if ('compressedPath' in fetched) {
    await storeCompressedPath(tx, checksum, fetched.compressedPath, where);
    return;
  }
  const headerBytes = encodeFileHeader(fetched.header);
  const actual = 'content' in fetched ? hashBytes(headerBytes, fetched.content) : hashFile(fetched.contentPath, headerBytes, fetched.header.size).checksum;
  if (actual !== checksum) throw corruptObject(what, where, `hashes to ${actual}`);
  tx.writeFile(checksum, fetched.header, 'content' in fetched ? { buffer: fetched.content } : { path: fetched.contentPath });
}

/**
 * A big archive object downloaded to a file in the staging directory: decompressed as a stream
 * (hashing, and writing the content out for bare repositories), then moved or copied in.
 */
async function storeCompressedPath(tx: Transaction, checksum: Checksum, path: string, where: string): Promise<void> {
  const what = `file ${checksum}`;
  const hasher = new StreamHasher();
  const keepContent = tx.repo.mode !== 'archive';
  const contentPath = join(tx.staging, `content-${Math.random().toString(36).slice(2)}`);
  let fd: number | undefined;
  let head: Buffer | null = Buffer.alloc(0);
  let header: FileHeader | undefined;
  let contentBytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        hasher.update(chunk);
        let rest = chunk;
        if (head !== null) {
          head = Buffer.concat([head, chunk]);
          const input = new ByteReader(head, what);
          try {
            header = readFileHeader(input);
          } catch (error) {
            if (head.length > MAX_HEADER) throw corruptObject(what, where, `has no valid header: ${(error as Error).message}`);
            done();
            return;
          }
          rest = head.subarray(input.offset);
          head = null;
          if (keepContent) fd = openSync(contentPath, 'wx', 0o600);
        }
        contentBytes += rest.length;
        if (fd !== undefined && rest.length > 0) writeSync(fd, rest);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
  try {
    try {
      await pipeline(createReadStream(path), new DecompressStream(), sink);
    } catch (error) {
      if (error instanceof CorruptionError) throw error;
      throw corruptObject(what, where, `does not decompress: ${(error as Error).message}`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    const actual = hasher.digest();
    if (actual !== checksum) throw corruptObject(what, where, `hashes to ${actual}`);
    if (!header || contentBytes !== header.size) throw corruptObject(what, where, `holds ${contentBytes} content bytes, its header says ${header?.size ?? '(no header)'}`);
    if (tx.repo.mode === 'archive') tx.writeCompressedFile(checksum, { path });
    else tx.writeFile(checksum, header, { path: contentPath });
  } finally {
    rmSync(contentPath, { force: true });
    rmSync(path, { force: true });
  }
}
