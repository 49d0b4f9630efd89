// Postprocessing a composed tree: /etc moves to /usr/etc, state directories become symlinks into
// /var, and /var's directories and symlinks become tmpfiles.d lines that the real systemd-tmpfiles
// turns back into the same directories (modes, owners, link targets); files in /var are reported.
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import { Repo, TreeEditor, checkoutCommit, commitTree, encodeCommit } from '../repo/index.js';
import { VAR_TMPFILES, postprocessTree } from './postprocess.js';

const HAVE_TMPFILES = spawnSync('systemd-tmpfiles', ['--version']).status === 0;

describe('postprocessTree', () => {
  const tmp = useTempDir('arbor-postprocess-');

  function writeTree(tree: string): void {
    const file = (rel: string, text: string): void => {
      mkdirSync(dirname(join(tree, rel)), { recursive: true });
      writeFileSync(join(tree, rel), text);
    };
    file('etc/os-release', 'NAME=Test\n');
    file('etc/app/app.conf', 'x=1\n');
    file('usr/bin/tool', '#!/bin/sh\n');
    file('var/lib/app/state.db', 'state');
    mkdirSync(join(tree, 'var/cache/app'), { recursive: true });
    mkdirSync(join(tree, 'var/spool weird'), { recursive: true });
    chmodSync(join(tree, 'var/lib/app'), 0o700);
    chmodSync(join(tree, 'var/cache/app'), 0o2775);
    symlinkSync('../run', join(tree, 'var/run'));
    file('home/user/.profile', 'PS1=x\n');
    file('opt/app/bin/x', 'x');
    mkdirSync(join(tree, 'srv'));
  }

  it('moves /etc, links state directories into /var, and turns /var into tmpfiles.d lines', async () => {
    const tree = join(tmp.path, 'tree');
    writeTree(tree);
    const repo = Repo.init(join(tmp.path, 'repo'), 'bare-user');
    const committed = await commitTree(repo, {
      branch: 'raw',
      tree: { dir: tree },
      owner: { uid: 0, gid: 0 },
      timestamp: 0,
    });
    const raw = repo.readCommit(committed.checksum);
    const tx = repo.beginTransaction();
    const edit = new TreeEditor(tx, { tree: raw.rootTree, meta: raw.rootMeta });
    const report = postprocessTree(tx, edit);
    const root = edit.write();
    const commit = tx.writeMetadata(
      'commit',
      encodeCommit({
        parent: null,
        timestamp: 0,
        subject: 'pp',
        body: '',
        rootTree: root.tree,
        rootMeta: root.meta,
        metadata: new Map(),
      }),
    );
    tx.commit([{ name: 'pp', checksum: commit }]);
    const co = join(tmp.path, 'co');
    await checkoutCommit(repo, commit, co, { mode: 'copy', userMode: true });
    repo.close();

    expect(readFileSync(join(co, 'usr/etc/os-release'), 'utf8')).toBe('NAME=Test\n');
    expect(readFileSync(join(co, 'usr/etc/app/app.conf'), 'utf8')).toBe('x=1\n');
    expect(lstatSync(join(co, 'etc'), { throwIfNoEntry: false })).toBeUndefined();
    for (const [path, target] of [
      ['home', 'var/home'],
      ['opt', 'var/opt'],
      ['srv', 'var/srv'],
      ['mnt', 'var/mnt'],
      ['root', 'var/roothome'],
    ]) {
      expect(readlinkSync(join(co, path as string))).toBe(target);
    }
    expect(readFileSync(join(co, 'usr/bin/tool'), 'utf8')).toBe('#!/bin/sh\n');
    // /var is left empty; its directories and links are tmpfiles.d lines.
    expect(spawnSync('ls', ['-A', join(co, 'var')], { encoding: 'utf8' }).stdout).toBe('');
    const conf = readFileSync(join(co, VAR_TMPFILES.slice(1)), 'utf8');
    expect(conf).toContain('d /var/lib/app 0700 0 0 - -\n');
    expect(conf).toContain('d /var/cache/app 2775 0 0 - -\n');
    expect(conf).toContain('d "/var/spool weird" 0755 0 0 - -\n');
    expect(conf).toContain('L /var/run - - - - ../run\n');
    expect(conf).toContain('d /var/home/user 0755 0 0 - -\n');
    expect(report.droppedVarFiles.sort()).toEqual([
      '/var/home/user/.profile',
      '/var/lib/app/state.db',
      '/var/opt/app/bin/x',
    ]);
    expect(report.tmpfilesLines).toBe(conf.split('\n').filter((l) => /^[dL] /.test(l)).length);

    if (HAVE_TMPFILES) {
      // The real systemd-tmpfiles recreates the directories and the link from these lines.
      const r = spawnSync('systemd-tmpfiles', ['--create', `--root=${co}`, join(co, VAR_TMPFILES.slice(1))], {
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      expect(lstatSync(join(co, 'var/lib/app')).mode & 0o7777).toBe(0o700);
      expect(lstatSync(join(co, 'var/cache/app')).mode & 0o7777).toBe(0o2775);
      expect(lstatSync(join(co, 'var/spool weird')).isDirectory()).toBe(true);
      expect(readlinkSync(join(co, 'var/run'))).toBe('../run');
    }
  });
});
