// Extended attributes as stored in file headers and dirmeta: sorted by name bytes, unique.
import { type ByteReader, type ByteWriter, compareUtf8 } from '../../common/bytes.js';

/** One extended attribute: full name (`user.x`, `security.capability`) and raw value. */
export interface Xattr {
  readonly name: string;
  readonly value: Buffer;
}

/** Canonical order: by UTF-8 bytes of the name. */
export function sortXattrs(xattrs: readonly Xattr[]): Xattr[] {
  return [...xattrs].sort((a, b) => compareUtf8(a.name, b.name));
}

/** u32 count, then per attribute: name (u32 length + UTF-8), value (u32 length + bytes). */
export function writeXattrs(out: ByteWriter, xattrs: readonly Xattr[]): void {
  const sorted = sortXattrs(xattrs);
  out.u32(sorted.length);
  // Refuse what readXattrs rejects, so nothing we write fails to decode.
  sorted.forEach(({ name }, i) => {
    if (name.length === 0 || name.includes('\0')) throw new RangeError('invalid xattr name');
    if (i > 0 && sorted[i - 1]?.name === name) throw new RangeError(`duplicate xattr '${name}'`);
  });
  for (const { name, value } of sorted) out.string(name).bytes(value);
}

export function readXattrs(input: ByteReader): Xattr[] {
  const n = input.count(8);
  const xattrs: Xattr[] = [];
  let previous: string | undefined;
  for (let i = 0; i < n; i++) {
    const name = input.string();
    if (name.length === 0 || name.includes('\0')) input.fail('invalid xattr name');
    if (previous !== undefined && compareUtf8(previous, name) >= 0)
      input.fail(`xattr '${name}' is unsorted or duplicate`);
    previous = name;
    xattrs.push({ name, value: Buffer.from(input.bytes()) });
  }
  return xattrs;
}
