// Entry headers of the cpio archives in RPM payloads: SVR4 "newc" (070701, and 070702 whose
// checksum rpm ignores) and rpm's stripped variant (07070X) for packages with LONGFILESIZES.
import type { ChunkReader } from './chunk-reader.js';

/** A newc header: 13 fields of 8 hex digits after the magic. */
interface NewcHeader {
  readonly kind: 'newc';
  readonly ino: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly mtime: number;
  readonly size: number;
  readonly devMajor: number;
  readonly devMinor: number;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
  /** The name without its terminating NUL. */
  readonly name: string;
}

/** A stripped header: only the index of the file in the RPM header; everything else is there. */
interface StrippedHeader {
  readonly kind: 'stripped';
  readonly fileIndex: number;
}

export type CpioHeader = NewcHeader | StrippedHeader | { readonly kind: 'trailer' };

const CPIO_TRAILER = 'TRAILER!!!';
const NEWC_FIELDS_BYTES = 13 * 8;
// rpm refuses longer names too; it bounds what one header can make us read.
const MAX_NAME_BYTES = 4096;
const HEX8 = /^[0-9a-fA-F]{8}$/;

/** Bytes of padding that bring `position` to a multiple of 4. */
const pad4 = (position: number): number => (4 - (position % 4)) % 4;

/**
 * Reads the next entry header, first skipping the padding that aligns every header to 4 bytes.
 * Layout: magic (6 ASCII bytes); newc: 13 × 8 hex digits (ino, mode, uid, gid, nlink, mtime,
 * filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check), the NUL-terminated name,
 * padding to 4; stripped: 8 hex digits of file index, padding to 4. The file's data follows.
 * `fail` builds the error for a malformed or truncated header.
 */
export async function readCpioHeader(reader: ChunkReader, fail: (problem: string) => Error): Promise<CpioHeader> {
  const at = reader.position;
  await skipPadding(reader, fail);
  const magic = await reader.read(6);
  if (magic === undefined) throw fail(`payload ends at byte ${at} without a cpio trailer`);
  const magicText = magic.toString('latin1');
  if (magicText === '07070X') {
    const field = await reader.read(8);
    if (field === undefined) throw fail('truncated cpio header');
    const fileIndex = parseHex(field, 'file index', fail);
    await skipPadding(reader, fail);
    return { kind: 'stripped', fileIndex };
  }
  if (magicText !== '070701' && magicText !== '070702') throw fail(`bad cpio magic at byte ${reader.position - 6}`);
  const fields = await reader.read(NEWC_FIELDS_BYTES);
  if (fields === undefined) throw fail('truncated cpio header');
  const names = [
    'ino',
    'mode',
    'uid',
    'gid',
    'nlink',
    'mtime',
    'size',
    'devmajor',
    'devminor',
    'rdevmajor',
    'rdevminor',
    'namesize',
    'check',
  ];
  const values = names.map((name, i) => parseHex(fields.subarray(i * 8, i * 8 + 8), name, fail));
  const nameSize = values[11]!;
  if (nameSize < 2 || nameSize > MAX_NAME_BYTES) throw fail(`cpio name size ${nameSize} is out of range`);
  const nameBytes = await reader.read(nameSize);
  if (nameBytes === undefined) throw fail('truncated cpio name');
  const nul = nameBytes.indexOf(0);
  if (nul !== nameSize - 1) throw fail(nul < 0 ? 'cpio name is not NUL-terminated' : 'cpio name contains a NUL byte');
  const name = nameBytes.toString('utf8', 0, nameSize - 1);
  await skipPadding(reader, fail);
  if (name === CPIO_TRAILER) return { kind: 'trailer' };
  return {
    kind: 'newc',
    ino: values[0]!,
    mode: values[1]!,
    uid: values[2]!,
    gid: values[3]!,
    nlink: values[4]!,
    mtime: values[5]!,
    size: values[6]!,
    devMajor: values[7]!,
    devMinor: values[8]!,
    rdevMajor: values[9]!,
    rdevMinor: values[10]!,
    name,
  };
}

/** Skips the padding after a file's data; padding bytes must be zero. */
export async function skipPadding(reader: ChunkReader, fail: (problem: string) => Error): Promise<void> {
  const n = pad4(reader.position);
  if (n === 0) return;
  const pad = await reader.read(n);
  if (pad === undefined) throw fail('payload ends inside cpio padding');
  if (pad.some((b) => b !== 0)) throw fail(`non-zero cpio padding at byte ${reader.position - n}`);
}

function parseHex(field: Buffer, what: string, fail: (problem: string) => Error): number {
  const text = field.toString('latin1');
  if (!HEX8.test(text)) throw fail(`cpio ${what} field '${text.replace(/[^\x20-\x7e]/g, '?')}' is not 8 hex digits`);
  return Number.parseInt(text, 16);
}
