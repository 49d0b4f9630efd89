// Streaming decompression of RPM payloads by PAYLOADCOMPRESSOR, through maintained libraries:
// node:zlib (gzip), unbzip2-stream (bzip2), node-liblzma (xz natively, legacy lzma through its
// wasm build, whose auto decoder reads the .lzma "alone" format), zstd-napi (zstd).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Readable, type Transform, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { LZMAModule } from 'node-liblzma/wasm';
import { ArborError } from '../../common/errors.js';

// The libraries are imported when a payload needs them: loading them all costs every arbor
// command about 40 ms at start-up.

/** The compressor names rpm writes in PAYLOADCOMPRESSOR, and 'none' for w0.ufdio payloads. */
const PAYLOAD_COMPRESSORS = ['gzip', 'bzip2', 'xz', 'lzma', 'zstd', 'none'] as const;

/**
 * Decompresses `source` chunk by chunk. Memory stays bounded by the libraries' windows (zstd and
 * xz dictionaries, one bzip2 block) and one chunk of output: nothing buffers the whole payload.
 * Errors of the compressed data surface as whatever the library throws; the caller adds context.
 */
export function decompress(
  source: AsyncIterable<Buffer>,
  compressor: string | undefined,
  pkg: string,
): AsyncIterable<Buffer> {
  switch (compressor) {
    case undefined:
      return sniffed(source, pkg);
    case 'none':
      return source;
    case 'gzip':
      return throughTransform(source, async () => createGunzip());
    case 'xz':
      // Its typings narrow on() and lose Transform's overloads.
      return throughTransform(source, async () => (await import('node-liblzma')).createUnxz() as unknown as Transform);
    case 'zstd':
      return throughTransform(source, async () => new (await import('zstd-napi')).DecompressStream());
    case 'bzip2':
      return bunzip2(source);
    case 'lzma':
      return unlzma(source);
    default:
      throw new ArborError('E_RPM_UNSUPPORTED', `package '${pkg}': unknown payload compressor '${compressor}'`, {
        hint: `Arbor reads ${PAYLOAD_COMPRESSORS.join(', ')}`,
      });
  }
}

/**
 * Without PAYLOADCOMPRESSOR rpm opens the payload with zlib, which reads gzip and passes anything
 * else through unchanged: so do we (rpmbuild's w0.ufdio writes no compressor tag).
 */
async function* sniffed(source: AsyncIterable<Buffer>, pkg: string): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) return;
  const rest = (async function* (): AsyncGenerator<Buffer> {
    yield first.value;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  })();
  const isGzip = first.value.length >= 2 && first.value[0] === 0x1f && first.value[1] === 0x8b;
  yield* decompress(rest, isGzip ? 'gzip' : 'none', pkg);
}

async function* throughTransform(
  source: AsyncIterable<Buffer>,
  makeTransform: () => Promise<Transform>,
): AsyncGenerator<Buffer> {
  // pipeline forwards an error of either side to the transform, which the loop below rethrows.
  const out = pipeline(Readable.from(source, { objectMode: false }), await makeTransform(), () => {});
  for await (const chunk of out) yield chunk as Buffer;
}

async function* bunzip2(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // unbzip2-stream is a classic (through) stream: drive it by hand and collect what it emits.
  const { default: unbzip2Stream } = await import('unbzip2-stream');
  const stream = unbzip2Stream();
  const out: Buffer[] = [];
  let failure: unknown;
  stream.on('data', (data: Buffer) => out.push(data));
  stream.on('error', (error: unknown) => (failure ??= error));
  for await (const chunk of source) {
    stream.write(chunk);
    if (failure !== undefined) throw failure;
    yield* out.splice(0);
  }
  stream.end();
  if (failure !== undefined) throw failure;
  yield* out.splice(0);
}

const LZMA_RUN = 0;
const LZMA_FINISH = 3;
const LZMA_OK = 0;
const LZMA_STREAM_END = 1;
const LZMA_CHUNK_BYTES = 256 * 1024;
// A .lzma header declares its dictionary; rpm's presets stay well below this.
const LZMA_MEMLIMIT_BYTES = 256 * 1024 * 1024;

let lzmaModule: Promise<LZMAModule> | undefined;
function loadLzmaModule(): Promise<LZMAModule> {
  // The package's default loader fetch()es the wasm file, which Node cannot do for file paths.
  const wasmPath = createRequire(import.meta.url).resolve('node-liblzma/wasm/liblzma.wasm');
  lzmaModule ??= (async () => {
    const [{ initModule }, { default: createLZMA }] = await Promise.all([
      import('node-liblzma/wasm'),
      import('node-liblzma/wasm/liblzma.js'),
    ]);
    return initModule(() => createLZMA({ wasmBinary: readFileSync(wasmPath) }));
  })();
  return lzmaModule;
}

async function* unlzma(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const module = await loadLzmaModule();
  const { WasmLzmaStream } = await import('node-liblzma/wasm');
  const stream = new WasmLzmaStream(module);
  // This build passes 64-bit arguments as two 32-bit halves (no BigInt ABI), despite its typings.
  const autoDecoder = module._lzma_auto_decoder as unknown as (
    strm: number,
    lo: number,
    hi: number,
    flags: number,
  ) => number;
  const init = autoDecoder(stream.ptr, LZMA_MEMLIMIT_BYTES, 0, 0);
  if (init !== LZMA_OK) {
    stream.free();
    throw new Error(`lzma decoder failed to start (${init})`);
  }
  const outPtr = module._malloc(LZMA_CHUNK_BYTES);
  let inPtr = 0;
  let inCapacity = 0;
  let ended = false;
  try {
    const step = function* (input: Buffer, action: number): Generator<Buffer> {
      if (input.length > inCapacity) {
        if (inPtr) module._free(inPtr);
        inCapacity = Math.max(input.length, 64 * 1024);
        inPtr = module._malloc(inCapacity);
      }
      module.HEAPU8.set(input, inPtr);
      stream.setInput(inPtr, input.length);
      for (;;) {
        stream.setOutput(outPtr, LZMA_CHUNK_BYTES);
        const ret = module._lzma_code(stream.ptr, action);
        const produced = LZMA_CHUNK_BYTES - stream.availOut;
        // Copy out: the wasm heap may move when it grows.
        if (produced > 0) yield Buffer.from(module.HEAPU8.slice(outPtr, outPtr + produced));
        if (ret === LZMA_STREAM_END) {
          ended = true;
          if (stream.availIn !== 0) throw new Error('trailing data after the lzma stream');
          return;
        }
        if (ret !== LZMA_OK) throw new Error(`lzma data error (${ret})`);
        if (stream.availIn === 0 && stream.availOut !== 0) return;
      }
    };
    for await (const chunk of source) {
      if (ended) {
        if (chunk.length > 0) throw new Error('trailing data after the lzma stream');
        continue;
      }
      yield* step(chunk, LZMA_RUN);
    }
    if (!ended) yield* step(Buffer.alloc(0), LZMA_FINISH);
    if (!ended) throw new Error('lzma stream is truncated');
  } finally {
    module._lzma_end(stream.ptr);
    stream.free();
    module._free(outPtr);
    if (inPtr) module._free(inPtr);
  }
}
