// Remotes: named servers in the repository config (`[remote "NAME"]` sections, as ostree has),
// each with a URL and, when pulls must be signed, the trusted ed25519 public keys themselves.
import { ArborError, UsageError, assert, quoteText } from '../common/errors.js';
import type { Ini } from '../common/ini.js';
import { DEFAULT_TRANSFER_LIMITS, type TransferLimits } from './fetch.js';
import { keyId } from './sign.js';
import type { Repo } from './store.js';

export interface Remote {
  readonly name: string;
  /** http(s)://…, file:///… or an absolute path of a repository directory. */
  readonly url: string;
  /** Trusted raw ed25519 public keys; empty means signatures are not required. */
  readonly keys: readonly Buffer[];
  readonly signVerify: boolean;
  /** When a request counts as stuck (config keys low-speed-limit, low-speed-time, request-timeout). */
  readonly limits?: TransferLimits;
  /** The largest summary accepted (config key max-summary-size); summary.sig is bounded apart. */
  readonly maxSummaryBytes?: number;
  /** `max-metadata-size`: the largest dirtree, dirmeta or commit a pull accepts (default 10 MiB). */
  readonly maxMetadataBytes?: number;
  /**
   * `max-object-size`: the largest file content a pull accepts from a remote that does not require
   * signatures (default 4 GiB); a signed remote's trees vouch for their sizes themselves.
   */
  readonly maxObjectBytes?: number;
}

/** The largest metadata object a pull accepts by default, as ostree's OSTREE_MAX_METADATA_SIZE. */
export const DEFAULT_MAX_METADATA_BYTES = 10 * 1024 * 1024;
/** The largest file an unsigned remote may serve by default. */
const DEFAULT_MAX_OBJECT_BYTES = 4 * 1024 * 1024 * 1024;

/** The object bounds a pull from `remote` applies, defaults filled in. */
export function objectLimits(remote: Remote): { maxMetadataBytes: number; maxObjectBytes: number } {
  return {
    maxMetadataBytes: remote.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES,
    maxObjectBytes: remote.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES,
  };
}

/** The largest summary a remote may serve unless its config says otherwise (≈100,000 refs). */
export const DEFAULT_MAX_SUMMARY_BYTES = 10 * 1024 * 1024;

/** Per-remote tuning keys that `remote add --set KEY=VALUE` accepts: non-negative integers. */
export const REMOTE_OPTION_KEYS = [
  'low-speed-limit',
  'low-speed-time',
  'request-timeout',
  'max-summary-size',
  'max-metadata-size',
  'max-object-size',
] as const;
type RemoteOptionKey = (typeof REMOTE_OPTION_KEYS)[number];

const isRemoteOptionKey = (key: string): key is RemoteOptionKey =>
  (REMOTE_OPTION_KEYS as readonly string[]).includes(key);

/** A remote option's value, checked: an integer ≥ 0 (seconds, bytes, or bytes per second). */
function parseRemoteOption(remote: string, key: RemoteOptionKey, text: string): number {
  const value = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || (key === 'low-speed-time' && value === 0)) {
    throw new UsageError(
      'E_CONFIG_INVALID',
      `remote '${remote}': ${key}=${text} is not ${key === 'low-speed-time' ? 'a whole number of seconds ≥ 1' : 'a whole number ≥ 0'}`,
      {
        hint: 'low-speed-limit is bytes per second, low-speed-time and request-timeout seconds (0 disables), max-summary-size, max-metadata-size and max-object-size bytes',
      },
    );
  }
  return value;
}

