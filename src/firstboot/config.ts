// First-boot configurations: the YAML a user gives `arbor image build --config` or `arbor admin firstboot`,
// validated strictly at build time (unknown keys and bad values are errors at FILE:LINE:COL) into what the
// generated boot-time script applies: hostname, groups, users, files, directories, systemd units, kargs.
import { type Node, type Pair, isScalar } from 'yaml';
import { UsageError } from '../common/errors.js';
import { readInputFile } from '../common/input-file.js';
import { YamlValidator, parseYamlSource, quote } from '../common/yaml-source.js';

interface FirstbootGroup {
  readonly name: string;
  readonly gid: number | null;
}

interface FirstbootUser {
  readonly name: string;
  readonly uid: number | null;
  readonly gecos: string;
  /** Absolute; default /home/NAME (a link into /var on Arbor hosts). */
  readonly home: string;
  readonly shell: string;
  /** Supplementary groups, which must exist when the script runs (in the tree or created above). */
  readonly groups: readonly string[];
  /** A crypt(3) hash; null leaves the password locked. */
  readonly passwordHash: string | null;
  readonly sshAuthorizedKeys: readonly string[];
}

interface FirstbootFile {
  readonly path: string;
  readonly contents: string;
  readonly mode: number;
  readonly owner: string;
  readonly group: string;
}

interface FirstbootDirectory {
  readonly path: string;
  readonly mode: number;
  readonly owner: string;
  readonly group: string;
}

interface FirstbootUnit {
  /** A unit file name such as `hello.service`. */
  readonly name: string;
  readonly enabled: boolean;
  readonly mask: boolean;
  /** A unit file written to /etc/systemd/system, or null to use the one the tree ships. */
  readonly contents: string | null;
}

export interface FirstbootConfig {
  /** The file it was read from, for messages. */
  readonly path: string;
  readonly hostname: string | null;
  readonly groups: readonly FirstbootGroup[];
  readonly users: readonly FirstbootUser[];
  readonly files: readonly FirstbootFile[];
  readonly directories: readonly FirstbootDirectory[];
  readonly units: readonly FirstbootUnit[];
  readonly kargsAdd: readonly string[];
  readonly kargsRemove: readonly string[];
}

/** The largest configuration read, in bytes: it holds keys and small files, not payloads. */
const MAX_CONFIG_BYTES = 1024 * 1024;
const CODE = 'E_FIRSTBOOT_CONFIG';

/** Reads and validates a first-boot configuration; every problem is E_FIRSTBOOT_CONFIG at FILE:LINE:COL. */
export function loadFirstbootConfig(path: string): FirstbootConfig {
  const what = `first-boot configuration '${path}'`;
  const bytes = readInputFile(path, what, {
    code: CODE,
    maxBytes: MAX_CONFIG_BYTES,
    names: 'a first-boot configuration is one of the',
  });
  return parseFirstbootConfig(path, bytes);
}

/** Validates the bytes of a first-boot configuration read from `path`. */
export function parseFirstbootConfig(path: string, bytes: Uint8Array): FirstbootConfig {
  const { doc, at } = parseYamlSource(path, bytes, `first-boot configuration '${path}'`, CODE);
  const v = new Validator(at);
  const root = v.mapping(doc.contents, 'the configuration', TOP_KEYS);
  const hostname = root.get('hostname');
  const groups = root.get('groups');
  const users = root.get('users');
  const files = root.get('files');
  const directories = root.get('directories');
  const systemd = root.get('systemd');
  const kargs = root.get('kernel_arguments');
  const systemdKeys = systemd ? v.mapping(systemd.value, "'systemd'", ['units']) : new Map<string, Pair>();
  const kargKeys = kargs
    ? v.mapping(kargs.value, "'kernel_arguments'", ['should_exist', 'should_not_exist'])
    : new Map<string, Pair>();
  const config: FirstbootConfig = {
    path,
    hostname: hostname ? v.hostname(hostname.value as Node) : null,
    groups: v.list(groups, 'groups', (n) => v.group(n)),
    users: v.list(users, 'users', (n) => v.user(n)),
    files: v.list(files, 'files', (n) => v.file(n)),
    directories: v.list(directories, 'directories', (n) => v.directory(n)),
    units: v.list(systemdKeys.get('units'), 'systemd.units', (n) => v.unit(n)),
    kargsAdd: v.list(kargKeys.get('should_exist'), 'kernel_arguments.should_exist', (n) => v.karg(n)),
    kargsRemove: v.list(kargKeys.get('should_not_exist'), 'kernel_arguments.should_not_exist', (n) => v.karg(n)),
  };
  v.unique(config.groups, 'group', (g) => g.name);
  v.unique(config.users, 'user', (u) => u.name);
  v.unique([...config.files, ...config.directories], 'path', (f) => f.path);
  v.unique(config.units, 'unit', (u) => u.name);
  return config;
}

