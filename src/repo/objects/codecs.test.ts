// The object codecs against their golden vectors (fixtures/golden), round-trip and canonical-order
// properties, and tables of malformed input every decoder must reject (docs/format.md).
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  GOLDEN_FORMATS,
  type GoldenCodec,
  type GoldenFormat,
  type GoldenValues,
  UPDATE_GOLDEN,
  describeGoldenVectors,
  expectMalformed,
  listGolden,
  readGolden,
  valueFromJson,
  valueToJson,
} from '../../../test/support/golden.js';
import { ByteWriter } from '../../common/bytes.js';
import { type Checksum, bytesToChecksum, hashBytes } from '../../common/hash.js';
import {
  type Commit,
  type DirMeta,
  type DirTree,
  type FileHeader,
  type MetadataValue,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  type Xattr,
  decodeCommit,
  decodeCommitMeta,
  decodeDirMeta,
  decodeDirTree,
  decodeFileHeader,
  decodeFileObject,
  encodeCommit,
  encodeCommitMeta,
  encodeDirMeta,
  encodeDirTree,
  encodeFileHeader,
} from './index.js';
import { isValidName } from './names.js';

interface Codec<T> {
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
}

const CODECS: { [F in GoldenFormat]: Codec<GoldenValues[F]> } = {
  'file-header': { encode: encodeFileHeader, decode: (b) => decodeFileHeader(b) },
  file: {
    encode: ({ header, content }) => Buffer.concat([encodeFileHeader(header), content]),
    decode: (b) => decodeFileObject(b),
  },
  dirmeta: { encode: encodeDirMeta, decode: (b) => decodeDirMeta(b) },
  dirtree: { encode: encodeDirTree, decode: (b) => decodeDirTree(b) },
  commit: { encode: encodeCommit, decode: (b) => decodeCommit(b) },
  commitmeta: { encode: encodeCommitMeta, decode: (b) => decodeCommitMeta(b) },
};
const codecOf = (format: GoldenFormat): Codec<unknown> => CODECS[format] as Codec<unknown>;

// The same value with every list and map in reverse order: it must encode to the same bytes.
function reversed(format: GoldenFormat, value: unknown): unknown {
  const rev = <T>(items: readonly T[]): T[] => [...items].reverse();
  const revMap = <K, V>(m: ReadonlyMap<K, V>): Map<K, V> => new Map(rev([...m]));
  const revHeader = (h: FileHeader): FileHeader => ({ ...h, xattrs: rev(h.xattrs) });
  switch (format) {
    case 'file-header':
      return revHeader(value as FileHeader);
    case 'file': {
      const v = value as GoldenValues['file'];
      return { ...v, header: revHeader(v.header) };
    }
    case 'dirmeta':
      return { ...(value as DirMeta), xattrs: rev((value as DirMeta).xattrs) };
    case 'dirtree':
      return { files: rev((value as DirTree).files), dirs: rev((value as DirTree).dirs) };
    case 'commit':
      return { ...(value as Commit), metadata: revMap((value as Commit).metadata) };
    case 'commitmeta':
      return revMap(value as Map<string, MetadataValue>);
  }
}

describeGoldenVectors(
  GOLDEN_FORMATS,
  (format): GoldenCodec<unknown> => ({ ...codecOf(format), reversed: (value) => reversed(format, value) }),
  { fromJson: valueFromJson, toJson: (format, value) => valueToJson(format, value as never) },
);

