// Golden vectors: fixtures/golden/<format>/<case>.{json,bin}. Reads them, converts their JSON form
// to codec values and back, holds the tests every vector gets, and rewrites them from the value when
// UPDATE_GOLDEN=1 (see the README there).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptionError, Exit } from '../../src/common/errors.js';
import { type Checksum, hashBytes, isChecksum } from '../../src/common/hash.js';
import type { Commit, DirMeta, DirTree, FileHeader, MetadataValue, Xattr } from '../../src/repo/objects/index.js';
import { ROOT } from './cli.js';

export const GOLDEN_DIR = join(ROOT, 'fixtures/golden');

/** When set, golden tests write each vector's .bin and checksum from its value instead of comparing. */
export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';

/** The value type each vector directory holds. `file` is a whole file object: header ‖ content. */
export interface GoldenValues {
  'file-header': FileHeader;
  file: { header: FileHeader; content: Buffer };
  dirmeta: DirMeta;
  dirtree: DirTree;
  commit: Commit;
  commitmeta: Map<string, MetadataValue>;
}
export type GoldenFormat = keyof GoldenValues;
export const GOLDEN_FORMATS: readonly GoldenFormat[] = [
  'file-header',
  'file',
  'dirmeta',
  'dirtree',
  'commit',
  'commitmeta',
];

/** One vector as tests read it. */
export interface GoldenVector<V> {
  readonly description: string;
  readonly value: V;
  /** The exact encoding (.bin). */
  readonly bytes: Buffer;
  /** BLAKE3 of `bytes`, as recorded in the .json. */
  readonly checksum: Checksum;
}