const TOP_KEYS = ['hostname', 'groups', 'users', 'files', 'directories', 'systemd', 'kernel_arguments'];
const USER_KEYS = ['name', 'uid', 'gecos', 'home', 'shell', 'groups', 'password_hash', 'ssh_authorized_keys'];
const FILE_KEYS = ['path', 'contents', 'mode', 'owner', 'group'];
const DIRECTORY_KEYS = ['path', 'mode', 'owner', 'group'];
const UNIT_KEYS = ['name', 'enabled', 'mask', 'contents'];

/** Account names as useradd accepts them by default. */
const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,30}$/;
/** Unit names a configuration may enable or mask (templates need an instance, which this does not model). */
const UNIT_NAME = /^[A-Za-z0-9:_.\\-]+\.(service|socket|timer|target|path|mount|automount|swap|slice)$/;
/** Trees a first-boot file may not touch: read-only (/usr), the boot partitions, or not files at all. */
const FORBIDDEN_ROOTS = ['/usr', '/boot', '/efi', '/proc', '/sys', '/dev', '/run', '/sysroot', '/tmp'];

class Validator extends YamlValidator {
  constructor(at: (node: Node | null | undefined) => string) {
    super(CODE, at);
  }

  /** An octal mode written "0644" (quoted) or 0o644: YAML reads a bare 0644 as the decimal number 644. */
  mode(node: Node | null | undefined, what: string, fallback: number): number {
    if (node === undefined) return fallback;
    if (isScalar(node) && typeof node.value === 'number' && node.format === 'OCT' && node.value <= 0o7777)
      return node.value;
    if (isScalar(node) && typeof node.value === 'string' && /^0?[0-7]{3,4}$/.test(node.value))
      return Number.parseInt(node.value, 8);
    return this.fail(node, `${what} must be an octal mode written '0644' (quoted) or 0o644`);
  }

  /** An absolute, normal path outside the trees a running system must not have written to. */
  path(node: Node | null | undefined, what: string): string {
    const value = this.line(node, what);
    if (!value.startsWith('/') || value === '/' || value.endsWith('/'))
      this.fail(node, `${what} must be an absolute path to a file or directory, not ${quote(value)}`);
    if (value.split('/').some((c, i) => i > 0 && (c === '' || c === '.' || c === '..')))
      this.fail(node, `${what} must be a normal path (no '.', '..' or '//'): ${quote(value)}`);
    const under = FORBIDDEN_ROOTS.find((r) => value === r || value.startsWith(`${r}/`));
    if (under) this.fail(node, `${what} is under ${under}, which first boot must not write (use /etc, /var or /home)`);
    return value;
  }

  account(node: Node | null | undefined, what: string): string {
    return this.string(node, what, ACCOUNT_NAME, 'an account name (lower case letters, digits, _ and -)');
  }

  /** A user or group that owns a file: a name, or a number for an id no name has. */
  owner(node: Node | null | undefined, what: string): string {
    if (node === undefined) return 'root';
    if (isScalar(node) && typeof node.value === 'number') return String(this.int(node, what, 0, 2 ** 32 - 2));
    return this.account(node, what);
  }

  hostname(node: Node): string {
    const value = this.string(node, "'hostname'");
    const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
    if (value.length > 64 || !value.split('.').every((l) => label.test(l)))
      this.fail(node, `'hostname' is not a valid host name (letters, digits and - in dot-separated labels, ≤ 64)`);
    return value;
  }

  group(node: Node): FirstbootGroup {
    const keys = this.mapping(node, 'a group', ['name', 'gid']);
    const name = this.account(required(this, keys, node, 'name', 'a group'), 'a group name');
    const gid = keys.get('gid');
    return { name, gid: gid ? this.int(gid.value as Node, "'gid'", 1, 2 ** 31 - 1) : null };
  }

