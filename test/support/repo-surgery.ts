// Tools for tests that damage or hand-craft repositories: raw object writes that bypass the
// encoders' checks, byte flips, a repository's object files, and running the CLI as another user.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Checksum, hashBytes } from '../../src/common/hash.js';
import { type FileHeader, S_IFREG } from '../../src/repo/objects/index.js';
import { expect } from 'vitest';
import { ARBOR, type CliResult, arbor } from './cli.js';

/** A fresh repository of `mode` at `path` (created by the CLI, like a user would). */
export function initRepo(path: string, mode: 'bare' | 'bare-user' | 'archive'): string {
  arbor('init', '--repo', path, '--mode', mode);
  return path;
}

/** Where an object of `kind` lives (archive file objects end in .filez). */
export function objectFile(
  repo: string,
  checksum: string,
  kind: 'file' | 'dirtree' | 'dirmeta' | 'commit',
  archive = false,
): string {
  const ext = kind === 'file' && archive ? 'filez' : kind;
  return join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${ext}`);
}

/** Stores `bytes` under their BLAKE3 name as an object of `kind`, with no validation at all. */
export function writeRawObject(repo: string, kind: 'dirtree' | 'dirmeta' | 'commit', bytes: Buffer): Checksum {
  const checksum = hashBytes(bytes);
  writeFileSync(objectFile(repo, checksum, kind), bytes);
  return checksum;
}

/** Inverts every bit of the byte at `offset` (negative: from the end) in place. */
export function flipByte(path: string, offset: number): void {
  const bytes = readFileSync(path);
  const at = offset < 0 ? bytes.length + offset : offset;
  bytes[at] = (bytes[at] as number) ^ 0xff;
  writeFileSync(path, bytes);
}

/** Object files in the repository, as "xx/rest.ext" names, sorted. */
export function listObjectFiles(repo: string): string[] {
  const out: string[] = [];
  for (const prefix of readdirSync(join(repo, 'objects')).sort()) {
    for (const name of readdirSync(join(repo, 'objects', prefix)).sort()) out.push(`${prefix}/${name}`);
  }
  return out;
}

/** Leftover staging directories in the repository's tmp/ (a failed command must leave none). */
export function stagingDirs(repo: string): string[] {
  return readdirSync(join(repo, 'tmp')).filter((name) => name.startsWith('staging-'));
}

/**
 * A dirtree encoded by hand (u8 kind 2, u8 version 2, u32 n × (name, checksum, u64 size), u32 m ×
 * (name, tree, meta)), in the order given: it may hold names, orders and sizes the real encoder
 * refuses or would not write. A file's size defaults to 0.
 */
export function rawDirTree(
  files: readonly (readonly [string, string] | readonly [string, string, number])[],
  dirs: readonly [string, string, string][],
): Buffer {
  const parts: Buffer[] = [Buffer.from([2, 2])];
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const name = (text: string): Buffer => Buffer.concat([u32(Buffer.byteLength(text)), Buffer.from(text)]);
  parts.push(u32(files.length));
  for (const [n, checksum, size] of files) {
    const sizeBytes = Buffer.alloc(8);
    sizeBytes.writeBigUInt64BE(BigInt(size ?? 0));
    parts.push(name(n), Buffer.from(checksum, 'hex'), sizeBytes);
  }
  parts.push(u32(dirs.length));
  for (const [n, tree, meta] of dirs) parts.push(name(n), Buffer.from(tree, 'hex'), Buffer.from(meta, 'hex'));
  return Buffer.concat(parts);
}

/** The unprivileged user tests run the CLI as (nobody on Debian). */
export const NOBODY = { uid: 65534, gid: 65534 } as const;

/** Runs the built CLI as `uid:gid` with no supplementary groups (needs root and setpriv). */
export function runCliAs(user: { uid: number; gid: number }, args: readonly string[]): CliResult {
  const r = spawnSync(
    'setpriv',
    [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', process.execPath, ARBOR, ...args],
    {
      encoding: 'utf8',
      env: { ...process.env, HOME: '/nonexistent' },
    },
  );
  if (r.error) throw r.error;
  return { exitCode: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Asserts an expected failure: the exit status, `error[CODE]: ` on the first stderr line, each of
 * `mentions` somewhere in stderr, nothing on stdout, and no JavaScript stack trace.
 */
export function expectArborError(result: CliResult, exitCode: number, code: string, ...mentions: string[]): void {
  expect({ exitCode: result.exitCode, stdout: result.stdout }).toEqual({ exitCode, stdout: '' });
  expect(result.stderr).toMatch(new RegExp(`^error\\[${code}\\]: `));
  expect(result.stderr).not.toMatch(/^\s+at /m);
  for (const text of mentions) expect(result.stderr).toContain(text);
}

/** The header of a plain 0644 root-owned regular file of `size` content bytes. */
export const regularHeader = (size: number): FileHeader => ({
  uid: 0,
  gid: 0,
  mode: S_IFREG | 0o644,
  rdevMajor: 0,
  rdevMinor: 0,
  symlinkTarget: '',
  xattrs: [],
  size,
});
