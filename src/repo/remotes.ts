// Remotes: named servers in the repository config (`[remote "NAME"]` sections, as ostree has),
// each with a URL and, when pulls must be signed, the trusted ed25519 public keys themselves.
import { ArborError, UsageError } from '../common/errors.js';
import type { Ini } from './config.js';
import { keyId } from './sign.js';
import type { Repo } from './store.js';

export interface Remote {
  readonly name: string;
  /** http(s)://…, file:///… or an absolute path of a repository directory. */
  readonly url: string;
  /** Trusted raw ed25519 public keys; empty means signatures are not required. */
  readonly keys: readonly Buffer[];
  readonly signVerify: boolean;
  /** `max-metadata-size`: the largest dirtree, dirmeta or commit a pull accepts (default 10 MiB). */
  readonly maxMetadataBytes?: number;
  /**
   * `max-object-size`: the largest file content a pull accepts from a remote that does not require
   * signatures (default 4 GiB); a signed remote's trees vouch for their sizes themselves.
   */
  readonly maxObjectBytes?: number;
}

/** Defaults of the transfer bounds, as ostree's OSTREE_MAX_METADATA_SIZE for metadata. */
export const DEFAULT_MAX_METADATA_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_OBJECT_BYTES = 4 * 1024 * 1024 * 1024;

/** The bounds a pull from `remote` applies, defaults filled in. */
export function transferLimits(remote: Remote): { maxMetadataBytes: number; maxObjectBytes: number } {
  return { maxMetadataBytes: remote.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES, maxObjectBytes: remote.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const section = (name: string): string => `remote "${name}"`;

export function assertRemoteName(name: string): void {
  if (!NAME.test(name)) throw new UsageError('E_REMOTE_INVALID', `'${name}' is not a valid remote name (letters, digits, '.', '_', '-')`);
}

function assertUrl(url: string): void {
  if (/^https?:\/\/[^/\s]+/.test(url) || url.startsWith('file:///') || url.startsWith('/')) return;
  throw new UsageError('E_REMOTE_INVALID', `'${url}' is not a usable remote URL`, { hint: 'use http://HOST[:PORT]/PATH, file:///PATH or an absolute path' });
}

function parseRemote(name: string, entries: Map<string, string>): Remote {
  const url = entries.get('url') ?? '';
  const signVerify = entries.get('sign-verify') === 'true';
  const keys = (entries.get('verification-ed25519-keys') ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .map((k) => Buffer.from(k, 'base64'));
  if (signVerify && keys.length === 0) throw new UsageError('E_CONFIG_INVALID', `remote '${name}' requires signatures but lists no key`);
  const maxMetadataBytes = parseBytes(name, 'max-metadata-size', entries.get('max-metadata-size'));
  const maxObjectBytes = parseBytes(name, 'max-object-size', entries.get('max-object-size'));
  return { name, url, keys, signVerify, ...(maxMetadataBytes !== undefined && { maxMetadataBytes }), ...(maxObjectBytes !== undefined && { maxObjectBytes }) };
}

/** A size key of a remote: a positive whole number of bytes. */
function parseBytes(remote: string, key: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError('E_CONFIG_INVALID', `remote '${remote}': ${key} '${text}' is not a positive number of bytes`);
  return n;
}

export function listRemotes(repo: Repo): Remote[] {
  const out: Remote[] = [];
  for (const [name, entries] of repo.config) {
    const m = /^remote "(.+)"$/.exec(name);
    if (m) out.push(parseRemote(m[1] as string, entries));
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function getRemote(repo: Repo, name: string): Remote {
  const entries = repo.config.get(section(name));
  if (!entries) throw new ArborError('E_REMOTE_NOT_FOUND', `no remote named '${name}'`, { hint: 'list them with `arbor remote list`; add one with `arbor remote add NAME URL`' });
  return parseRemote(name, entries);
}

export function addRemote(repo: Repo, remote: { name: string; url: string; keys: readonly Buffer[]; signVerify: boolean }, ifNotExists = false): void {
  assertRemoteName(remote.name);
  assertUrl(remote.url);
  if (remote.signVerify && remote.keys.length === 0) throw new UsageError('E_USAGE', 'signature verification needs at least one public key');
  const config: Ini = new Map(repo.config);
  if (config.has(section(remote.name))) {
    if (ifNotExists) return;
    throw new ArborError('E_REMOTE_EXISTS', `remote '${remote.name}' already exists`, { hint: 'delete it first with `arbor remote delete`' });
  }
  const entries = new Map([['url', remote.url], ['sign-verify', String(remote.signVerify)]]);
  if (remote.keys.length > 0) entries.set('verification-ed25519-keys', remote.keys.map((k) => k.toString('base64')).join(','));
  config.set(section(remote.name), entries);
  repo.writeConfig(config);
}

export function deleteRemote(repo: Repo, name: string, ifExists = false): boolean {
  const config: Ini = new Map(repo.config);
  if (!config.delete(section(name))) {
    if (ifExists) return false;
    throw new ArborError('E_REMOTE_NOT_FOUND', `no remote named '${name}'`);
  }
  repo.writeConfig(config);
  return true;
}

/** What `remote show` and `remote list --json` print. */
export function describeRemote(remote: Remote): { name: string; url: string; signVerify: boolean; keys: string[] } {
  return { name: remote.name, url: remote.url, signVerify: remote.signVerify, keys: remote.keys.map((k) => keyId(k)) };
}
