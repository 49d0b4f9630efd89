// Reading a package file: lead, signature header and main header (a few small reads), checked
// against the signature's size and header digests before anything trusts them.
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { CorruptionError, ioError } from '../../common/errors.js';
import {
  HEADER_PREAMBLE_BYTES,
  LEAD_BYTES,
  type Lead,
  type RpmHeader,
  decodeHeader,
  decodeLead,
  headerLength,
  signaturePadding,
} from './header.js';
import { type RpmPackage, describePackage } from './package.js';
import { SigTag } from './tags.js';

/**
 * The parts of a package a signature covers, read without checking any digest: the signature
 * header, and where the main header starts (header-only signatures cover its bytes, legacy ones
 * those bytes and the payload to the end of the file).
 */
export interface RpmSignedParts {
  /** The path as given, for messages. */
  readonly path: string;
  readonly lead: Lead;
  readonly signature: RpmHeader;
  /** The main header from its magic to the end of its store. */
  readonly headerBytes: Buffer;
  readonly headerOffset: number;
  readonly fileBytes: number;
}

/** A package whose headers were read and verified; its payload starts at `payloadOffset`. */
export interface RpmHead extends RpmSignedParts {
  readonly header: RpmHeader;
  readonly pkg: RpmPackage;
  readonly payloadOffset: number;
  /** SHA-256 of the main header, hex: what import caches packages by. */
  readonly headerSha256: string;
}

async function readFrom(
  handle: FileHandle,
  position: number,
  length: number,
  path: string,
  what: string,
): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, done, length - done, position + done));
    } catch (error) {
      throw ioError('read', path, error);
    }
    if (bytesRead === 0) {
      throw new CorruptionError(
        'E_RPM_MALFORMED',
        `package '${path}': truncated in the ${what} (needs ${position + length} bytes, the file has ${position + done})`,
      );
    }
    done += bytesRead;
  }
  return buffer;
}

async function openPackage<T>(path: string, use: (handle: FileHandle) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw ioError('open', path, error);
  }
  try {
    return await use(handle);
  } finally {
    await handle.close();
  }
}

/** The first bytes of a package read at once: lead, signature and most main headers fit, so one read serves them. */
const PREFIX_BYTES = 128 * 1024;

async function readParts(handle: FileHandle, path: string): Promise<RpmSignedParts> {
  const fileBytes = (await handle.stat()).size;
  let prefix: Buffer;
  try {
    const buffer = Buffer.allocUnsafe(Math.min(fileBytes, PREFIX_BYTES));
    prefix = buffer.subarray(0, (await handle.read(buffer, 0, buffer.length, 0)).bytesRead);
  } catch (error) {
    throw ioError('read', path, error);
  }
  // A copy, so what is kept (headers) does not hold the whole prefix; past it (or a short read), the file is read.
  const readExactly = async (position: number, length: number, what: string): Promise<Buffer> =>
    position + length <= prefix.length
      ? Buffer.from(prefix.subarray(position, position + length))
      : readFrom(handle, position, length, path, what);
  const lead = decodeLead(await readExactly(0, LEAD_BYTES, 'lead'), path);
  const sigContext = { pkg: path, part: 'signature header' };
  const sigPreamble = await readExactly(LEAD_BYTES, HEADER_PREAMBLE_BYTES, 'signature header');
  const sigLength = headerLength(sigPreamble, sigContext);
  if (LEAD_BYTES + sigLength > fileBytes) throw truncated(path, 'signature header', LEAD_BYTES + sigLength, fileBytes);
  const signature = decodeHeader(await readExactly(LEAD_BYTES, sigLength, 'signature header'), sigContext);
  const padding = signaturePadding(sigLength);
  const headerOffset = LEAD_BYTES + sigLength + padding;
  if (padding > 0) {
    const pad = await readExactly(LEAD_BYTES + sigLength, padding, 'signature padding');
    if (pad.some((b) => b !== 0))
      throw new CorruptionError('E_RPM_MALFORMED', `package '${path}': signature padding is not zero`);
  }
  const length = headerLength(await readExactly(headerOffset, HEADER_PREAMBLE_BYTES, 'header'), {
    pkg: path,
    part: 'header',
  });
  if (headerOffset + length > fileBytes) throw truncated(path, 'header', headerOffset + length, fileBytes);
  const headerBytes = await readExactly(headerOffset, length, 'header');
  return { path, lead, signature, headerBytes, headerOffset, fileBytes };
}

/**
 * Reads lead, signature header, padding and the main header's bytes without checking digests or
 * decoding the main header: what signature verification needs, so a header edited after signing
 * is reported as a bad signature rather than only as a digest mismatch.
 */
export async function readRpmSignedParts(path: string): Promise<RpmSignedParts> {
  return openPackage(path, (handle) => readParts(handle, path));
}

/**
 * Reads and verifies the headers: lead (96 bytes), signature header, padding to 8, main header.
 * Checks the file's size against the signature's header+payload size, and the main header's
 * bytes against the signature's SHA-256 (or SHA-1 when only it is present).
 */
export async function readRpmHead(path: string): Promise<RpmHead> {
  return openPackage(path, async (handle) => {
    const parts = await readParts(handle, path);
    const { signature, headerBytes: bytes, headerOffset, fileBytes } = parts;
    const headerSha256 = createHash('sha256').update(bytes).digest('hex');
    // Digests first: a flipped byte is then reported as what it is, not as whatever it breaks.
    const expectedSha256 = signature.string(SigTag.Sha256);
    const expectedSha1 = signature.string(SigTag.Sha1);
    if (expectedSha256 !== undefined) {
      if (expectedSha256 !== headerSha256) throw digestMismatch(path, 'header SHA-256', expectedSha256, headerSha256);
    } else if (expectedSha1 !== undefined) {
      const sha1 = createHash('sha1').update(bytes).digest('hex');
      if (expectedSha1 !== sha1) throw digestMismatch(path, 'header SHA-1', expectedSha1, sha1);
    }
    const header = decodeHeader(bytes, { pkg: path, part: 'header' });
    const pkg = describePackage(signature, header, path);
    const { integrity } = pkg;
    if (integrity.headerAndPayloadBytes !== undefined) {
      const expected = headerOffset + integrity.headerAndPayloadBytes;
      if (fileBytes < expected) throw truncated(path, 'payload', expected, fileBytes);
      if (fileBytes > expected) {
        throw new CorruptionError(
          'E_RPM_MALFORMED',
          `package '${path}': ${fileBytes - expected} bytes after the payload (the signature says the package is ${expected} bytes)`,
        );
      }
    }
    return { ...parts, header, pkg, payloadOffset: headerOffset + bytes.length, headerSha256 };
  });
}

function truncated(path: string, part: string, needs: number, has: number): CorruptionError {
  return new CorruptionError(
    'E_RPM_MALFORMED',
    `package '${path}': truncated in the ${part} (needs ${needs} bytes, the file has ${has})`,
  );
}

/** A digest in the package disagrees with its bytes. */
export function digestMismatch(path: string, what: string, expected: string, actual: string): CorruptionError {
  return new CorruptionError(
    'E_RPM_DIGEST',
    `package '${path}': ${what} mismatch: expected ${expected}, got ${actual}`,
  );
}
