// Worker thread of a pull: decompresses, verifies and stages fetched archive objects, so that the
// main thread only talks HTTP. Messages: StoreJob in, StoreResult out.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { decompress as zstdDecompress } from 'zstd-napi';
import { ArborError, errnoCode, ioError } from '../common/errors.js';
import { hashBytes, type Checksum } from '../common/hash.js';
import { decodeFileObject, encodeFileHeader } from './objects/index.js';
import { type StagingContext, writeStagedFile } from './object-writer.js';
import type { StoreJob, StoreResult } from './store-pool.js';

const ctx = workerData as StagingContext;

function handle(job: StoreJob): StoreResult {
  const compressed = Buffer.from(job.compressed);
  let raw: Buffer;
  try {
    raw = zstdDecompress(compressed);
  } catch (error) {
    return { id: job.id, problem: `does not decompress: ${(error as Error).message}` };
  }
  const actual = hashBytes(raw);
  if (actual !== job.checksum) return { id: job.id, problem: `hashes to ${actual}` };
  const staged = join(ctx.staging, `${job.checksum}.file`);
  if (ctx.mode === 'archive') {
    writeFileSync(staged, compressed, { mode: 0o644, flag: 'wx' });
    return { id: job.id };
  }
  let parsed;
  try {
    parsed = decodeFileObject(raw, `file ${job.checksum}`);
  } catch (error) {
    return { id: job.id, problem: `is malformed: ${(error as Error).message}` };
  }
  const devino = writeStagedFile(ctx, staged, job.checksum as Checksum, parsed.header, encodeFileHeader(parsed.header), { buffer: parsed.content });
  return { id: job.id, devino };
}

parentPort?.on('message', (job: StoreJob) => {
  let result: StoreResult;
  try {
    result = handle(job);
  } catch (caught) {
    // Errno failures (ENOSPC, EACCES, …) become the same ArborErrors the main thread would raise.
    const error = errnoCode(caught) !== undefined && !(caught instanceof ArborError) ? ioError('write object into', ctx.staging, caught) : caught;
    const e = error as { code?: unknown; message?: unknown; hint?: unknown };
    result = { id: job.id, error: { code: typeof e.code === 'string' ? e.code : undefined, message: String(e.message ?? error), hint: typeof e.hint === 'string' ? e.hint : undefined } };
  }
  parentPort?.postMessage(result);
});
