// The fetch helper: the child process a pull running as root starts under an unprivileged user
// (docs/security.md, "Privileges"). It does the network-facing work, HTTP and the bounded
// inflation of archive file objects, and writes nothing to disk: frames go to stdout (fetch-frames.ts).
import { writeSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ArborError } from '../common/errors.js';
import { ArchiveObjectInflater, InflateError } from './bounded-inflate.js';
import { HttpFetcher, RemoteMissingError } from './fetch.js';
import {
  DATA_PIECE_BYTES,
  type Frame,
  FrameDecoder,
  FrameType,
  type GetRequest,
  type HelperEnd,
  type HelperFailure,
  type HelperInit,
  type ObjectRequest,
  type SizeRequest,
  decodeJsonPayload,
  encodeFrame,
  encodeJsonFrame,
} from './fetch-frames.js';

/** Requests are a few hundred bytes of JSON; the init frame may carry a certificate bundle. */
const MAX_REQUEST_BYTES = 8 * 1024 * 1024;

/**
 * Writes a frame to stdout, blocking until the pipe takes it: the parent's reading paces the
 * helper, so nothing piles up in memory however fast the server sends or a frame inflates.
 * (The pipe is left blocking by the spawn; process.stdout is never touched, it would buffer.)
 */
function send(frame: Buffer): void {
  for (let at = 0; at < frame.length; ) at += writeSync(1, frame, at);
}

function sendData(id: number, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; at += DATA_PIECE_BYTES)
    send(encodeFrame(FrameType.Data, id, bytes.subarray(at, at + DATA_PIECE_BYTES)));
}

const end = (id: number, value: HelperEnd): void => send(encodeJsonFrame(FrameType.End, id, value));

function failure(error: unknown, fetched: number): HelperFailure {
  if (error instanceof InflateError) return { fetched, problem: error.message };
  if (error instanceof RemoteMissingError) return { fetched, code: error.code, message: error.message, url: error.url };
  if (error instanceof ArborError) return { fetched, code: error.code, message: error.message, hint: error.hint };
  return { fetched, code: 'E_INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

/** Runs one request; every outcome is a frame, so the parent's request always ends. */
async function serve(fetcher: HttpFetcher, frame: Frame): Promise<void> {
  const { id } = frame;
  let fetched = 0;
  try {
    const request = decodeJsonPayload(frame.payload);
    if (frame.type === FrameType.Get) {
      const { path, maxBytes, allowMissing } = request as unknown as GetRequest;
      const found = await fetcher.stream(path, { maxBytes, allowMissing }, () => {
        send(encodeFrame(FrameType.Begin, id));
        return (chunk) => {
          fetched += chunk.length;
          sendData(id, chunk);
        };
      });
      end(id, { fetched, ...(found ? {} : { missing: true }) });
    } else if (frame.type === FrameType.Size) {
      const size = await fetcher.size((request as unknown as SizeRequest).path);
      end(id, { fetched, ...(size === null ? { missing: true } : { size }) });
    } else if (frame.type === FrameType.Object) {
      const { path, contentSize, maxBytes } = request as unknown as ObjectRequest;
      let inflater: ArchiveObjectInflater | undefined;
      const found = await fetcher.stream(path, { maxBytes, allowMissing: false }, () => {
        send(encodeFrame(FrameType.Begin, id));
        inflater = new ArchiveObjectInflater(contentSize, {
          header: (bytes) => send(encodeFrame(FrameType.Header, id, bytes)),
          content: (chunk) => sendData(id, chunk),
        });
        return (chunk) => {
          fetched += chunk.length;
          inflater?.push(chunk);
        };
      });
      if (found) inflater?.end();
      end(id, { fetched });
    } else {
      throw new Error(`unknown request type ${frame.type}`);
    }
  } catch (error) {
    send(encodeJsonFrame(FrameType.Fail, id, failure(error, fetched)));
  }
}

function main(): void {
  // The parent drops privileges before this runs; refuse to do its work as root all the same.
  if (process.getuid?.() === 0 || process.getgid?.() === 0) {
    process.stderr.write('arbor fetch helper: refusing to run as root\n');
    process.exit(1);
  }
  const decoder = new FrameDecoder(MAX_REQUEST_BYTES);
  let fetcher: HttpFetcher | undefined;
  process.stdin.on('data', (chunk: Buffer) =>
    decoder.push(chunk, (frame) => {
      if (frame.type === FrameType.Init) {
        const init = decodeJsonPayload(frame.payload) as unknown as HelperInit;
        const ca = init.extraCa === undefined ? undefined : [...rootCertificates, init.extraCa];
        fetcher = new HttpFetcher(init.url, init.concurrency, init.limits, ca);
        return;
      }
      if (!fetcher) throw new Error('a request came before the init frame');
      // A copy: the payload is a view of a chunk the next push may reuse.
      void serve(fetcher, { ...frame, payload: Buffer.from(frame.payload) });
    }),
  );
  // The parent closing the pipe is the end of the pull (or of the parent).
  process.stdin.on('end', () => {
    fetcher?.close();
    process.exit(0);
  });
}

main();