describe('golden file objects', () => {
  it.skipIf(UPDATE_GOLDEN).each(listGolden('file'))(
    '%s hashes as header then content, the way the store streams it',
    (name) => {
      const { value, checksum } = readGolden('file', name);
      expect(hashBytes(encodeFileHeader(value.header), value.content)).toBe(checksum);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Raw builders: lay out fields in format order without any validation, to forge malformed input.

const sum = (byte: number): Buffer => Buffer.alloc(32, byte);
const nameBytes = (name: string | Buffer): Buffer => (typeof name === 'string' ? Buffer.from(name, 'utf8') : name);
const u64Bytes = (value: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(value);
  return b;
};

interface RawHeader {
  kind: number;
  version: number;
  uid: number;
  gid: number;
  mode: number;
  rdevMajor: number;
  rdevMinor: number;
  target: string | Buffer;
  xattrs: [string | Buffer, Buffer][];
  /** Overrides the xattr count. */
  xattrCount?: number;
  size: bigint;
  /** Overrides the symlink target length. */
  targetLength?: number;
}
const REGULAR: RawHeader = {
  kind: 1,
  version: 2,
  uid: 0,
  gid: 0,
  mode: 0o100644,
  rdevMajor: 0,
  rdevMinor: 0,
  target: '',
  xattrs: [],
  size: 0n,
};

function headerBytes(patch: Partial<RawHeader>): Buffer {
  const h = { ...REGULAR, ...patch };
  const target = nameBytes(h.target);
  const out = new ByteWriter()
    .u8(h.kind)
    .u8(h.version)
    .u32(h.uid)
    .u32(h.gid)
    .u32(h.mode)
    .u32(h.rdevMajor)
    .u32(h.rdevMinor);
  out.u32(h.targetLength ?? target.length).raw(target);
  out.u32(h.xattrCount ?? h.xattrs.length);
  for (const [name, value] of h.xattrs) out.bytes(nameBytes(name)).bytes(value);
  return Buffer.concat([out.finish(), u64Bytes(h.size)]);
}

function dirMetaBytes(patch: { kind?: number; version?: number; mode?: number; xattrs?: [string, Buffer][] }): Buffer {
  const out = new ByteWriter()
    .u8(patch.kind ?? 3)
    .u8(patch.version ?? 2)
    .u32(0)
    .u32(0)
    .u32(patch.mode ?? 0o40755);
  const xattrs = patch.xattrs ?? [];
  out.u32(xattrs.length);
  for (const [name, value] of xattrs) out.string(name).bytes(value);
  return out.finish();
}

function dirTreeBytes(patch: {
  kind?: number;
  version?: number;
  files?: (string | Buffer)[];
  dirs?: (string | Buffer)[];
  fileCount?: number;
  truncate?: number;
}): Buffer {
  const files = patch.files ?? [];
  const dirs = patch.dirs ?? [];
  const out = new ByteWriter()
    .u8(patch.kind ?? 2)
    .u8(patch.version ?? 2)
    .u32(patch.fileCount ?? files.length);
  for (const name of files) out.bytes(nameBytes(name)).raw(sum(0x11)).u64(7);
  if (patch.truncate !== undefined) return out.finish().subarray(0, -patch.truncate);
  out.u32(dirs.length);
  for (const name of dirs) out.bytes(nameBytes(name)).raw(sum(0x22)).raw(sum(0x33));
  return out.finish();
}

/** One metadata entry: key, type tag, and the already-encoded value. */
type RawEntry = [key: string | Buffer, tag: number, value: Buffer];
const STRING_ENTRY = (key: string): RawEntry => [key, 1, new ByteWriter().string('v').finish()];

function metadataBytes(entries: RawEntry[], count = entries.length): Buffer {
  const out = new ByteWriter().u32(count);
  for (const [key, tag, value] of entries) out.bytes(nameBytes(key)).u8(tag).raw(value);
  return out.finish();
}

function commitBytes(patch: {
  kind?: number;
  version?: number;
  parentFlag?: number;
  timestamp?: bigint;
  subject?: Buffer;
  metadata?: Buffer;
}): Buffer {
  const parentFlag = patch.parentFlag ?? 0;
  const out = new ByteWriter()
    .u8(patch.kind ?? 4)
    .u8(patch.version ?? 2)
    .u8(parentFlag);
  if (parentFlag === 1) out.raw(sum(0x44));
  out.raw(u64Bytes(patch.timestamp ?? 1700000000n));
  out.bytes(patch.subject ?? Buffer.from('subject')).string('');
  out.raw(sum(0x55)).raw(sum(0x66));
  return Buffer.concat([out.finish(), patch.metadata ?? metadataBytes([])]);
}

function commitMetaBytes(patch: { kind?: number; version?: number; metadata?: Buffer }): Buffer {
  return Buffer.concat([Buffer.of(patch.kind ?? 5, patch.version ?? 2), patch.metadata ?? metadataBytes([])]);
}

const INVALID_UTF8: [string, Buffer][] = [
  ['a 0xff byte', Buffer.of(0x61, 0xff)],
  ['an overlong "/" (c0 af)', Buffer.of(0xc0, 0xaf)],
  ['an encoded surrogate (ed a0 80)', Buffer.of(0xed, 0xa0, 0x80)],
  ['a truncated 3-byte sequence', Buffer.of(0x61, 0xe2, 0x82)],
  ['a code point above U+10FFFF (f4 90 80 80)', Buffer.of(0xf4, 0x90, 0x80, 0x80)],
];

describe('raw builders', () => {
  // Controls: with no defect, each builder makes input the decoders accept, so each rejection
  // below is caused by the one defect its row introduces.
  it('build valid objects when given no defect', () => {
    expect(decodeFileHeader(headerBytes({ xattrs: [['user.a', Buffer.of(1)]], size: 3n })).size).toBe(3);
    expect(decodeFileHeader(headerBytes({ mode: 0o120777, target: 'x' })).symlinkTarget).toBe('x');
    expect(decodeDirMeta(dirMetaBytes({ xattrs: [['user.a', Buffer.of()]] })).mode).toBe(0o40755);
    expect(decodeDirTree(dirTreeBytes({ files: ['a', 'b'], dirs: ['c', 'd'] })).dirs).toHaveLength(2);
    expect(
      decodeCommit(commitBytes({ parentFlag: 1, metadata: metadataBytes([STRING_ENTRY('a'), STRING_ENTRY('b')]) }))
        .metadata.size,
    ).toBe(2);
    expect(decodeCommitMeta(commitMetaBytes({ metadata: metadataBytes([STRING_ENTRY('a')]) })).size).toBe(1);
  });
  it('lay out a valid header exactly as the encoder does', () => {
    const header: FileHeader = {
      uid: 1,
      gid: 2,
      mode: 0o60600,
      rdevMajor: 8,
      rdevMinor: 1,
      symlinkTarget: '',
      xattrs: [{ name: 'user.a', value: Buffer.of(7) }],
      size: 0,
    };
    expect(
      headerBytes({ uid: 1, gid: 2, mode: 0o60600, rdevMajor: 8, rdevMinor: 1, xattrs: [['user.a', Buffer.of(7)]] }),
    ).toEqual(encodeFileHeader(header));
  });
});

// ---------------------------------------------------------------------------------------------
// Strictness: each row is one defect; every decoder reports it as E_OBJECT_MALFORMED.

describe('decodeFileHeader rejects', () => {
  it.each<[string, Partial<RawHeader>]>([
    ['a wrong kind tag (dirtree)', { kind: 2 }],
    ['kind tag 0', { kind: 0 }],
    ['version byte 1 (the format before dirtrees recorded sizes)', { version: 1 }],
    ['an unknown version byte 3', { version: 3 }],
    ['version byte 0', { version: 0 }],
    ['a socket (unsupported file type bits)', { mode: 0o140755 }],
    ['a directory', { mode: 0o40755 }],
    ['a mode with no type bits', { mode: 0o644 }],
    ['mode bits above the type bits', { mode: 0o1100644 }],
    ['a symlink without a target', { mode: 0o120777 }],
    ['a regular file with a symlink target', { target: 'x' }],
    ['a fifo with a symlink target', { mode: 0o10644, target: 'x' }],
    ['a symlink target containing NUL', { mode: 0o120777, target: 'a\0b' }],
    ['rdev on a regular file', { rdevMinor: 1 }],
    ['rdev on a fifo', { mode: 0o10644, rdevMajor: 1 }],
    ['rdev on a symlink', { mode: 0o120777, target: 'x', rdevMajor: 1 }],
    ['a content size on a symlink', { mode: 0o120777, target: 'x', size: 5n }],
    ['a content size on a character device', { mode: 0o20666, rdevMajor: 1, rdevMinor: 3, size: 1n }],
    ['a content size on a fifo', { mode: 0o10644, size: 1n }],
    ['a size above 2^53-1', { size: 2n ** 53n }],
    ['a size of 2^64-1', { size: 2n ** 64n - 1n }],
    [
      'unsorted xattrs',
      {
        xattrs: [
          ['user.b', Buffer.of()],
          ['user.a', Buffer.of()],
        ],
      },
    ],
    [
      'xattrs in UTF-16 order instead of UTF-8 order',
      {
        xattrs: [
          ['user.\u{1F600}', Buffer.of()],
          ['user.\uFF61', Buffer.of()],
        ],
      },
    ],
    [
      'a duplicate xattr',
      {
        xattrs: [
          ['user.a', Buffer.of(1)],
          ['user.a', Buffer.of(2)],
        ],
      },
    ],
    ['an empty xattr name', { xattrs: [['', Buffer.of()]] }],
    ['an xattr name containing NUL', { xattrs: [['user.a\0b', Buffer.of()]] }],
    ['an xattr name that is invalid UTF-8', { xattrs: [[Buffer.of(0x75, 0xff), Buffer.of()]] }],
    ['an xattr count larger than what remains', { xattrCount: 0xffffffff }],
    ['a symlink target length larger than what remains', { mode: 0o120777, target: 'x', targetLength: 0xffffffff }],
    ...INVALID_UTF8.map(([what, bytes]): [string, Partial<RawHeader>] => [
      `a symlink target with ${what}`,
      { mode: 0o120777, target: bytes },
    ]),
  ])('%s', (_, patch) => {
    expectMalformed(() => decodeFileHeader(headerBytes(patch)));
  });
});

describe('decodeFileObject rejects', () => {
  it.each<[string, Buffer]>([
    ['content shorter than the header says', Buffer.concat([headerBytes({ size: 5n }), Buffer.from('four')])],
    ['content longer than the header says', Buffer.concat([headerBytes({ size: 3n }), Buffer.from('four')])],
    ['content after a symlink header', Buffer.concat([headerBytes({ mode: 0o120777, target: 'x' }), Buffer.of(0)])],
    ['a header alone that promises content', headerBytes({ size: 1n })],
  ])('%s', (_, bytes) => {
    expectMalformed(() => decodeFileObject(bytes));
  });
});

describe('decodeDirMeta rejects', () => {
  it.each<[string, Parameters<typeof dirMetaBytes>[0]]>([
    ['a wrong kind tag (file)', { kind: 1 }],
    ['version byte 1 (the format before dirtrees recorded sizes)', { version: 1 }],
    ['an unknown version byte 3', { version: 3 }],
    ['a regular file mode', { mode: 0o100755 }],
    ['a mode with no type bits', { mode: 0o755 }],
    ['mode bits above the type bits', { mode: 0o1040755 }],
    [
      'unsorted xattrs',
      {
        xattrs: [
          ['user.b', Buffer.of()],
          ['user.a', Buffer.of()],
        ],
      },
    ],
    [
      'a duplicate xattr',
      {
        xattrs: [
          ['user.a', Buffer.of()],
          ['user.a', Buffer.of()],
        ],
      },
    ],
    ['an empty xattr name', { xattrs: [['', Buffer.of()]] }],
  ])('%s', (_, patch) => {
    expectMalformed(() => decodeDirMeta(dirMetaBytes(patch)));
  });
});

describe('decodeDirTree rejects', () => {
  const badNames: [string, string | Buffer][] = [
    ["the empty name ''", ''],
    ["the name '.'", '.'],
    ["the name '..'", '..'],
    ["the name 'a/b'", 'a/b'],
    ["the name '/'", '/'],
    ["the name 'a\\0b'", 'a\0b'],
    ['a name of 256 bytes', 'x'.repeat(256)],
    ...INVALID_UTF8.map(([what, bytes]): [string, Buffer] => [`a name with ${what}`, bytes]),
  ];
  it.each<[string, Parameters<typeof dirTreeBytes>[0]]>([
    ['a wrong kind tag (dirmeta)', { kind: 3 }],
    ['an unknown kind tag 6', { kind: 6 }],
    ['version byte 1 (the format before dirtrees recorded sizes)', { version: 1 }],
    ['an unknown version byte 3', { version: 3 }],
    ['unsorted files', { files: ['b', 'a'] }],
    ['unsorted dirs', { dirs: ['b', 'a'] }],
    ['files in UTF-16 order instead of UTF-8 order', { files: ['\u{1F600}', '\uFF61'] }],
    ['dirs in UTF-16 order instead of UTF-8 order', { dirs: ['\u{1F600}', '\uFF61'] }],
    ['a duplicate file', { files: ['a', 'a'] }],
    ['a duplicate dir', { dirs: ['a', 'a'] }],
    ['a name that is both a file and a dir', { files: ['a'], dirs: ['a'] }],
    ['a file count larger than what remains', { files: ['a'], fileCount: 0xffffffff }],
    ['a file entry cut inside its size', { files: ['a'], truncate: 4 }],
    ...badNames.map(([what, name]): [string, Parameters<typeof dirTreeBytes>[0]] => [
      `${what} as a file`,
      { files: [name] },
    ]),
    ...badNames.map(([what, name]): [string, Parameters<typeof dirTreeBytes>[0]] => [
      `${what} as a dir`,
      { dirs: [name] },
    ]),
  ])('%s', (_, patch) => {
    expectMalformed(() => decodeDirTree(dirTreeBytes(patch)));
  });
  it('rejects a name length field larger than what remains', () => {
    // u32 count 1, then a name claiming 2^32-1 bytes; 40 bytes follow, enough for the count check.
    const bytes = Buffer.concat([Buffer.of(2, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff), Buffer.alloc(40)]);
    expectMalformed(() => decodeDirTree(bytes));
  });
});

const i64 = (value: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(value);
  return b;
};
const metadataDefects: [string, Buffer][] = [
  ['unsorted keys', metadataBytes([STRING_ENTRY('b'), STRING_ENTRY('a')])],
  ['a duplicate key', metadataBytes([STRING_ENTRY('a'), STRING_ENTRY('a')])],
  ['keys in UTF-16 order instead of UTF-8 order', metadataBytes([STRING_ENTRY('\u{1F600}'), STRING_ENTRY('\uFF61')])],
  ['an empty key', metadataBytes([STRING_ENTRY('')])],
  ['a key that is invalid UTF-8', metadataBytes([[Buffer.of(0xff), 1, new ByteWriter().string('v').finish()]])],
  ['unknown metadata type tag 0', metadataBytes([['a', 0, Buffer.of()]])],
  ['unknown metadata type tag 7', metadataBytes([['a', 7, Buffer.of(0, 0, 0, 0)]])],
  ['bool byte 2', metadataBytes([['a', 3, Buffer.of(2)]])],
  ['bool byte 0xff', metadataBytes([['a', 3, Buffer.of(0xff)]])],
  ['an int above 2^53-1', metadataBytes([['a', 2, i64(2n ** 53n)]])],
  ['an int below -(2^53-1)', metadataBytes([['a', 2, i64(-(2n ** 53n))]])],
  ['a string value that is invalid UTF-8', metadataBytes([['a', 1, Buffer.of(0, 0, 0, 1, 0xff)]])],
  ['a bytes length larger than what remains', metadataBytes([['a', 4, Buffer.of(0, 0, 0, 9, 1)]])],
  ['a strings count larger than what remains', metadataBytes([['a', 5, Buffer.of(0xff, 0xff, 0xff, 0xff)]])],
  ['a bytes-list count larger than what remains', metadataBytes([['a', 6, Buffer.of(0, 0, 0, 2, 0, 0, 0, 0)]])],
  ['an entry count larger than what remains', metadataBytes([STRING_ENTRY('a')], 2)],
];

describe('decodeCommit rejects', () => {
  it.each<[string, Parameters<typeof commitBytes>[0]]>([
    ['a wrong kind tag (commitmeta)', { kind: 5 }],
    ['version byte 1 (the format before dirtrees recorded sizes)', { version: 1 }],
    ['an unknown version byte 3', { version: 3 }],
    ['parent flag 2', { parentFlag: 2 }],
    ['a timestamp above 2^53-1', { timestamp: 2n ** 63n }],
    ['a subject that is invalid UTF-8', { subject: Buffer.of(0xc3) }],
    ...metadataDefects.map(([what, metadata]): [string, Parameters<typeof commitBytes>[0]] => [
      `metadata with ${what}`,
      { metadata },
    ]),
  ])('%s', (_, patch) => {
    expectMalformed(() => decodeCommit(commitBytes(patch)));
  });
});

describe('decodeCommitMeta rejects', () => {
  it.each<[string, Parameters<typeof commitMetaBytes>[0]]>([
    ['a wrong kind tag (commit)', { kind: 4 }],
    ['an unknown version byte', { version: 0 }],
    ...metadataDefects.map(([what, metadata]): [string, Parameters<typeof commitMetaBytes>[0]] => [what, { metadata }]),
  ])('%s', (_, patch) => {
    expectMalformed(() => decodeCommitMeta(commitMetaBytes(patch)));
  });
});

describe('encoders refuse values they could not write canonically', () => {
  const zero = '0'.repeat(64) as Checksum;
  const header: FileHeader = {
    uid: 0,
    gid: 0,
    mode: S_IFREG | 0o644,
    rdevMajor: 0,
    rdevMinor: 0,
    symlinkTarget: '',
    xattrs: [],
    size: 0,
  };
  it.each<[string, () => unknown]>([
    [
      'a dirtree name that is invalid',
      () => encodeDirTree({ files: [{ name: 'a/b', checksum: zero, size: 0 }], dirs: [] }),
    ],
    [
      'a dirtree name used twice',
      () =>
        encodeDirTree({
          files: [{ name: 'a', checksum: zero, size: 0 }],
          dirs: [{ name: 'a', tree: zero, meta: zero }],
        }),
    ],
    // A lone surrogate would be written as U+FFFD, colliding with a real U+FFFD and breaking the order.
    [
      'a dirtree name with a lone surrogate',
      () => encodeDirTree({ files: [{ name: '\uD800', checksum: zero, size: 0 }], dirs: [] }),
    ],
    [
      'a checksum that is not 64 hex digits',
      () => encodeDirTree({ files: [{ name: 'a', checksum: 'zz' as Checksum, size: 0 }], dirs: [] }),
    ],
    [
      'a duplicate xattr',
      () =>
        encodeFileHeader({
          ...header,
          xattrs: [
            { name: 'user.a', value: Buffer.of(1) },
            { name: 'user.a', value: Buffer.of(2) },
          ],
        }),
    ],
    [
      'an empty xattr name',
      () => encodeDirMeta({ uid: 0, gid: 0, mode: S_IFDIR | 0o755, xattrs: [{ name: '', value: Buffer.of() }] }),
    ],
    ['a socket', () => encodeFileHeader({ ...header, mode: 0o140755 })],
    ['a symlink without a target', () => encodeFileHeader({ ...header, mode: S_IFLNK | 0o777 })],
    ['a dirmeta with a file mode', () => encodeDirMeta({ uid: 0, gid: 0, mode: S_IFREG | 0o755, xattrs: [] })],
    ['an empty metadata key', () => encodeCommitMeta(new Map([['', { type: 'bool', value: true }]]))],
    ['an int outside the safe range', () => encodeCommitMeta(new Map([['a', { type: 'int', value: 2 ** 53 }]]))],
  ])('%s', (_, fn) => {
    expect(fn).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over arbitrary valid values.

// Units that probe the encoding: multi-byte UTF-8 of each length, the BMP/astral boundary where
// UTF-16 and UTF-8 orders disagree (U+E000..U+FFFF vs surrogate pairs), and ASCII separators.
const unit = fc.oneof(
  fc.constantFrom(
    'a',
    'Z',
    '.',
    '-',
    '\u00e9',
    '\u07ff',
    '\u0800',
    '\ue000',
    '\uff61',
    '\uffff',
    '\u{10000}',
    '\u{1F600}',
    '\u{10FFFF}',
  ),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);
const text = (maxLength = 8): fc.Arbitrary<string> => fc.string({ unit, maxLength });
const nonEmptyText = fc.string({ unit, minLength: 1, maxLength: 8 });
const nameArb = nonEmptyText.filter(isValidName);
const checksumArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => bytesToChecksum(b));
const bufferArb = fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b));
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const perms = fc.integer({ min: 0, max: 0o7777 });
const xattrsArb: fc.Arbitrary<Xattr[]> = fc.uniqueArray(
  fc.record({ name: nonEmptyText.filter((n) => !n.includes('\0')), value: bufferArb }),
  { selector: (x) => x.name, maxLength: 4 },
);

const fileHeaderArb: fc.Arbitrary<FileHeader> = fc
  .record({
    uid: u32,
    gid: u32,
    perms,
    xattrs: xattrsArb,
    size: fc.maxSafeNat(),
    target: nonEmptyText.filter((t) => !t.includes('\0')),
    major: u32,
    minor: u32,
  })
  .chain((r) => {
    const base = { uid: r.uid, gid: r.gid, xattrs: r.xattrs, rdevMajor: 0, rdevMinor: 0, symlinkTarget: '', size: 0 };
    return fc.constantFrom<FileHeader>(
      { ...base, mode: S_IFREG | r.perms, size: r.size },
      { ...base, mode: S_IFLNK | r.perms, symlinkTarget: r.target },
      { ...base, mode: S_IFCHR | r.perms, rdevMajor: r.major, rdevMinor: r.minor },
      { ...base, mode: S_IFBLK | r.perms, rdevMajor: r.major, rdevMinor: r.minor },
      { ...base, mode: S_IFIFO | r.perms },
    );
  });

const dirMetaArb: fc.Arbitrary<DirMeta> = fc.record({
  uid: u32,
  gid: u32,
  mode: perms.map((p) => S_IFDIR | p),
  xattrs: xattrsArb,
});

const dirTreeArb: fc.Arbitrary<DirTree> = fc
  .uniqueArray(
    fc.record({ name: nameArb, isDir: fc.boolean(), a: checksumArb, b: checksumArb, size: fc.maxSafeNat() }),
    { selector: (e) => e.name, maxLength: 10 },
  )
  .map((entries) => ({
    files: entries.filter((e) => !e.isDir).map((e) => ({ name: e.name, checksum: e.a, size: e.size })),
    dirs: entries.filter((e) => e.isDir).map((e) => ({ name: e.name, tree: e.a, meta: e.b })),
  }));

const metadataValueArb: fc.Arbitrary<MetadataValue> = fc.oneof(
  text().map((value) => ({ type: 'string' as const, value })),
  fc.maxSafeInteger().map((value) => ({ type: 'int' as const, value })),
  fc.boolean().map((value) => ({ type: 'bool' as const, value })),
  bufferArb.map((value) => ({ type: 'bytes' as const, value })),
  fc.array(text(), { maxLength: 3 }).map((value) => ({ type: 'strings' as const, value })),
  fc.array(bufferArb, { maxLength: 3 }).map((value) => ({ type: 'bytes-list' as const, value })),
);
const metadataArb = fc
  .uniqueArray(fc.tuple(nonEmptyText, metadataValueArb), { selector: ([key]) => key, maxLength: 6 })
  .map((entries) => new Map(entries));

const commitArb: fc.Arbitrary<Commit> = fc.record({
  parent: fc.option(checksumArb, { nil: null }),
  timestamp: fc.maxSafeNat(),
  subject: text(),
  body: text(20),
  rootTree: checksumArb,
  rootMeta: checksumArb,
  metadata: metadataArb,
});

// Canonical order computed independently of compareUtf8: Buffer.compare of the UTF-8 bytes.
const utf8Order =
  <T>(key: (item: T) => string) =>
  (a: T, b: T) =>
    Buffer.compare(Buffer.from(key(a)), Buffer.from(key(b)));
const sortedBy = <T>(items: readonly T[], key: (item: T) => string): T[] => [...items].sort(utf8Order(key));
const canonicalHeader = (h: FileHeader): FileHeader => ({ ...h, xattrs: sortedBy(h.xattrs, (x) => x.name) });
const canonicalMetadata = (m: ReadonlyMap<string, MetadataValue>): Map<string, MetadataValue> =>
  new Map(sortedBy([...m], ([k]) => k));
const shuffled = <T>(items: readonly T[]): fc.Arbitrary<T[]> =>
  fc.shuffledSubarray([...items], { minLength: items.length, maxLength: items.length });

describe('round trips', () => {
  test.prop([fileHeaderArb])(
    'a file header decodes to its canonical form and re-encodes to the same bytes',
    (header) => {
      const bytes = encodeFileHeader(header);
      const decoded = decodeFileHeader(bytes);
      expect(decoded).toEqual(canonicalHeader(header));
      expect(encodeFileHeader(decoded)).toEqual(bytes);
    },
  );
  test.prop([fileHeaderArb, fc.uint8Array({ maxLength: 64 })])(
    'a whole file object splits back into header and content',
    (h, raw) => {
      const content = Buffer.from(raw);
      const header = {
        ...h,
        size: content.length,
        mode: (h.mode & 0o7777) | S_IFREG,
        symlinkTarget: '',
        rdevMajor: 0,
        rdevMinor: 0,
      };
      const decoded = decodeFileObject(Buffer.concat([encodeFileHeader(header), content]));
      expect(decoded).toEqual({ header: canonicalHeader(header), content });
    },
  );
  test.prop([dirMetaArb])('a dirmeta decodes to its canonical form and re-encodes to the same bytes', (meta) => {
    const bytes = encodeDirMeta(meta);
    const decoded = decodeDirMeta(bytes);
    expect(decoded).toEqual({ ...meta, xattrs: sortedBy(meta.xattrs, (x) => x.name) });
    expect(encodeDirMeta(decoded)).toEqual(bytes);
  });
  test.prop([dirTreeArb])('a dirtree decodes to its canonical form and re-encodes to the same bytes', (tree) => {
    const bytes = encodeDirTree(tree);
    const decoded = decodeDirTree(bytes);
    expect(decoded).toEqual({ files: sortedBy(tree.files, (f) => f.name), dirs: sortedBy(tree.dirs, (d) => d.name) });
    expect(encodeDirTree(decoded)).toEqual(bytes);
  });
  test.prop([commitArb])('a commit decodes to its canonical form and re-encodes to the same bytes', (commit) => {
    const bytes = encodeCommit(commit);
    const decoded = decodeCommit(bytes);
    expect(decoded).toEqual({ ...commit, metadata: canonicalMetadata(commit.metadata) });
    expect([...decoded.metadata.keys()]).toEqual([...canonicalMetadata(commit.metadata).keys()]);
    expect(encodeCommit(decoded)).toEqual(bytes);
  });
  test.prop([metadataArb])('a metadata map decodes in UTF-8 key order and re-encodes to the same bytes', (metadata) => {
    const bytes = encodeCommitMeta(metadata);
    const decoded = decodeCommitMeta(bytes);
    expect([...decoded]).toEqual([...canonicalMetadata(metadata)]);
    expect(encodeCommitMeta(decoded)).toEqual(bytes);
  });
});

describe('encoding is independent of input order', () => {
  test.prop([fileHeaderArb.chain((h) => fc.tuple(fc.constant(h), shuffled(h.xattrs)))])(
    'shuffled xattrs encode equal',
    ([h, xattrs]) => {
      expect(encodeFileHeader({ ...h, xattrs })).toEqual(encodeFileHeader(h));
    },
  );
  test.prop([dirTreeArb.chain((t) => fc.tuple(fc.constant(t), shuffled(t.files), shuffled(t.dirs)))])(
    'shuffled dirtree entries encode equal',
    ([tree, files, dirs]) => {
      expect(encodeDirTree({ files, dirs })).toEqual(encodeDirTree(tree));
    },
  );
  test.prop([metadataArb.chain((m) => fc.tuple(fc.constant(m), shuffled([...m])))])(
    'metadata inserted in any order encodes equal',
    ([metadata, entries]) => {
      expect(encodeCommitMeta(new Map(entries))).toEqual(encodeCommitMeta(metadata));
    },
  );
});

// Any input a decoder accepts is canonical: re-encoding it gives back exactly those bytes. Single
// byte changes to valid encodings probe the edges (counts, lengths, order, tags, flags).
describe('decoders accept only canonical bytes', () => {
  const mutated = <T>(arb: fc.Arbitrary<T>, encode: (v: T) => Buffer): fc.Arbitrary<Buffer> =>
    arb.map(encode).chain((bytes) =>
      fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, delta]) => {
        const copy = Buffer.from(bytes);
        copy[at] = ((copy[at] as number) + delta) & 0xff;
        return copy;
      }),
    );
  it.each<[string, fc.Arbitrary<Buffer>, Codec<never>]>([
    ['file header', mutated(fileHeaderArb, encodeFileHeader), CODECS['file-header'] as Codec<never>],
    ['dirmeta', mutated(dirMetaArb, encodeDirMeta), CODECS.dirmeta as Codec<never>],
    ['dirtree', mutated(dirTreeArb, encodeDirTree), CODECS.dirtree as Codec<never>],
    ['commit', mutated(commitArb, encodeCommit), CODECS.commit as Codec<never>],
    ['commitmeta', mutated(metadataArb, encodeCommitMeta), CODECS.commitmeta as Codec<never>],
  ])('a %s with one byte changed is rejected or re-encodes to itself', (_, arb, codec) => {
    fc.assert(
      fc.property(arb, (bytes) => {
        let decoded: unknown;
        try {
          decoded = codec.decode(bytes);
        } catch (error) {
          expect(error).toMatchObject({ code: 'E_OBJECT_MALFORMED' });
          return;
        }
        expect(codec.encode(decoded as never)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });
});
