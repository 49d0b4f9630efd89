// Golden vectors: fixtures/golden/<format>/<case>.{json,bin}. Reads them, converts their JSON form
// to codec values and back, and rewrites them from the value when UPDATE_GOLDEN=1 (see the README there).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

export interface Golden<F extends GoldenFormat> {
  readonly description: string;
  readonly value: GoldenValues[F];
  /** The exact encoding (.bin). */
  readonly bytes: Buffer;
  /** BLAKE3 of `bytes`, as recorded in the .json. */
  readonly checksum: Checksum;
}

/** Case names of one format (the .json files), sorted. */
export function listGolden(format: GoldenFormat): string[] {
  return readdirSync(join(GOLDEN_DIR, format))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** The description and value of a vector, without its bytes (enough to regenerate them). */
export function readGoldenValue<F extends GoldenFormat>(
  format: F,
  name: string,
): { description: string; value: GoldenValues[F] } {
  const json = JSON.parse(readFileSync(join(GOLDEN_DIR, format, `${name}.json`), 'utf8')) as Record<string, unknown>;
  return { description: str(json.description, 'description'), value: valueFromJson(format, json.value) };
}

export function readGolden<F extends GoldenFormat>(format: F, name: string): Golden<F> {
  const path = join(GOLDEN_DIR, format, `${name}.json`);
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  return {
    description: str(json.description, 'description'),
    value: valueFromJson(format, json.value),
    bytes: readFileSync(join(GOLDEN_DIR, format, `${name}.bin`)),
    checksum: checksum(json.checksum, 'checksum'),
  };
}

/** Writes `<name>.bin` and `<name>.json` (value in JSON form + BLAKE3 of the bytes). */
export function writeGolden<F extends GoldenFormat>(
  format: F,
  name: string,
  description: string,
  value: GoldenValues[F],
  bytes: Buffer,
): void {
  const json = { description, value: valueToJson(format, value), checksum: hashBytes(bytes) };
  writeFileSync(join(GOLDEN_DIR, format, `${name}.bin`), bytes);
  writeFileSync(join(GOLDEN_DIR, format, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
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
