// Reading one XML file of a yum repository: its checksum (from repomd.xml) is verified over the
// whole compressed file before a byte of it is parsed, then it streams through the decompressor
// its magic bytes name into saxes, and every failure names the file (and the line, for XML).
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { ArborError, CorruptionError, errnoCode, ioError } from '../../common/errors.js';
import { decompress } from '../rpm/decompress.js';

/** repomd.xml's checksum type names → node:crypto algorithm and hex length. "sha" is sha1 (old yum). */
const CHECKSUM_TYPES: Readonly<Record<string, { algorithm: string; hexLength: number }>> = {
  md5: { algorithm: 'md5', hexLength: 32 },
  sha: { algorithm: 'sha1', hexLength: 40 },
  sha1: { algorithm: 'sha1', hexLength: 40 },
  sha224: { algorithm: 'sha224', hexLength: 56 },
  sha256: { algorithm: 'sha256', hexLength: 64 },
  sha384: { algorithm: 'sha384', hexLength: 96 },
  sha512: { algorithm: 'sha512', hexLength: 128 },
};

/** A digest as metadata states it: node:crypto algorithm and lowercase hex. */
export interface Digest {
  readonly type: string;
  readonly value: string;
}

/**
 * Normalises a `<checksum type=…>` and its hex value. `fail` reports malformed values (with the
 * line); an unknown type is E_REPODATA_UNSUPPORTED.
 */
export function parseDigest(
  type: string | undefined,
  value: string,
  file: string,
  fail: (message: string) => never,
): Digest {
  if (type === undefined) fail('a checksum has no type attribute');
  const known = CHECKSUM_TYPES[type.toLowerCase()];
  if (known === undefined) {
    throw new ArborError('E_REPODATA_UNSUPPORTED', `repodata '${file}': unknown checksum type '${type}'`, {
      hint: `Arbor checks ${Object.keys(CHECKSUM_TYPES).join(', ')}`,
    });
  }
  const hex = value.trim().toLowerCase();
  if (hex.length !== known.hexLength || !/^[0-9a-f]+$/.test(hex))
    fail(`${type} checksum '${value.trim()}' is not ${known.hexLength} hex digits`);
  return { type: known.algorithm, value: hex };
}

/** A decimal count (bytes, seconds, an epoch): at most 15 digits, so it is exact as a number. */
export function parseCount(text: string, what: string, fail: (message: string) => never): number {
  const trimmed = text.trim();
  if (!/^[0-9]{1,15}$/.test(trimmed)) fail(`${what} '${trimmed}' is not a non-negative integer`);
  return Number(trimmed);
}

/**
 * Resolves a `location href` against the repository directory. Only relative paths without '..'
 * components are accepted: metadata must not make Arbor read (or later fetch) outside the repository.
 */
export function resolveHref(dir: string, href: string, fail: (message: string) => never): string {
  if (href === '' || isAbsolute(href) || href.includes('\0') || href.split('/').some((part) => part === '..')) {
    fail(`location href '${href}' is not a relative path inside the repository`);
  }
  return join(dir, href);
}

/** A file to parse: where it is, how it is named in messages, and what repomd.xml says it holds. */
export interface MetadataFile {
  readonly path: string;
  /** The compressed file's digest; undefined for repomd.xml itself. */
  readonly checksum?: Digest;
  readonly sizeBytes?: number | null;
}

/** What a format's element handlers may do besides collecting: hand out records and fail. */
export interface ParseContext<T> {
  emit(item: T): void;
  /** Throws E_REPODATA_INVALID naming the file and the line being parsed. */
  fail(message: string): never;
}

/** Element events of one document; attribute names are qualified (`rpm:entry`, `xml:base`). */
export interface XmlHandlers {
  open(name: string, attributes: Readonly<Record<string, string>>): void;
  text(text: string): void;
  close(name: string): void;
  /** The document is complete and well-formed: check totals. */
  end(): void;
}

const READ_CHUNK_BYTES = 1024 * 1024;
const STREAM_CHUNK_BYTES = 256 * 1024;

