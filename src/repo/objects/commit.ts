// Commit objects, their typed metadata maps, and detached commit metadata (commitmeta).
import { ByteReader, ByteWriter, compareUtf8 } from '../../common/bytes.js';
import { type Checksum, bytesToChecksum, checksumToBytes } from '../../common/hash.js';
import { KIND_TAG, OBJECT_FORMAT_VERSION } from './kinds.js';
import { present } from '../../common/errors.js';

/** A metadata value; the tag in the encoding keeps the type (docs/format.md §metadata). */
export type MetadataValue =
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'bytes'; readonly value: Buffer }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'bytes-list'; readonly value: readonly Buffer[] };

/** Keys are unique; encoding sorts them by UTF-8 bytes. */
export type Metadata = ReadonlyMap<string, MetadataValue>;

export interface Commit {
  readonly parent: Checksum | null;
  /** Seconds since the Unix epoch, UTC. */
  readonly timestamp: number;
  readonly subject: string;
  readonly body: string;
  readonly rootTree: Checksum;
  readonly rootMeta: Checksum;
  readonly metadata: Metadata;
}

const VALUE_TAG = { string: 1, int: 2, bool: 3, bytes: 4, strings: 5, 'bytes-list': 6 } as const;

/** u32 n, then n × (key: u32 length + UTF-8, u8 type tag, value), keys sorted and unique. */
export function writeMetadata(out: ByteWriter, metadata: Metadata): void {
  const keys = [...metadata.keys()].sort(compareUtf8);
  out.u32(keys.length);
  for (const key of keys) {
    if (key.length === 0) throw new RangeError('metadata key is empty');
    const entry = present(metadata.get(key), 'the value of a listed key');
    out.string(key).u8(VALUE_TAG[entry.type]);
    switch (entry.type) {
      case 'string':
        out.string(entry.value);
        break;
      case 'int':
        out.i64(entry.value);
        break;
      case 'bool':
        out.u8(entry.value ? 1 : 0);
        break;
      case 'bytes':
        out.bytes(entry.value);
        break;
      case 'strings':
        out.u32(entry.value.length);
        for (const s of entry.value) out.string(s);
        break;
      case 'bytes-list':
        out.u32(entry.value.length);
        for (const b of entry.value) out.bytes(b);
        break;
    }
  }
}

export function readMetadata(input: ByteReader): Map<string, MetadataValue> {
  const n = input.count(6);
  const metadata = new Map<string, MetadataValue>();
  let previous: string | undefined;
  for (let i = 0; i < n; i++) {
    const key = input.string();
    if (key.length === 0) input.fail('empty metadata key');
    if (previous !== undefined && compareUtf8(previous, key) >= 0)
      input.fail(`metadata key '${key}' is unsorted or duplicate`);
    previous = key;
    const tag = input.u8();
    switch (tag) {
      case VALUE_TAG.string:
        metadata.set(key, { type: 'string', value: input.string() });
        break;
      case VALUE_TAG.int:
        metadata.set(key, { type: 'int', value: input.i64() });
        break;
      case VALUE_TAG.bool: {
        const b = input.u8();
        if (b > 1) input.fail('bool is neither 0 nor 1');
        metadata.set(key, { type: 'bool', value: b === 1 });
        break;
      }
      case VALUE_TAG.bytes:
        metadata.set(key, { type: 'bytes', value: Buffer.from(input.bytes()) });
        break;
      case VALUE_TAG.strings: {
        const count = input.count(4);
        const list: string[] = [];
        for (let j = 0; j < count; j++) list.push(input.string());
        metadata.set(key, { type: 'strings', value: list });
        break;
      }
      case VALUE_TAG['bytes-list']: {
        const count = input.count(4);
        const list: Buffer[] = [];
        for (let j = 0; j < count; j++) list.push(Buffer.from(input.bytes()));
        metadata.set(key, { type: 'bytes-list', value: list });
        break;
      }
      default:
        input.fail(`unknown metadata type tag ${tag}`);
    }
  }
  return metadata;
}

/**
 * u8 kind=4, u8 version=2, u8 has-parent (0|1) [+ 32-byte parent], u64 timestamp (s),
 * subject, body (u32 length + UTF-8), 32-byte root dirtree, 32-byte root dirmeta, metadata.
 */
export function encodeCommit(commit: Commit): Buffer {
  const out = new ByteWriter(256).u8(KIND_TAG.commit).u8(OBJECT_FORMAT_VERSION);
  if (commit.parent === null) out.u8(0);
  else out.u8(1).raw(checksumToBytes(commit.parent));
  out.u64(commit.timestamp).string(commit.subject).string(commit.body);
  out.raw(checksumToBytes(commit.rootTree)).raw(checksumToBytes(commit.rootMeta));
  writeMetadata(out, commit.metadata);
  return out.finish();
}

export function decodeCommit(bytes: Buffer, what = 'commit'): Commit {
  const input = new ByteReader(bytes, what);
  if (input.u8() !== KIND_TAG.commit) input.fail('not a commit object');
  if (input.u8() !== OBJECT_FORMAT_VERSION) input.fail('unknown commit format version');
  const hasParent = input.u8();
  if (hasParent > 1) input.fail('parent flag is neither 0 nor 1');
  const parent = hasParent === 1 ? bytesToChecksum(input.raw(32)) : null;
  const commit: Commit = {
    parent,
    timestamp: input.u64(),
    subject: input.string(),
    body: input.string(),
    rootTree: bytesToChecksum(input.raw(32)),
    rootMeta: bytesToChecksum(input.raw(32)),
    metadata: readMetadata(input),
  };
  input.end();
  return commit;
}

/** u8 kind=5, u8 version=2, metadata. Stored beside its commit, not content-addressed. */
export function encodeCommitMeta(metadata: Metadata): Buffer {
  const out = new ByteWriter(128).u8(KIND_TAG.commitmeta).u8(OBJECT_FORMAT_VERSION);
  writeMetadata(out, metadata);
  return out.finish();
}

export function decodeCommitMeta(bytes: Buffer, what = 'commitmeta'): Map<string, MetadataValue> {
  const input = new ByteReader(bytes, what);
  if (input.u8() !== KIND_TAG.commitmeta) input.fail('not a commitmeta object');
  if (input.u8() !== OBJECT_FORMAT_VERSION) input.fail('unknown commitmeta format version');
  const metadata = readMetadata(input);
  input.end();
  return metadata;
}

/** The commit's `version` metadata string, if any. */
export function commitVersion(commit: Commit): string | undefined {
  const v = commit.metadata.get('version');
  return v?.type === 'string' ? v.value : undefined;
}