/** Case names of one vector directory (its .json files), sorted. */
export function listGolden(format: string): string[] {
  return readdirSync(join(GOLDEN_DIR, format))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

function readGoldenJson(format: string, name: string): Record<string, unknown> {
  return obj(JSON.parse(readFileSync(join(GOLDEN_DIR, format, `${name}.json`), 'utf8')), `${format}/${name}`);
}

/** A vector of any directory, its value read from its JSON form by `fromJson`. */
export function readGoldenWith<V>(format: string, name: string, fromJson: (json: unknown) => V): GoldenVector<V> {
  const json = readGoldenJson(format, name);
  return {
    description: str(json.description, 'description'),
    value: fromJson(json.value),
    bytes: readFileSync(join(GOLDEN_DIR, format, `${name}.bin`)),
    checksum: checksum(json.checksum, 'checksum'),
  };
}

/** An object-format vector (the formats of GoldenValues). */
export function readGolden<F extends GoldenFormat>(format: F, name: string): GoldenVector<GoldenValues[F]> {
  return readGoldenWith(format, name, (json) => valueFromJson(format, json));
}

/** Writes `<name>.bin` and `<name>.json` (the value's JSON form + BLAKE3 of the bytes). */
function writeGoldenJson(format: string, name: string, description: string, value: unknown, bytes: Buffer): void {
  const json = { description, value, checksum: hashBytes(bytes) };
  writeFileSync(join(GOLDEN_DIR, format, `${name}.bin`), bytes);
  writeFileSync(join(GOLDEN_DIR, format, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
}

/** A codec as the golden tests drive it. */
export interface GoldenCodec<V> {
  encode(value: V): Buffer;
  decode(bytes: Buffer): V;
  /** The same value with every list and map the encoder sorts given in reverse order. */
  reversed(value: V): V;
  /** False for a stream of records, where a prefix ending at a record boundary decodes. */
  readonly rejectsPrefixes?: boolean;
}

/** Asserts that `fn` throws the decoders' one error: CorruptionError E_OBJECT_MALFORMED (exit 3). */
export function expectMalformed(fn: () => unknown): void {
  let error: unknown;
  try {
    fn();
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(CorruptionError);
  expect(error).toMatchObject({ code: 'E_OBJECT_MALFORMED', exit: Exit.Corrupt });
}

/**
 * The tests of every vector in `formats`, one describe per `format/name`: the exact bytes both
 * ways, the recorded checksum, canonical order, and strict prefixes and a trailing byte refused.
 * With UPDATE_GOLDEN=1 each vector is rewritten from its value instead.
 */
export function describeGoldenVectors<F extends string>(
  formats: readonly F[],
  codecOf: (format: F) => GoldenCodec<unknown>,
  forms: { fromJson(format: F, json: unknown): unknown; toJson(format: F, value: unknown): unknown },
): void {
  const cases = formats.flatMap((format) => listGolden(format).map((name) => [format, name] as const));
  describe.each(cases)('golden vector %s/%s', (format, name) => {
    const codec = codecOf(format);
    if (UPDATE_GOLDEN) {
      it('is rewritten from its value (UPDATE_GOLDEN=1)', () => {
        // Description and value only: the bytes and checksum are what is being rewritten.
        const json = readGoldenJson(format, name);
        const value = forms.fromJson(format, json.value);
        const description = str(json.description, 'description');
        writeGoldenJson(format, name, description, forms.toJson(format, value), codec.encode(value));
      });
      return;
    }
    const golden = readGoldenWith(format, name, (json) => forms.fromJson(format, json));

    it('encodes its value to exactly the recorded bytes', () => {
      expect(codec.encode(golden.value)).toEqual(golden.bytes);
    });
    it('decodes its bytes to the recorded value', () => {
      expect(codec.decode(golden.bytes)).toEqual(golden.value);
    });
    it('hashes to the recorded checksum', () => {
      expect(hashBytes(golden.bytes)).toBe(golden.checksum);
    });
    it('encodes the same bytes when its sorted entries are given in reverse order', () => {
      expect(codec.encode(codec.reversed(golden.value))).toEqual(golden.bytes);
    });
    it('rejects its bytes followed by one more byte', () => {
      expectMalformed(() => codec.decode(Buffer.concat([golden.bytes, Buffer.of(0)])));
    });
    if (codec.rejectsPrefixes !== false) {
      it('rejects every strict prefix of its bytes', () => {
        for (let n = 0; n < golden.bytes.length; n++) expectMalformed(() => codec.decode(golden.bytes.subarray(0, n)));
      });
    }
  });
}

// JSON form: Buffers and checksums are lowercase hex, modes are "0o…" octal strings (reviewable),
// metadata maps are objects of {type, value}, everything else is plain JSON.

export function valueToJson<F extends GoldenFormat>(format: F, value: GoldenValues[F]): unknown {
  const v = value as GoldenValues[GoldenFormat];
  switch (format) {
    case 'file-header':
      return headerToJson(v as FileHeader);
    case 'file': {
      const { header, content } = v as GoldenValues['file'];
      return { header: headerToJson(header), content: content.toString('hex') };
    }
    case 'dirmeta': {
      const m = v as DirMeta;
      return { uid: m.uid, gid: m.gid, mode: octal(m.mode), xattrs: xattrsToJson(m.xattrs) };
    }
    case 'dirtree':
      return v;
    case 'commit': {
      const c = v as Commit;
      return { ...c, metadata: metadataToJson(c.metadata) };
    }
    case 'commitmeta':
      return metadataToJson(v as Map<string, MetadataValue>);
  }
  throw new Error(`unknown golden format ${String(format)}`);
}

export function valueFromJson<F extends GoldenFormat>(format: F, json: unknown): GoldenValues[F] {
  const o = obj(json, 'value');
  const out = ((): GoldenValues[GoldenFormat] => {
    switch (format) {
      case 'file-header':
        return headerFromJson(o);
      case 'file':
        return { header: headerFromJson(obj(o.header, 'header')), content: hex(o.content, 'content') };
      case 'dirmeta':
        return { uid: num(o.uid, 'uid'), gid: num(o.gid, 'gid'), mode: mode(o.mode), xattrs: xattrsFromJson(o.xattrs) };
      case 'dirtree':
        return {
          files: arr(o.files, 'files').map((e) => {
            const f = obj(e, 'file entry');
            return { name: str(f.name, 'name'), checksum: checksum(f.checksum, 'checksum'), size: num(f.size, 'size') };
          }),
          dirs: arr(o.dirs, 'dirs').map((e) => {
            const d = obj(e, 'dir entry');
            return { name: str(d.name, 'name'), tree: checksum(d.tree, 'tree'), meta: checksum(d.meta, 'meta') };
          }),
        };
      case 'commit':
        return {
          parent: o.parent === null ? null : checksum(o.parent, 'parent'),
          timestamp: num(o.timestamp, 'timestamp'),
          subject: str(o.subject, 'subject'),
          body: str(o.body, 'body'),
          rootTree: checksum(o.rootTree, 'rootTree'),
          rootMeta: checksum(o.rootMeta, 'rootMeta'),
          metadata: metadataFromJson(o.metadata),
        };
      case 'commitmeta':
        return metadataFromJson(o);
    }
    throw new Error(`unknown golden format ${String(format)}`);
  })();
  return out as GoldenValues[F];
}

function headerToJson(h: FileHeader): unknown {
  return { ...h, mode: octal(h.mode), xattrs: xattrsToJson(h.xattrs) };
}

function headerFromJson(o: Record<string, unknown>): FileHeader {
  return {
    uid: num(o.uid, 'uid'),
    gid: num(o.gid, 'gid'),
    mode: mode(o.mode),
    rdevMajor: num(o.rdevMajor, 'rdevMajor'),
    rdevMinor: num(o.rdevMinor, 'rdevMinor'),
    symlinkTarget: str(o.symlinkTarget, 'symlinkTarget'),
    xattrs: xattrsFromJson(o.xattrs),
    size: num(o.size, 'size'),
  };
}

const xattrsToJson = (xattrs: readonly Xattr[]): unknown =>
  xattrs.map((x) => ({ name: x.name, value: x.value.toString('hex') }));

function xattrsFromJson(json: unknown): Xattr[] {
  return arr(json, 'xattrs').map((e) => {
    const x = obj(e, 'xattr');
    return { name: str(x.name, 'xattr name'), value: hex(x.value, 'xattr value') };
  });
}

function metadataToJson(metadata: ReadonlyMap<string, MetadataValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of metadata) {
    if (v.type === 'bytes') out[key] = { type: v.type, value: v.value.toString('hex') };
    else if (v.type === 'bytes-list') out[key] = { type: v.type, value: v.value.map((b) => b.toString('hex')) };
    else out[key] = v;
  }
  return out;
}

function metadataFromJson(json: unknown): Map<string, MetadataValue> {
  const metadata = new Map<string, MetadataValue>();
  for (const [key, entry] of Object.entries(obj(json, 'metadata'))) {
    const { type, value } = obj(entry, `metadata '${key}'`);
    const what = `metadata '${key}'`;
    switch (type) {
      case 'string':
        metadata.set(key, { type, value: str(value, what) });
        break;
      case 'int':
        metadata.set(key, { type, value: num(value, what) });
        break;
      case 'bool':
        if (typeof value !== 'boolean') throw new TypeError(`golden: ${what} is not a boolean`);
        metadata.set(key, { type, value });
        break;
      case 'bytes':
        metadata.set(key, { type, value: hex(value, what) });
        break;
      case 'strings':
        metadata.set(key, { type, value: arr(value, what).map((s) => str(s, what)) });
        break;
      case 'bytes-list':
        metadata.set(key, { type, value: arr(value, what).map((b) => hex(b, what)) });
        break;
      default:
        throw new TypeError(`golden: ${what} has unknown type '${String(type)}'`);
    }
  }
  return metadata;
}

const octal = (mode: number): string => `0o${mode.toString(8)}`;

function mode(json: unknown): number {
  const text = str(json, 'mode');
  if (!/^0o[0-7]+$/.test(text)) throw new TypeError(`golden: mode '${text}' is not 0o-prefixed octal`);
  return Number.parseInt(text.slice(2), 8);
}

function obj(json: unknown, what: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new TypeError(`golden: ${what} is not an object`);
  return json as Record<string, unknown>;
}
function arr(json: unknown, what: string): unknown[] {
  if (!Array.isArray(json)) throw new TypeError(`golden: ${what} is not an array`);
  return json;
}
function str(json: unknown, what: string): string {
  if (typeof json !== 'string') throw new TypeError(`golden: ${what} is not a string`);
  return json;
}
function num(json: unknown, what: string): number {
  if (!Number.isSafeInteger(json)) throw new TypeError(`golden: ${what} is not a safe integer`);
  return json as number;
}
function hex(json: unknown, what: string): Buffer {
  const text = str(json, what);
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) throw new TypeError(`golden: ${what} is not lowercase hex`);
  return Buffer.from(text, 'hex');
}
function checksum(json: unknown, what: string): Checksum {
  const text = str(json, what);
  if (!isChecksum(text)) throw new TypeError(`golden: ${what} is not a checksum`);
  return text;
}
