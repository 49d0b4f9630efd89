// Pulling over HTTP from a real nginx and from local paths: object-by-object pulls into every
// repository mode and static-delta pulls (v1→v2, from scratch, inline, fallback) reproduce the
// source tree exactly; --dry-run, --commit-metadata-only, --depth, pull-local and `remote`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, arbor, runCli, sh } from '../support/cli.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { expectArborError, initRepo, listObjectFiles } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import {
  AccessLog,
  LARGE_FILE_BYTES,
  type ServerRepo,
  fsck,
  makeServerRepo,
  refsOf,
  servedObjectPath,
  treeChecksums,
  writeTransferTree,
} from '../support/transfer.js';
import { type TreeEntry, listTree } from '../support/tree.js';
import { filledInBeforeAll } from '../support/filled-later.js';

const MODES = ['bare', 'bare-user', 'archive'] as const;
type Mode = (typeof MODES)[number];

interface PullJson {
  refs: {
    ref: string;
    commit: string;
    previous: string | null;
    method: string;
    version: string | null;
    signedBy: string | null;
  }[];
  objectsFetched: number;
  bytesFetched: number;
  wouldFetch?: { objects: number; bytes: number };
}

describe.skipIf(!HAVE_NGINX)('pulling from an archive repository served by nginx', () => {
  const tmp = useTempDir('arbor-transfer-pull-');
  let nginx: NginxServer;
  let log: AccessLog;
  let plain: ServerRepo;
  /** The same commits with only an inline v1→v2 delta (no delta from scratch). */
  let inline: string;
  const expected = filledInBeforeAll<Record<'v1' | 'v2', TreeEntry[]>>();
  let clients = 0;
  /** The object of large/big.bin in v2. */
  let largeObject: string;

  const templates = new Map<string, string>();
  /** A fresh repository of MODE with remote origin → SERVER (a directory under the nginx root): a copy of one made once. */
  const newClient = (mode: Mode, server = 'plain'): string => {
    const key = `${mode}-${server}`;
    let template = templates.get(key);
    if (template === undefined) {
      template = initRepo(join(tmp.path, `template-${key}`), mode);
      arbor('remote', 'add', '--repo', template, 'origin', `${nginx.url}/${server}`, '--no-sign-verify');
      templates.set(key, template);
    }
    const repo = join(tmp.path, `client-${clients++}-${key}`);
    sh(`cp -a '${template}' '${repo}'`);
    return repo;
  };
  const pull = (repo: string, ...args: string[]): PullJson =>
    JSON.parse(arbor('pull', '--json', '--repo', repo, 'origin', ...args)) as PullJson;
  /** Checks REV out (hardlinks from a bare repository, copies otherwise) and lists it. */
  const checkout = (repo: string, mode: Mode, rev: string): TreeEntry[] => {
    const dest = join(tmp.path, `checkout-${clients++}`);
    arbor('checkout', '--repo', repo, ...(mode === 'bare' ? [] : ['--copy']), rev, dest);
    return listTree(dest);
  };
  const deltaFiles = (server: string, name: string): string[] => readdirSync(join(server, 'deltas', name)).sort();
  const paths = (entries: { path: string }[]): string[] => entries.map((e) => e.path);

  beforeAll(async () => {
    const trees = { v1: join(tmp.path, 'tree-v1'), v2: join(tmp.path, 'tree-v2') };
    writeTransferTree(trees.v1, 1);
    writeTransferTree(trees.v2, 2);
    expected.v1 = listTree(trees.v1);
    expected.v2 = listTree(trees.v2);
    plain = makeServerRepo(join(tmp.path, 'srv/plain'), trees);
    largeObject = treeChecksums(plain.path, plain.v2).get('/large/big.bin') as string;
    arbor('static-delta', 'generate', '--repo', plain.path, '--to', 'os/main');
    arbor('static-delta', 'generate', '--repo', plain.path, '--empty', '--to', 'os/main', '--level', '3');
    arbor('summary', '--repo', plain.path, '--update');
    inline = initRepo(join(tmp.path, 'srv/inline'), 'archive');
    arbor('pull-local', '--repo', inline, plain.path, 'os/stable', 'os/main');
    arbor('static-delta', 'generate', '--repo', inline, '--to', 'os/main', '--inline');
    arbor('summary', '--repo', inline, '--update');
    log = new AccessLog(join(tmp.path, 'access.log'));
    nginx = await startNginx(join(tmp.path, 'srv'), { accessLog: log.path });
  });
  afterAll(() => nginx?.stop());

  it('serves trees holding what the comparisons rely on (large file, setuid, foreign owner, xattrs, symlinks, hardlinks, empty files)', () => {
    const byPath = new Map(expected.v1.map((e) => [e.path, e]));
    expect(byPath.get('large/big.bin')?.size).toBe(LARGE_FILE_BYTES);
    expect(byPath.get('bin/suid')?.mode).toBe('4755');
    expect(byPath.get('xattr/file')?.xattrs).toMatchObject({ 'user.binary': '00ff800a', 'user.empty': '' });
    expect(byPath.get('links/dangling')).toMatchObject({ type: 'symlink', target: 'does/not/exist' });
    expect(byPath.get('hard/b')?.sha256).toBe(byPath.get('hard/a')?.sha256);
    expect(byPath.get('etc/empty')?.size).toBe(0);
    if (IS_ROOT) expect(byPath.get('home/user/.profile')).toMatchObject({ uid: 1234, gid: 5678 });
    // v2 edits in place, renames lib/old-name, changes only the mode of bin/tool, adds and removes.
    const v2 = new Map(expected.v2.map((e) => [e.path, e]));
    expect(v2.get('bulk/d00/f0000')?.sha256).not.toBe(byPath.get('bulk/d00/f0000')?.sha256);
    expect([byPath.has('lib/old-name'), v2.has('lib/old-name'), v2.has('lib/new-name')]).toEqual([true, false, true]);
    expect([byPath.get('bin/tool')?.mode, v2.get('bin/tool')?.mode, v2.get('bin/tool')?.sha256]).toEqual([
      '0755',
      '0700',
      byPath.get('bin/tool')?.sha256,
    ]);
    expect([v2.has('added/n0'), v2.has('bulk/d01/f0001'), v2.has('etc/config.old')]).toEqual([true, false, false]);
  });

  describe.each(MODES)('object by object into a %s repository', (mode) => {
    let repo: string;
    it.skipIf(mode === 'bare' && !IS_ROOT)(
      'stores every object verified, moves origin:os/main, and checks out v2 byte for byte with modes, owners and xattrs',
      () => {
        repo = newClient(mode);
        log.mark();
        const report = pull(repo, '--disable-static-deltas', 'os/main');
        expect(report.refs).toEqual([
          expect.objectContaining({
            ref: 'os/main',
            commit: plain.v2,
            previous: null,
            method: 'objects',
            version: '2.0',
          }),
        ]);
        const fetched = paths(log.since());
        expect(fetched.filter((p) => p.includes('/deltas/'))).toEqual([]);
        // The large object is over the spill threshold: it arrives through a file, not a buffer.
        expect(fetched).toContain(`/plain/${servedObjectPath(largeObject, 'file')}`);
        expect(report.objectsFetched).toBe(
          fetched.filter((p) => /\/objects\/.*\.(filez|dirtree|dirmeta|commit)$/.test(p)).length,
        );
        expect(fsck(repo)).toEqual({ exitCode: 0, output: expect.stringContaining('clean') });
        expect(refsOf(repo)).toEqual({ 'origin:os/main': plain.v2 });
        expect(checkout(repo, mode, 'origin:os/main')).toEqual(expected.v2);
      },
    );

    it.skipIf(mode === 'bare' && !IS_ROOT)('reports "up to date" on a second pull and fetches no object', () => {
      log.mark();
      const r = runCli(['pull', '--repo', repo, 'origin', '--disable-static-deltas', 'os/main']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain(`origin:os/main: ${plain.v2} (2.0) — up to date`);
      expect(r.stdout).toMatch(/^fetched 0 objects/m);
      expect(paths(log.since()).filter((p) => p.includes('/objects/') || p.includes('/deltas/'))).toEqual([]);
    });
  });

  describe('static deltas', () => {
    it('a client holding v1 gets v2 from the v1→v2 superblock and its parts, with no object requests', () => {
      const repo = newClient('bare-user');
      pull(repo, '--disable-static-deltas', 'os/stable');
      log.mark();
      const report = pull(repo, 'os/main');
      expect(report.refs[0]).toMatchObject({ commit: plain.v2, method: `delta from ${plain.v1.slice(0, 12)}` });
      const name = `${plain.v1}-${plain.v2}`;
      const parts = deltaFiles(plain.path, name);
      expect(parts.length).toBeGreaterThan(2); // superblock and at least two parts (patches have their own)
      const fetched = paths(log.since());
      expect(fetched.filter((p) => p.includes('/deltas/')).sort()).toEqual(
        parts.map((f) => `/plain/deltas/${name}/${f}`),
      );
      expect(fetched.filter((p) => /\/objects\/.*\.(filez|dirtree|dirmeta|commit)$/.test(p))).toEqual([]);
      expect(fsck(repo).exitCode).toBe(0);
      expect(refsOf(repo)).toEqual({ 'origin:os/stable': plain.v1, 'origin:os/main': plain.v2 });
      expect(checkout(repo, 'bare-user', 'origin:os/main')).toEqual(expected.v2);
    });

    it('a fresh client gets v2 from the delta from scratch, with no object requests', () => {
      const mode = 'bare-user';
      const repo = newClient(mode);
      log.mark();
      expect(pull(repo, 'os/main').refs[0]).toMatchObject({ commit: plain.v2, method: 'delta from scratch' });
      const fetched = paths(log.since());
      expect(fetched.filter((p) => p.includes('/deltas/')).sort()).toEqual(
        deltaFiles(plain.path, plain.v2).map((f) => `/plain/deltas/${plain.v2}/${f}`),
      );
      expect(fetched.filter((p) => /\/objects\/.*\.(filez|dirtree|dirmeta|commit)$/.test(p))).toEqual([]);
      expect(fsck(repo).exitCode).toBe(0);
      expect(checkout(repo, mode, 'origin:os/main')).toEqual(expected.v2);
    });

    it('an --inline delta is one request: the superblock carries the parts', () => {
      const repo = newClient('bare-user', 'inline');
      pull(repo, 'os/stable');
      log.mark();
      expect(pull(repo, 'os/main').refs[0]).toMatchObject({ method: `delta from ${plain.v1.slice(0, 12)}` });
      const name = `${plain.v1}-${plain.v2}`;
      expect(deltaFiles(inline, name)).toEqual(['superblock']);
      const fetched = paths(log.since());
      expect(fetched.filter((p) => p.includes('/deltas/') || /\.(filez|dirtree|dirmeta|commit)$/.test(p))).toEqual([
        `/inline/deltas/${name}/superblock`,
      ]);
      expect(fsck(repo).exitCode).toBe(0);
      expect(checkout(repo, 'bare-user', 'origin:os/main')).toEqual(expected.v2);
    });

    it("falls back to objects when the client lacks the delta's from-commit and there is no delta from scratch", () => {
      const repo = newClient('archive', 'inline');
      log.mark();
      expect(pull(repo, 'os/main').refs[0]).toMatchObject({ commit: plain.v2, method: 'objects' });
      const fetched = paths(log.since());
      expect(fetched.filter((p) => p.includes('/deltas/'))).toEqual([]);
      expect(fetched.filter((p) => p.endsWith('.filez')).length).toBeGreaterThan(200);
      expect(fsck(repo).exitCode).toBe(0);
      expect(checkout(repo, 'archive', 'origin:os/main')).toEqual(expected.v2);
    });
  });

  describe('pull options', () => {
    it('--dry-run prints the objects and bytes a pull would fetch and changes nothing', () => {
      const repo = newClient('bare-user');
      log.mark();
      const r = runCli(['pull', '--repo', repo, 'origin', '--dry-run', '--disable-static-deltas', 'os/main']);
      expect(r.exitCode, r.stderr).toBe(0);
      const m = /^would fetch (\d+) objects, .* \((\d+) bytes\)$/m.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      expect(log.since().filter((e) => e.method === 'GET' && e.path.endsWith('.filez'))).toEqual([]);
      expect(listObjectFiles(repo)).toEqual([]);
      expect(refsOf(repo)).toEqual({});
      // The real pull fetches exactly that, plus the commit (which the dry run fetched to read the tree).
      log.mark();
      pull(repo, '--disable-static-deltas', 'os/main');
      const objects = log
        .since()
        .filter((e) => e.method === 'GET' && /\/objects\/.*\.(filez|dirtree|dirmeta)$/.test(e.path));
      expect({ objects: Number(m?.[1]), bytes: Number(m?.[2]) }).toEqual({
        objects: objects.length,
        bytes: objects.reduce((n, e) => n + e.bodyBytes, 0),
      });
    });

    it("--dry-run of a delta pull names the delta's size", () => {
      const repo = newClient('archive');
      const report = pull(repo, '--dry-run', 'os/main');
      const size = deltaFiles(plain.path, plain.v2).reduce(
        (n, f) => n + statSync(join(plain.path, 'deltas', plain.v2, f)).size,
        0,
      );
      expect(report.refs[0]?.method).toBe('delta from scratch');
      expect(report.wouldFetch).toEqual({ objects: 1, bytes: size });
      expect(listObjectFiles(repo)).toEqual([]);
    });

    it('--commit-metadata-only stores the commit (fsck clean) but neither its tree nor the ref', () => {
      const repo = newClient('bare-user');
      log.mark();
      expect(pull(repo, '--commit-metadata-only', 'os/main').refs[0]).toMatchObject({
        commit: plain.v2,
        method: 'metadata only',
        version: '2.0',
      });
      expect(listObjectFiles(repo)).toEqual([`${plain.v2.slice(0, 2)}/${plain.v2.slice(2)}.commit`]);
      expect(refsOf(repo)).toEqual({});
      expect(fsck(repo).exitCode).toBe(0);
      expect(arbor('show', '--repo', repo, plain.v2)).toContain(`Parent:  ${plain.v1}`);
      // A full pull afterwards completes the same commit (fsck checks the ref's tree is whole).
      expect(pull(repo, '--disable-static-deltas', 'os/main').refs[0]).toMatchObject({
        commit: plain.v2,
        method: 'objects',
      });
      expect(fsck(repo).exitCode).toBe(0);
    });

    it('--depth 1 also fetches the parent commit and its whole tree', () => {
      const repo = newClient('archive');
      log.mark();
      pull(repo, '--depth', '1', 'os/main');
      expect(paths(log.since())).toContain(`/plain/${servedObjectPath(plain.v1, 'commit')}`);
      expect(arbor('log', '--repo', repo, 'origin:os/main')).toContain(`commit ${plain.v1}`);
      expect(fsck(repo).exitCode).toBe(0);
      expect(checkout(repo, 'archive', plain.v1)).toEqual(expected.v1);
    });

    it('pulls a full commit id without writing a ref', () => {
      const repo = newClient('bare-user');
      const r = runCli(['pull', '--repo', repo, 'origin', '--disable-static-deltas', plain.v1]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain(`commit: ${plain.v1}`);
      expect(refsOf(repo)).toEqual({});
      expect(fsck(repo).exitCode).toBe(0);
    });

    it('exits 1 naming a ref the remote does not have, and changes nothing', () => {
      const repo = newClient('bare-user');
      expectArborError(runCli(['pull', '--repo', repo, 'origin', 'os/absent']), 1, 'E_REF_NOT_FOUND', "'os/absent'");
      expect(listObjectFiles(repo)).toEqual([]);
    });

    it('pull-local copies the named refs, or every ref, under the same names', () => {
      const repo = initRepo(join(tmp.path, 'local'), 'bare-user');
      arbor('pull-local', '--repo', repo, plain.path, 'os/main');
      expect(refsOf(repo)).toEqual({ 'os/main': plain.v2 });
      expect(checkout(repo, 'bare-user', 'os/main')).toEqual(expected.v2);
      arbor('pull-local', '--repo', repo, plain.path);
      expect(refsOf(repo)).toEqual({ 'os/main': plain.v2, 'os/stable': plain.v1 });
      expect(fsck(repo).exitCode).toBe(0);
    });
  });

  describe('remote add, list, show, refs and delete', () => {
    it('manages remotes and lists what a remote offers', () => {
      const repo = initRepo(join(tmp.path, 'remotes'), 'bare-user');
      expectArborError(
        runCli(['remote', 'add', '--repo', repo, 'origin', `${nginx.url}/plain`]),
        2,
        'E_USAGE',
        '--no-sign-verify',
      );
      const key = JSON.parse(arbor('keygen', '--json', '-o', join(tmp.path, 'remotes-key'))) as {
        keyId: string;
        pubFile: string;
      };
      arbor('remote', 'add', '--repo', repo, 'origin', `${nginx.url}/plain`, '--no-sign-verify');
      arbor('remote', 'add', '--repo', repo, 'signed', `${nginx.url}/inline`, `--sign-verify=ed25519=${key.pubFile}`);
      expect(arbor('remote', 'list', '--repo', repo)).toBe('origin\nsigned');
      expect(arbor('remote', 'list', '-u', '--repo', repo)).toBe(
        `origin ${nginx.url}/plain\nsigned ${nginx.url}/inline`,
      );
      expect(arbor('remote', 'show', '--repo', repo, 'origin')).toBe(
        `name: origin\nurl: ${nginx.url}/plain\nsign-verify: no`,
      );
      expect(arbor('remote', 'show', '--repo', repo, 'signed')).toBe(
        `name: signed\nurl: ${nginx.url}/inline\nsign-verify: ed25519\ntrusted key: ${key.keyId}`,
      );
      expect(arbor('remote', 'refs', '--repo', repo, 'origin')).toBe(
        `origin:os/main ${plain.v2}\norigin:os/stable ${plain.v1}`,
      );
      // The inline server's summary is not signed: a remote that requires signatures refuses it.
      expectArborError(runCli(['remote', 'refs', '--repo', repo, 'signed']), 1, 'E_SIGNATURE_MISSING', "'signed'");
      arbor('remote', 'delete', '--repo', repo, 'signed');
      expect(arbor('remote', 'list', '--repo', repo)).toBe('origin');
      expectArborError(runCli(['pull', '--repo', repo, 'signed', 'os/main']), 1, 'E_REMOTE_NOT_FOUND', "'signed'");
    });
  });
});