function remoteOptions(
  name: string,
  entries: Map<string, string>,
): { limits: TransferLimits; maxSummaryBytes: number; maxMetadataBytes: number; maxObjectBytes: number } {
  const get = (key: RemoteOptionKey, fallback: number): number => {
    const text = entries.get(key);
    return text === undefined ? fallback : parseRemoteOption(name, key, text);
  };
  const d = DEFAULT_TRANSFER_LIMITS;
  return {
    limits: {
      lowSpeedBytesPerSecond: get('low-speed-limit', d.lowSpeedBytesPerSecond),
      lowSpeedTimeMs: get('low-speed-time', d.lowSpeedTimeMs / 1000) * 1000,
      requestTimeoutMs: get('request-timeout', d.requestTimeoutMs / 1000) * 1000,
    },
    maxSummaryBytes: get('max-summary-size', DEFAULT_MAX_SUMMARY_BYTES),
    maxMetadataBytes: get('max-metadata-size', DEFAULT_MAX_METADATA_BYTES),
    maxObjectBytes: get('max-object-size', DEFAULT_MAX_OBJECT_BYTES),
  };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const section = (name: string): string => `remote "${name}"`;

function assertRemoteName(name: string): void {
  if (!NAME.test(name))
    throw new UsageError('E_REMOTE_INVALID', `'${name}' is not a valid remote name (letters, digits, '.', '_', '-')`);
}

function assertUrl(url: string): void {
  // A line break would end the config line: the rest of the URL would become keys or sections of its own.
  const oneLine = !/[\u0000-\u001f\u007f]/.test(url) && url === url.trim();
  if (oneLine && (/^https?:\/\/[^/\s]+/.test(url) || url.startsWith('file:///') || url.startsWith('/'))) return;
  throw new UsageError('E_REMOTE_INVALID', `${quoteText(url)} is not a usable remote URL`, {
    hint: 'use http://HOST[:PORT]/PATH, file:///PATH or an absolute path, on one line',
  });
}

function parseRemote(name: string, entries: Map<string, string>): Remote {
  const url = entries.get('url') ?? '';
  const signVerify = entries.get('sign-verify') === 'true';
  const keys = (entries.get('verification-ed25519-keys') ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .map((k) => Buffer.from(k, 'base64'));
  if (signVerify && keys.length === 0)
    throw new UsageError('E_CONFIG_INVALID', `remote '${name}' requires signatures but lists no key`);
  return { name, url, keys, signVerify, ...remoteOptions(name, entries) };
}

export function listRemotes(repo: Repo): Remote[] {
  const out: Remote[] = [];
  for (const [name, entries] of repo.config) {
    const remote = /^remote "(.+)"$/.exec(name)?.[1];
    if (remote !== undefined) out.push(parseRemote(remote, entries));
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function getRemote(repo: Repo, name: string): Remote {
  const entries = repo.config.get(section(name));
  if (!entries)
    throw new ArborError('E_REMOTE_NOT_FOUND', `no remote named '${name}'`, {
      hint: 'list them with `arbor remote list`; add one with `arbor remote add NAME URL`',
    });
  return parseRemote(name, entries);
}

/** Adds a remote; `options` are REMOTE_OPTION_KEYS settings, checked before anything is written. */
export function addRemote(
  repo: Repo,
  remote: {
    name: string;
    url: string;
    keys: readonly Buffer[];
    signVerify: boolean;
    options?: ReadonlyMap<string, string>;
  },
  ifNotExists = false,
): void {
  assertRemoteName(remote.name);
  assertUrl(remote.url);
  if (remote.signVerify && remote.keys.length === 0)
    throw new UsageError('E_USAGE', 'signature verification needs at least one public key');
  const config: Ini = new Map(repo.config);
  if (config.has(section(remote.name))) {
    if (ifNotExists) return;
    throw new ArborError('E_REMOTE_EXISTS', `remote '${remote.name}' already exists`, {
      hint: 'delete it first with `arbor remote delete`',
    });
  }
  const entries = new Map([
    ['url', remote.url],
    ['sign-verify', String(remote.signVerify)],
  ]);
  if (remote.keys.length > 0)
    entries.set('verification-ed25519-keys', remote.keys.map((k) => k.toString('base64')).join(','));
  for (const [key, value] of remote.options ?? []) {
    if (!isRemoteOptionKey(key))
      throw new UsageError('E_USAGE', `--set: unknown remote option '${key}'`, {
        hint: `known: ${REMOTE_OPTION_KEYS.join(', ')}`,
      });
    parseRemoteOption(remote.name, key, value);
    entries.set(key, value);
  }
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
  // A remote added again under this name may be another server: it starts without a record.
  repo.db.forgetRemoteSummary(name);
  return true;
}

/** True when `name` is a remote of this repository's config (pull-local sources are not). */
export function isConfiguredRemote(repo: Repo, name: string): boolean {
  return repo.config.has(section(name));
}

/** Replaces a remote's trusted keys (key rotation announced by its summary); one atomic config rewrite. */
export function setTrustedKeys(repo: Repo, name: string, keys: readonly Buffer[]): Remote {
  const entries = repo.config.get(section(name));
  assert(
    entries !== undefined && keys.length > 0,
    `setTrustedKeys: remote '${name}' is not configured, or no key is left`,
  );
  const config: Ini = new Map(repo.config);
  config.set(
    section(name),
    new Map([...entries, ['verification-ed25519-keys', keys.map((k) => k.toString('base64')).join(',')]]),
  );
  repo.writeConfig(config);
  return getRemote(repo, name);
}

/**
 * Forgets the newest summary accepted from a remote, so an older one is accepted once: for a
 * server whose repository was rebuilt on purpose with an older clock. False when none was recorded.
 */
export function resetRemoteFreshness(repo: Repo, name: string): boolean {
  getRemote(repo, name);
  return repo.db.forgetRemoteSummary(name);
}

/** What `remote show` and `remote list --json` print. */
export function describeRemote(remote: Remote): { name: string; url: string; signVerify: boolean; keys: string[] } {
  return { name: remote.name, url: remote.url, signVerify: remote.signVerify, keys: remote.keys.map((k) => keyId(k)) };
}
