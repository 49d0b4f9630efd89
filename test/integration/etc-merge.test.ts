// The /etc merge on real directories: three trees with real owners, modes, xattrs (user, trusted,
// security incl. a file capability), symlinks and special files are merged and written as a copy,
// and the result is checked path by path against an independent listing of the expected sides.
import {
  chmodSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../src/common/native.js';
import { ArborError } from '../../src/common/errors.js';
import {
  type EtcMergePlan,
  applyEtcMerge,
  configDiff,
  mergedEtcTree,
  planEtcMerge,
} from '../../src/deploy/etc-merge.js';
import { readEtcTree } from '../../src/deploy/etc-tree.js';
import { IS_ROOT, sh } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import { type TreeEntry, listTree } from '../support/tree.js';

interface Spec {
  file?: string;
  dir?: true;
  link?: string;
  fifo?: true;
  chr?: [major: number, minor: number];
  mode?: number;
  uid?: number;
  gid?: number;
  xattrs?: Record<string, string | Buffer>;
  mtimeS?: number;
}
type TreeSpec = Record<string, Spec>;

/** Writes `spec` under `root` (paths in parent-first order); directory metadata last, so read-only ones can be filled. */
function build(root: string, spec: TreeSpec): void {
  mkdirSync(root, { recursive: true });
  const dirs: [string, Spec][] = [];
  const meta = (path: string, s: Spec): void => {
    lchownSync(path, s.uid ?? 0, s.gid ?? 0);
    if (!s.link) chmodSync(path, s.mode ?? (s.dir ? 0o755 : 0o644));
    for (const [name, value] of Object.entries(s.xattrs ?? {})) native.setxattr(path, name, Buffer.from(value));
    if (s.mtimeS !== undefined && !s.link) utimesSync(path, s.mtimeS, s.mtimeS);
  };
  for (const [rel, s] of Object.entries(spec)) {
    const path = rel === '.' ? root : join(root, rel);
    if (s.dir) {
      if (rel !== '.') mkdirSync(path);
      dirs.push([path, s]);
      continue;
    }
    if (s.link !== undefined) symlinkSync(s.link, path);
    else if (s.fifo) native.mknod(path, 0o010000 | 0o600, 0, 0);
    else if (s.chr) native.mknod(path, 0o020000 | 0o600, s.chr[0], s.chr[1]);
    else writeFileSync(path, s.file ?? '');
    meta(path, s);
  }
  for (const [path, s] of dirs.reverse()) meta(path, s);
}

/** `spec` with entries replaced or (null) removed along with what they held. */
function patch(spec: TreeSpec, changes: Record<string, Spec | null>): TreeSpec {
  const out: TreeSpec = { ...spec };
  for (const [path, s] of Object.entries(changes)) {
    if (!s || !s.dir) for (const p of Object.keys(out)) if (p === path || p.startsWith(`${path}/`)) delete out[p];
    if (s) out[path] = s;
  }
  return out;
}

// A VFS_CAP_REVISION_2 file capability: cap_net_bind_service, effective. chown(2) clears it, so it survives only if set after the owner.
const CAP_NET_BIND_SERVICE = Buffer.from([0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

const OLD: TreeSpec = {
  '.': { dir: true },
  passwd: { file: 'root:x:0:0::/root:/bin/sh\n' },
  shadow: { file: 'root:!::0:::::\n', mode: 0o640, gid: 42 },
  motd: { file: 'welcome v1\n' },
  hosts: { file: '127.0.0.1 localhost\n' },
  'app.conf': { file: 'level=1\n', xattrs: { 'user.origin': 'defaults' } },
  'cap-tool': { file: '#!/bin/sh\n', mode: 0o755, xattrs: { 'security.capability': CAP_NET_BIND_SERVICE } },
  localtime: { link: '../usr/share/zoneinfo/UTC' },
  ssh: { dir: true },
  'ssh/sshd_config': { file: 'PermitRootLogin no\n', mode: 0o600 },
  'ssh/moduli': { file: 'moduli v1\n' },
  'plugins.d': { dir: true },
  'plugins.d/a.conf': { file: 'a\n' },
  'old.d': { dir: true },
  'old.d/x.conf': { file: 'x\n' },
  'gone.conf': { file: 'soon gone\n' },
  'ro.d': { dir: true, mode: 0o555 },
  'ro.d/f': { file: 'read only\n', mode: 0o444 },
  tmpl: { file: 'a file for now\n' },
  sticky: { dir: true, mode: 0o1777 },
  initctl: { fifo: true },
};

const ADMIN = patch(OLD, {
  passwd: { file: 'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n', mtimeS: 1_600_000_000 },
  motd: { file: 'welcome to the lab\n' },
  hosts: { file: '127.0.0.1 localhost\n', mode: 0o600 },
  shadow: { file: 'root:!::0:::::\n', mode: 0o640, gid: 15 },
  'app.conf': { file: 'level=1\n', xattrs: { 'user.origin': 'admin', 'trusted.note': 'kept' } },
  localtime: { link: '../usr/share/zoneinfo/Europe/Paris' },
  'ssh/sshd_config': { file: 'PermitRootLogin prohibit-password\n', mode: 0o600 },
  'plugins.d': null,
  'old.d/local.conf': { file: 'mine\n', mode: 0o600 },
  'mine.d': { dir: true, mode: 0o750, uid: 1234, gid: 1234, xattrs: { 'user.k': 'v' } },
  'mine.d/1.conf': { file: 'one\n', uid: 1234, gid: 1234, xattrs: { 'user.x': '1', 'security.arbor-test': 'label' } },
  'mine.d/link': { link: '1.conf', uid: 1234, gid: 1234 },
  'dev-null': { chr: [1, 3], mode: 0o666 },
  tool: {
    file: '#!/bin/sh\necho hi\n',
    mode: 0o4755,
    uid: 1234,
    gid: 100,
    xattrs: { 'security.capability': CAP_NET_BIND_SERVICE },
  },
});

const NEW = patch(OLD, {
  motd: { file: 'welcome v2\n' },
  'ssh/moduli': { file: 'moduli v2\n' },
  'plugins.d/b.conf': { file: 'b\n' },
  'old.d': null,
  'gone.conf': null,
  tmpl: { dir: true, mode: 0o700 },
  'tmpl/inner': { file: 'inside\n' },
  'added.conf': { file: 'new\n', xattrs: { 'security.arbor-test': 'etc_t' } },
  'cap-tool': { file: '#!/bin/sh\nexec true\n', mode: 0o755, xattrs: { 'security.capability': CAP_NET_BIND_SERVICE } },
});

/** path → the side the merged /etc takes it from; every other path must be absent. */
const EXPECTED: Record<string, 'admin' | 'new'> = {
  '.': 'new',
  passwd: 'admin',
  shadow: 'admin',
  motd: 'admin',
  hosts: 'admin',
  'app.conf': 'admin',
  'cap-tool': 'new',
  localtime: 'admin',
  ssh: 'new',
  'ssh/sshd_config': 'admin',
  'ssh/moduli': 'new',
  'old.d': 'admin',
  'old.d/x.conf': 'admin',
  'old.d/local.conf': 'admin',
  'ro.d': 'new',
  'ro.d/f': 'new',
  tmpl: 'new',
  'tmpl/inner': 'new',
  sticky: 'new',
  initctl: 'new',
  'mine.d': 'admin',
  'mine.d/1.conf': 'admin',
  'mine.d/link': 'admin',
  'dev-null': 'admin',
  tool: 'admin',
  'added.conf': 'new',
};

/** The listing the merged /etc must have: each path's full listing entry from the side it comes from. */
function expectedListing(adminDir: string, newDir: string): TreeEntry[] {
  const sides = { admin: listTree(adminDir), new: listTree(newDir) };
  return Object.entries(EXPECTED)
    .map(([path, side]) => {
      const entry = sides[side].find((e) => e.path === path);
      if (!entry) throw new Error(`${path} is not in the ${side} tree`);
      return entry;
    })
    .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

describe.skipIf(!IS_ROOT)('the /etc merge of real trees, as root', () => {
  const tmp = useTempDir('arbor-etc-merge-');
  let dirs: { oldDefaultsDir: string; adminDir: string; newDefaultsDir: string; store: string };
  let plan: EtcMergePlan;

  beforeAll(() => {
    const old = join(tmp.path, 'old');
    const store = join(tmp.path, 'store');
    dirs = {
      oldDefaultsDir: join(old, 'usr/etc'),
      adminDir: join(old, 'etc'),
      newDefaultsDir: join(tmp.path, 'new/usr/etc'),
      store,
    };
    build(dirs.oldDefaultsDir, OLD);
    build(dirs.adminDir, ADMIN);
    // As in a deployment, the new defaults are hardlinks to (read-only by convention) store objects.
    build(store, NEW);
    mkdirSync(join(tmp.path, 'new/usr'), { recursive: true });
    sh(`cp -al ${store} ${dirs.newDefaultsDir}`);
    plan = planEtcMerge(readEtcTree(dirs.oldDefaultsDir), readEtcTree(dirs.adminDir), readEtcTree(dirs.newDefaultsDir));
  });

  it('reports exactly the paths both sides changed, with what each did', () => {
    expect(plan.conflicts.map((c) => [c.path, c.admin, c.defaults])).toEqual([
      ['motd', 'changed content', 'changed content'],
      ['old.d', 'changed entries below', 'deleted directory'],
      ['plugins.d', 'deleted directory', 'changed entries below'],
    ]);
  });

  it('writes a copy whose every path, owner, mode, xattr, target and device equals the side the plan chose', () => {
    const dest = join(tmp.path, 'new/etc');
    const stats = applyEtcMerge(plan, dirs, dest);
    expect(listTree(dest)).toEqual(expectedListing(dirs.adminDir, dirs.newDefaultsDir));
    expect(stats).toMatchObject({ dirs: 7, otherEntries: 2 });
    // Read back through the merge's own reader too: the tree the plan promised.
    expect(Object.fromEntries(readEtcTree(dest))).toEqual(Object.fromEntries(mergedEtcTree(plan)));
    expect(existsSync(`${dest}.tmp`)).toBe(false);
  });

  it('never hardlinks: editing the merged /etc in place leaves the store objects alone', () => {
    const dest = join(tmp.path, 'new/etc');
    expect(lstatSync(join(dirs.newDefaultsDir, 'cap-tool')).nlink).toBe(2);
    for (const e of listTree(dest)) if (e.type === 'file') expect(lstatSync(join(dest, e.path)).nlink, e.path).toBe(1);
    writeFileSync(join(dest, 'cap-tool'), 'edited by the admin\n');
    writeFileSync(join(dest, 'ro.d/f'), 'edited too\n');
    expect(readFileSync(join(dirs.store, 'cap-tool'), 'utf8')).toBe('#!/bin/sh\nexec true\n');
    expect(readFileSync(join(dirs.store, 'ro.d/f'), 'utf8')).toBe('read only\n');
  });

  it('keeps a setuid file with a capability owned by a user (chown clears both unless set after it)', () => {
    const st = lstatSync(join(tmp.path, 'new/etc/tool'));
    expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }).toEqual({ uid: 1234, gid: 100, mode: 0o4755 });
    expect(native.lgetxattrs(join(tmp.path, 'new/etc/tool')).find(([n]) => n === 'security.capability')?.[1]).toEqual(
      CAP_NET_BIND_SERVICE,
    );
  });

  it('keeps modification times', () => {
    expect(lstatSync(join(tmp.path, 'new/etc/passwd')).mtimeMs).toBe(1_600_000_000_000);
  });

  it("lists the admin's changes as config-diff does, before and after the merge", () => {
    const lines = (defaults: string, etc: string): string[] =>
      configDiff(defaults, etc).map(
        (c) =>
          `${c.change === 'added' ? 'A' : c.change === 'deleted' ? 'D' : 'M'} ${c.path}${c.details.length ? ` (${c.details.join(', ')})` : ''}`,
      );
    expect(lines(dirs.oldDefaultsDir, dirs.adminDir)).toEqual([
      'M app.conf (xattrs)',
      'A dev-null',
      'M hosts (mode)',
      'M localtime (target)',
      'A mine.d',
      'M motd (content)',
      'A old.d/local.conf',
      'M passwd (content)',
      'D plugins.d',
      'M shadow (owner)',
      'M ssh/sshd_config (content)',
      'A tool',
    ]);
    // After the merge the admin's changes are the same ones, now against the new defaults, plus the files
    // edited in place above (writing to cap-tool made the kernel drop its capability, as it does on any write).
    expect(lines(dirs.newDefaultsDir, join(tmp.path, 'new/etc'))).toEqual([
      'M app.conf (xattrs)',
      'M cap-tool (content, xattrs)',
      'A dev-null',
      'M hosts (mode)',
      'M localtime (target)',
      'A mine.d',
      'M motd (content)',
      'A old.d',
      'M passwd (content)',
      'D plugins.d',
      'M ro.d/f (content)',
      'M shadow (owner)',
      'M ssh/sshd_config (content)',
      'A tool',
    ]);
  });

  it('fails with E_ETC_CHANGED, leaving nothing behind, when a file changes after planning', () => {
    const dest = join(tmp.path, 'changed-etc');
    writeFileSync(join(dirs.adminDir, 'passwd'), 'edited after the plan\n');
    try {
      expect(() => applyEtcMerge(plan, dirs, dest)).toThrow(expect.objectContaining({ code: 'E_ETC_CHANGED' }));
    } finally {
      writeFileSync(
        join(dirs.adminDir, 'passwd'),
        'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n',
      );
    }
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.tmp`)).toBe(false);
  });

  it('replaces a half-written temporary directory left by a crash, and refuses an existing destination', () => {
    const dest = join(tmp.path, 'again-etc');
    mkdirSync(`${dest}.tmp/junk`, { recursive: true });
    plan = planEtcMerge(readEtcTree(dirs.oldDefaultsDir), readEtcTree(dirs.adminDir), readEtcTree(dirs.newDefaultsDir));
    applyEtcMerge(plan, dirs, dest);
    expect(existsSync(join(dest, 'junk'))).toBe(false);
    expect(listTree(dest)).toEqual(expectedListing(dirs.adminDir, dirs.newDefaultsDir));
    expect(() => applyEtcMerge(plan, dirs, dest)).toThrow(/exists/);
  });

  it('makes a first deployment /etc as a copy of the new defaults', () => {
    const dest = join(tmp.path, 'first-etc');
    applyEtcMerge(
      planEtcMerge(new Map(), new Map(), readEtcTree(dirs.store)),
      { oldDefaultsDir: null, adminDir: null, newDefaultsDir: dirs.store },
      dest,
    );
    expect(listTree(dest)).toEqual(listTree(dirs.store));
  });
});

describe('reading an /etc tree', () => {
  const tmp = useTempDir('arbor-etc-read-');

  it('fails with E_IO on a missing directory and E_ETC_INVALID on a symlink', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (error) {
        return error instanceof ArborError ? error.code : String(error);
      }
      return undefined;
    };
    expect(code(() => readEtcTree(join(tmp.path, 'missing')))).toBe('E_IO');
    mkdirSync(join(tmp.path, 'real'));
    symlinkSync('real', join(tmp.path, 'link'));
    expect(code(() => readEtcTree(join(tmp.path, 'link')))).toBe('E_ETC_INVALID');
  });

  it('refuses a name that is not UTF-8 instead of mangling it', () => {
    const dir = join(tmp.path, 'latin1');
    mkdirSync(dir);
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/caf`), Buffer.from([0xe9])]), 'x');
    expect(() => readEtcTree(dir)).toThrow(expect.objectContaining({ code: 'E_NAME_ENCODING' }));
    rmSync(dir, { recursive: true });
  });

  it('reads type, mode, content digest, symlink target and user xattrs', () => {
    const dir = join(tmp.path, 'small');
    mkdirSync(dir);
    writeFileSync(join(dir, 'f'), 'hello');
    chmodSync(join(dir, 'f'), 0o600);
    native.setxattr(join(dir, 'f'), 'user.k', Buffer.from('v'));
    symlinkSync('f', join(dir, 'l'));
    const tree = readEtcTree(dir);
    expect([...tree.keys()]).toEqual(['.', 'f', 'l']);
    expect(tree.get('f')).toMatchObject({ type: 'file', mode: 0o600, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(tree.get('f')?.xattrs.get('user.k')).toEqual(Buffer.from('v'));
    expect(tree.get('l')).toMatchObject({ type: 'symlink', target: 'f' });
  });
});