  user(node: Node): FirstbootUser {
    const keys = this.mapping(node, 'a user', USER_KEYS);
    const value = (key: string): Node | undefined => keys.get(key)?.value as Node | undefined;
    const name = this.account(required(this, keys, node, 'name', 'a user'), 'a user name');
    const uid = value('uid');
    const hash = value('password_hash');
    const home = value('home');
    const shell = value('shell');
    const gecos = value('gecos');
    return {
      name,
      uid: uid ? this.int(uid, "'uid'", 1, 2 ** 31 - 1) : null,
      gecos: gecos ? this.string(gecos, "'gecos'", /^[^:\n\r\0]*$/, 'text without colons or newlines') : '',
      home: home ? this.string(home, "'home'", /^\/[^:\n\r\0]*$/, 'an absolute path without colons') : `/home/${name}`,
      shell: shell ? this.string(shell, "'shell'", /^\/[^:\n\r\0]*$/, 'an absolute path without colons') : '/bin/sh',
      groups: this.list(keys.get('groups'), 'groups', (n) => this.account(n, 'a group name')),
      passwordHash: hash
        ? this.string(
            hash,
            "'password_hash'",
            /^\$[0-9a-z]+\$[A-Za-z0-9./$=,]+$/,
            'a crypt(3) hash such as $6$salt$hash',
          )
        : null,
      sshAuthorizedKeys: this.list(keys.get('ssh_authorized_keys'), 'ssh_authorized_keys', (n) =>
        this.line(n, 'an ssh key'),
      ),
    };
  }

  file(node: Node): FirstbootFile {
    const keys = this.mapping(node, 'a file', FILE_KEYS);
    const value = (key: string): Node | undefined => keys.get(key)?.value as Node | undefined;
    const path = this.path(required(this, keys, node, 'path', 'a file'), 'a file path');
    return {
      path,
      contents: value('contents') === undefined ? '' : this.string(value('contents'), "'contents'"),
      mode: this.mode(value('mode'), "'mode'", 0o644),
      owner: this.owner(value('owner'), "'owner'"),
      group: this.owner(value('group'), "'group'"),
    };
  }

  directory(node: Node): FirstbootDirectory {
    const keys = this.mapping(node, 'a directory', DIRECTORY_KEYS);
    const value = (key: string): Node | undefined => keys.get(key)?.value as Node | undefined;
    return {
      path: this.path(required(this, keys, node, 'path', 'a directory'), 'a directory path'),
      mode: this.mode(value('mode'), "'mode'", 0o755),
      owner: this.owner(value('owner'), "'owner'"),
      group: this.owner(value('group'), "'group'"),
    };
  }

  unit(node: Node): FirstbootUnit {
    const keys = this.mapping(node, 'a unit', UNIT_KEYS);
    const value = (key: string): Node | undefined => keys.get(key)?.value as Node | undefined;
    const name = this.string(
      required(this, keys, node, 'name', 'a unit'),
      'a unit name',
      UNIT_NAME,
      'a unit file name such as hello.service (no template)',
    );
    const enabled = value('enabled') === undefined ? false : this.bool(value('enabled'), "'enabled'");
    const mask = value('mask') === undefined ? false : this.bool(value('mask'), "'mask'");
    const contents = value('contents') === undefined ? null : this.string(value('contents'), "'contents'");
    if (enabled && mask) this.fail(node, `unit '${name}' cannot be both enabled and masked`);
    if (!enabled && !mask && contents === null)
      this.fail(node, `unit '${name}' says nothing to do: give enabled: true, mask: true or contents`);
    return { name, enabled, mask, contents };
  }

  karg(node: Node): string {
    // Quotes and whitespace would need the bootloader's quoting rules; kernel arguments here are plain words.
    return this.string(node, 'a kernel argument', /^[!#-&(-~]+$/, 'one word without spaces or quotes');
  }

  /** Refuses two entries with the same key (the second is named, with where the first was). */
  unique<T>(items: readonly T[], what: string, key: (item: T) => string): void {
    const seen = new Set<string>();
    for (const item of items) {
      const k = key(item);
      if (seen.has(k)) throw new UsageError(CODE, `${this.at(null)}: ${what} ${quote(k)} is configured twice`);
      seen.add(k);
    }
  }
}

function required(v: Validator, keys: Map<string, Pair>, node: Node, key: string, what: string): Node {
  const pair = keys.get(key);
  if (pair === undefined || pair.value === null) return v.fail(node, `${what} needs '${key}'`);
  return pair.value as Node;
}
