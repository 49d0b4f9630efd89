// The payload reader on packages written here byte by byte: the stripped cpio format of packages
// with LONGFILESIZES (rpmbuild makes it only for files over 4 GiB), hardlink sets, digest checks
// while content streams, and what it refuses.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArborError, CorruptionError } from '../../common/errors.js';
import { type HeaderField, encodeHeader, signaturePadding } from './header.js';
import { type PayloadEntry, readPayload } from './payload.js';
import { readRpmHead } from './read.js';
import { FileFlag, RegionTag, SigTag, Tag, TagType } from './tags.js';

interface TestFile {
  path: string;
  mode: number;
  content?: Buffer;
  linkTo?: string;
  inode?: number;
  flags?: number;
}

const dir = mkdtempSync(join(tmpdir(), 'arbor-payload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

/** A cpio archive in either format; `order` lists file indices and the content each entry carries. */
function cpio(
  files: readonly TestFile[],
  order: readonly [index: number, withContent: boolean][],
  format: 'newc' | 'stripped',
  rename?: (name: string) => string,
): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const put = (b: Buffer): void => {
    parts.push(b);
    size += b.length;
  };
  const newc = (name: string, mode: number, dataBytes: number): void => {
    const fields = [0, mode, 0, 0, 1, 0, dataBytes, 0, 0, 0, 0, Buffer.byteLength(name) + 1, 0].map(hex8).join('');
    put(Buffer.from(`070701${fields}${name}\0`, 'latin1'));
    put(pad4(size));
  };
  for (const [index, withContent] of order) {
    const f = files[index]!;
    const data = withContent ? (f.content ?? Buffer.from(f.linkTo ?? '')) : Buffer.alloc(0);
    if (format === 'stripped') {
      put(Buffer.from(`07070X${hex8(index)}`, 'latin1'));
      put(pad4(size));
    } else {
      const name = `.${f.path}`;
      newc(rename ? rename(name) : name, f.mode, data.length);
    }
    put(data);
    put(pad4(size));
  }
  newc('TRAILER!!!', 0, 0);
  return Buffer.concat(parts);
}

let counter = 0;
/** Writes a complete package: lead, signature (header SHA-256, size, MD5), header, payload. */
function writePackage(files: readonly TestFile[], payload: Buffer, long: boolean, extra: HeaderField[] = []): string {
  const dirs = [...new Set(files.map((f) => f.path.slice(0, f.path.lastIndexOf('/') + 1)))];
  const digest = (f: TestFile): string =>
    (f.mode & 0o170000) === 0o100000 && f.content ? createHash('sha256').update(f.content).digest('hex') : '';
  const fields: HeaderField[] = [
    { tag: Tag.Name, data: { type: TagType.String, value: 'synthetic' } },
    { tag: Tag.Version, data: { type: TagType.String, value: '1' } },
    { tag: Tag.Release, data: { type: TagType.String, value: '1' } },
    { tag: Tag.Arch, data: { type: TagType.String, value: 'noarch' } },
    { tag: Tag.SourceRpm, data: { type: TagType.String, value: 'synthetic-1-1.src.rpm' } },
    { tag: Tag.PayloadFormat, data: { type: TagType.String, value: 'cpio' } },
    {
      tag: Tag.BaseNames,
      data: { type: TagType.StringArray, value: files.map((f) => f.path.slice(f.path.lastIndexOf('/') + 1)) },
    },
    { tag: Tag.DirNames, data: { type: TagType.StringArray, value: dirs } },
    {
      tag: Tag.DirIndexes,
      data: {
        type: TagType.Int32,
        value: files.map((f) => dirs.indexOf(f.path.slice(0, f.path.lastIndexOf('/') + 1))),
      },
    },
    { tag: Tag.FileModes, data: { type: TagType.Int16, value: files.map((f) => f.mode) } },
    {
      tag: long ? Tag.LongFileSizes : Tag.FileSizes,
      data: {
        type: long ? TagType.Int64 : TagType.Int32,
        value: files.map((f) => f.content?.length ?? Buffer.byteLength(f.linkTo ?? '')),
      },
    },
    { tag: Tag.FileDigests, data: { type: TagType.StringArray, value: files.map(digest) } },
    { tag: Tag.FileDigestAlgo, data: { type: TagType.Int32, value: [8] } },
    { tag: Tag.FileLinkTos, data: { type: TagType.StringArray, value: files.map((f) => f.linkTo ?? '') } },
    { tag: Tag.FileFlags, data: { type: TagType.Int32, value: files.map((f) => f.flags ?? 0) } },
    { tag: Tag.FileInodes, data: { type: TagType.Int32, value: files.map((f, i) => f.inode ?? 1000 + i) } },
    { tag: Tag.FileDevices, data: { type: TagType.Int32, value: files.map(() => 1) } },
    ...extra,
  ];
  const header = encodeHeader(fields, RegionTag.Immutable);
  const sig = encodeHeader(
    [
      { tag: SigTag.Sha256, data: { type: TagType.String, value: createHash('sha256').update(header).digest('hex') } },
      { tag: SigTag.Size, data: { type: TagType.Int32, value: [header.length + payload.length] } },
      {
        tag: SigTag.Md5,
        data: { type: TagType.Bin, value: createHash('md5').update(header).update(payload).digest() },
      },
    ],
    RegionTag.Signatures,
  );
  const lead = Buffer.alloc(96);
  lead.writeUInt32BE(0xedabeedb, 0);
  lead[4] = 3;
  lead.writeUInt16BE(5, 78);
  const path = join(dir, `synthetic-${counter++}.rpm`);
  writeFileSync(path, Buffer.concat([lead, sig, Buffer.alloc(signaturePadding(sig.length)), header, payload]));
  return path;
}

async function readAll(path: string): Promise<{ paths: string[][]; contents: string[] }> {
  const head = await readRpmHead(path);
  const paths: string[][] = [];
  const contents: string[] = [];
  for await (const entry of readPayload(head)) {
    paths.push(entry.indices.map((i) => head.pkg.files[i]!.path));
    const chunks: Buffer[] = [];
    if (entry.content) for await (const chunk of entry.content) chunks.push(chunk);
    contents.push(Buffer.concat(chunks).toString());
  }
  return { paths, contents };
}

const FILES: TestFile[] = [
  { path: '/usr', mode: 0o40755 },
  { path: '/usr/a', mode: 0o100644, content: Buffer.from('shared'), inode: 7 },
  { path: '/usr/b', mode: 0o100644, content: Buffer.from('shared'), inode: 7 },
  { path: '/usr/c', mode: 0o100755, content: Buffer.from('alone') },
  { path: '/usr/link', mode: 0o120777, linkTo: 'c' },
  { path: '/usr/ghost', mode: 0o100644, flags: FileFlag.Ghost },
  { path: '/usr/empty', mode: 0o100644, content: Buffer.alloc(0) },
];
// rpm's order: files not hardlinked first, then each set with its content on the last member.
const ORDER: [number, boolean][] = [
  [0, true],
  [3, true],
  [4, true],
  [6, true],
  [1, false],
  [2, true],
];

describe('readPayload', () => {
  it.each(['newc', 'stripped'] as const)(
    'reads a %s payload, a hardlink set as one entry made when its content arrives',
    async (format) => {
      const path = writePackage(FILES, cpio(FILES, ORDER, format), format === 'stripped');
      expect(await readAll(path)).toEqual({
        paths: [['/usr'], ['/usr/c'], ['/usr/link'], ['/usr/empty'], ['/usr/a', '/usr/b']],
        contents: ['', 'alone', '', '', 'shared'],
      });
    },
  );

  it('streams a large file in bounded chunks', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024 + 3, 'z');
    const files: TestFile[] = [{ path: '/big', mode: 0o100644, content: big }];
    const head = await readRpmHead(writePackage(files, cpio(files, [[0, true]], 'stripped'), true));
    let total = 0;
    let largest = 0;
    for await (const entry of readPayload(head)) {
      for await (const chunk of entry.content!) {
        total += chunk.length;
        largest = Math.max(largest, chunk.length);
      }
    }
    expect(total).toBe(big.length);
    expect(largest).toBeLessThanOrEqual(256 * 1024);
  });

  it('checks the digest of content the consumer did not read', async () => {
    const files = FILES.map((f) => (f.path === '/usr/c' ? { ...f, content: Buffer.from('alone') } : f));
    const payload = cpio(files, ORDER, 'newc');
    payload.write('ALONE', payload.indexOf('alone'), 'latin1');
    const head = await readRpmHead(writePackage(files, payload, false));
    const skipAll = async (): Promise<void> => {
      for await (const _entry of readPayload(head));
    };
    await expect(skipAll()).rejects.toThrow(/digest mismatch in '\/usr\/c'/);
  });

  it('throws at the end of the content when its digest does not match', async () => {
    const payload = cpio(FILES, ORDER, 'stripped');
    payload.write('SHARED', payload.indexOf('shared'), 'latin1');
    const head = await readRpmHead(writePackage(FILES, payload, true));
    const seen: PayloadEntry[] = [];
    const consume = async (): Promise<void> => {
      for await (const entry of readPayload(head)) {
        seen.push(entry);
        if (entry.content) for await (const _ of entry.content);
      }
    };
    await expect(consume()).rejects.toThrow(CorruptionError);
    await expect(consume()).rejects.toThrow(/package '.*synthetic-\d+\.rpm': digest mismatch in '\/usr\/b'/);
  });

  it.each<[string, () => string, RegExp]>([
    [
      'a file missing from the payload',
      () => writePackage(FILES, cpio(FILES, ORDER.slice(1), 'newc'), false),
      /'\/usr' is in the header but not in the payload/,
    ],
    [
      'a file twice',
      () => writePackage(FILES, cpio(FILES, [...ORDER, [3, true]], 'newc'), false),
      /'\/usr\/c' appears twice/,
    ],
    [
      'a %ghost file in the payload',
      () => writePackage(FILES, cpio(FILES, [...ORDER, [5, true]], 'newc'), false),
      /%ghost file but is in the payload/,
    ],
    [
      'hardlink content before the other member',
      () =>
        writePackage(
          FILES,
          cpio(
            FILES,
            [
              [0, true],
              [3, true],
              [4, true],
              [6, true],
              [1, true],
              [2, false],
            ],
            'newc',
          ),
          false,
        ),
      /comes before its other members/,
    ],
    [
      'a stripped index beyond the file list',
      () => writePackage(FILES, cpio([...FILES, FILES[3]!], [...ORDER, [7, true]], 'stripped'), true),
      /file index 7, but the header lists 7 files/,
    ],
    [
      'a cpio mode other than the header',
      () =>
        writePackage(
          FILES.map((f, i) => (i === 3 ? { ...f, mode: 0o100644 } : f)),
          cpio(FILES, ORDER, 'newc'),
          false,
        ),
      /has mode 100755 in the payload and 100644 in the header/,
    ],
    [
      'a name not in the header',
      () =>
        writePackage(
          FILES,
          cpio(FILES, ORDER, 'newc', (n) => n.replace('/usr/c', '/usr/x')),
          false,
        ),
      /'\.\/usr\/x' is not in the header/,
    ],
    [
      'a .. name',
      () =>
        writePackage(
          FILES,
          cpio(FILES, ORDER, 'newc', (n) => n.replace('./usr/c', './../c')),
          false,
        ),
      /'\.\/\.\.\/c' has an empty, '\.' or '\.\.' path component/,
    ],
    [
      'data after the trailer',
      () => writePackage(FILES, Buffer.concat([cpio(FILES, ORDER, 'newc'), Buffer.from('more')]), false),
      /data follows the cpio trailer/,
    ],
    [
      'no trailer',
      () => writePackage(FILES, cpio(FILES, ORDER, 'newc').subarray(0, -124), false),
      /without a cpio trailer/,
    ],
  ])('refuses %s', async (_label, make, message) => {
    const head = await readRpmHead(make());
    const consume = async (): Promise<void> => {
      for await (const entry of readPayload(head)) if (entry.content) for await (const _ of entry.content);
    };
    await expect(consume()).rejects.toThrow(message);
  });

  it('refuses a header path with a .. component as bad input (exit 2)', async () => {
    const files: TestFile[] = [{ path: '/usr/../etc/passwd', mode: 0o100644, content: Buffer.from('x') }];
    const path = writePackage(files, cpio(files, [[0, true]], 'newc'), false);
    const error = await readRpmHead(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArborError);
    expect(error).toMatchObject({
      code: 'E_RPM_PATH',
      exit: 2,
      message: expect.stringMatching(/'\/usr\/\.\.\/etc\/passwd' has a '\.\.' component/),
    });
  });

  it.each([
    [
      'a symlink',
      { path: '/opt/l', mode: 0o120777, linkTo: 'real' },
      /'\/opt\/l\/evil' lies below '\/opt\/l', which is a symlink to 'real'/,
    ],
    [
      'a regular file',
      { path: '/opt/l', mode: 0o100644, content: Buffer.from('f') },
      /'\/opt\/l\/evil' lies below '\/opt\/l', which is not a directory/,
    ],
  ])(
    'refuses a header path below %s of the same package as bad input (exit 2)',
    async (_what, parent: TestFile, message) => {
      // Listed child first: the check must not depend on the order of the file list.
      const files: TestFile[] = [
        { path: '/opt', mode: 0o40755 },
        { path: '/opt/l/evil', mode: 0o100644, content: Buffer.from('x') },
        parent,
      ];
      const path = writePackage(
        files,
        cpio(
          files,
          [
            [0, true],
            [1, true],
            [2, true],
          ],
          'newc',
        ),
        false,
      );
      const error = await readRpmHead(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ArborError);
      expect(error).toMatchObject({ code: 'E_RPM_PATH', exit: 2, message: expect.stringMatching(message) });
    },
  );

  it('accepts paths below a directory the package lists', async () => {
    const files: TestFile[] = [
      { path: '/opt', mode: 0o40755 },
      { path: '/opt/d', mode: 0o40755 },
      { path: '/opt/d/f', mode: 0o100644, content: Buffer.from('x') },
    ];
    const head = await readRpmHead(
      writePackage(
        files,
        cpio(
          files,
          [
            [0, true],
            [1, true],
            [2, true],
          ],
          'newc',
        ),
        false,
      ),
    );
    expect(head.pkg.files.map((f) => f.path)).toEqual(['/opt', '/opt/d', '/opt/d/f']);
  });
});