/** The compressor a file's first bytes announce; anything else is read as plain XML. */
function sniffCompressor(magic: Buffer): 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'none' {
  if (magic[0] === 0x1f && magic[1] === 0x8b) return 'gzip';
  if (magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (magic.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (magic.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/** Reads the whole file once: checks size and checksum, returns its first bytes for sniffing. */
async function verifyFile(handle: FileHandle, file: MetadataFile): Promise<Buffer> {
  const hash = file.checksum && createHash(file.checksum.type);
  const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let magic = Buffer.alloc(0);
  let position = 0;
  for (;;) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, buffer.length, position));
    } catch (error) {
      throw ioError('read', file.path, error);
    }
    if (bytesRead === 0) break;
    if (position === 0) magic = Buffer.from(buffer.subarray(0, Math.min(8, bytesRead)));
    hash?.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  if (file.sizeBytes != null && file.sizeBytes !== position) {
    throw new CorruptionError(
      'E_REPODATA_CHECKSUM',
      `repodata '${file.path}' is ${position} bytes, repomd.xml says ${file.sizeBytes}`,
      {
        hint: 'the repository is being rewritten or is damaged: run createrepo_c again, or fetch it again',
      },
    );
  }
  if (hash && file.checksum) {
    const actual = hash.digest('hex');
    if (actual !== file.checksum.value) {
      throw new CorruptionError(
        'E_REPODATA_CHECKSUM',
        `repodata '${file.path}' has ${file.checksum.type} ${actual}, repomd.xml says ${file.checksum.value}`,
        {
          hint: 'the repository is being rewritten or is damaged: run createrepo_c again, or fetch it again',
        },
      );
    }
  }
  return magic;
}

/**
 * Parses one metadata file into records: verifies it first (E_REPODATA_CHECKSUM, before any record
 * exists), then streams it, handing each record to `onItem` (awaited, so a slow consumer slows
 * the read; memory stays at one chunk of records). Returns how many records were handed out.
 */
export async function parseMetadataFile<T>(
  file: MetadataFile,
  makeHandlers: (context: ParseContext<T>) => XmlHandlers,
  onItem: (item: T) => void | Promise<void>,
): Promise<number> {
  let handle: FileHandle;
  try {
    handle = await open(file.path, 'r');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new ArborError('E_REPODATA_MISSING', `repodata '${file.path}' is missing`, {
        hint: 'repomd.xml lists it: run createrepo_c on the repository again',
      });
    }
    throw ioError('open', file.path, error);
  }
  try {
    // Verify first, parse second: the compressed file is small (14 MB of gzip for 100 MiB of XML,
    // SHA-256 in ≈ 10 ms here), while the records parsed from it run to hundreds of MB, so holding
    // them back until a hash-while-parsing pass ends would cost far more than a second read.
    const compressor = sniffCompressor(await verifyFile(handle, file));
    // Imported here: loading saxes costs ≈ 20 ms, which commands that read no repository skip.
    const { SaxesParser } = await import('saxes');
    const parser = new SaxesParser({ xmlns: false, position: true });
    const queue: T[] = [];
    const invalid = (message: string, line = parser.line): CorruptionError =>
      new CorruptionError('E_REPODATA_INVALID', `repodata '${file.path}': line ${line}: ${message}`);
    const handlers = makeHandlers({
      emit: (item) => queue.push(item),
      fail: (message) => {
        throw invalid(message);
      },
    });
    parser.on('opentag', (tag) => handlers.open(tag.name, tag.attributes));
    parser.on('text', (text) => handlers.text(text));
    parser.on('cdata', (text) => handlers.text(text));
    parser.on('closetag', (tag) => handlers.close(tag.name));
    const write = (text: string | null): void => {
      try {
        parser.write(text);
      } catch (error) {
        if (error instanceof ArborError) throw error;
        // saxes writes "LINE:COLUMN: message."; we name the line ourselves and end without a period.
        const line = parser.line;
        throw invalid(
          error instanceof Error ? error.message.replace(/^\d+:\d+: /, '').replace(/\.$/, '') : String(error),
          line,
        );
      }
    };

    let count = 0;
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const raw = handle.createReadStream({ start: 0, autoClose: false, highWaterMark: STREAM_CHUNK_BYTES });
    const chunks = decompress(raw, compressor, file.path)[Symbol.asyncIterator]();
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (error) {
          if (error instanceof ArborError) throw error;
          // An errno (EIO) is the disk; zlib's Z_DATA_ERROR and the like are the data.
          if (/^E[A-Z0-9]+$/.test(errnoCode(error) ?? '')) throw ioError('read', file.path, error);
          throw new CorruptionError(
            'E_REPODATA_INVALID',
            `repodata '${file.path}': cannot decompress (${compressor}): ${error instanceof Error ? error.message : String(error)}`,
            {
              cause: error,
            },
          );
        }
        let text: string;
        try {
          text = next.done ? decoder.decode() : decoder.decode(next.value, { stream: true });
        } catch {
          // TextDecoder's only failure with `fatal`: the message would say no more than this.
          throw invalid('the text is not valid UTF-8');
        }
        write(text);
        if (next.done) {
          write(null);
          handlers.end();
        }
        for (const item of queue.splice(0)) {
          const pending = onItem(item);
          if (pending) await pending;
          count++;
        }
        if (next.done) return count;
      }
    } finally {
      await chunks.return?.();
      raw.destroy();
    }
  } finally {
    await handle.close();
  }
}
