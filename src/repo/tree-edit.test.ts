// TreeEditor: edits by object ids; untouched subtrees keep their ids, and a round trip that
// changes nothing gives back the same root.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import { commitTree } from './commit.js';
import { Repo } from './store.js';
import { DEFAULT_DIR_META, TreeEditor } from './tree-edit.js';
import { decodeDirMeta } from './objects/index.js';
import type { Checksum } from '../common/hash.js';

describe('TreeEditor', () => {
  const tmp = useTempDir('arbor-tree-edit-');

  async function setup(): Promise<{ repo: Repo; root: { tree: Checksum; meta: Checksum } }> {
    const tree = join(tmp.path, `tree-${Math.random().toString(36).slice(2)}`);
    for (const rel of ['a/b/c.txt', 'a/d.txt', 'x/y/z.txt']) {
      mkdirSync(join(tree, rel, '..'), { recursive: true });
      writeFileSync(join(tree, rel), rel);
    }
    const repo = Repo.init(join(tmp.path, `repo-${Math.random().toString(36).slice(2)}`), 'bare-user');
    const { checksum } = await commitTree(repo, { branch: 'b', tree: { dir: tree }, timestamp: 0 });
    const c = repo.readCommit(checksum);
    return { repo, root: { tree: c.rootTree, meta: c.rootMeta } };
  }

  it('writes back the same root when nothing changed, and reads entries', async () => {
    const { repo, root } = await setup();
    const tx = repo.beginTransaction();
    const edit = new TreeEditor(tx, root);
    expect(edit.get('/a/b/c.txt')?.kind).toBe('file');
    expect(edit.get('/a/b')?.kind).toBe('dir');
    expect(edit.get('/nope')).toBeUndefined();
    expect(edit.list('/a')).toEqual({ files: ['d.txt'], dirs: ['b'] });
    expect(edit.write()).toEqual(root);
    tx.abort();
    repo.close();
  });

  it('moves a subtree by id, keeps untouched subtrees, makes missing parents root-owned 0755', async () => {
    const { repo, root } = await setup();
    const tx = repo.beginTransaction();
    const edit = new TreeEditor(tx, root);
    const before = edit.get('/a');
    const untouched = edit.get('/x');
    edit.move('/a', '/new/parent/a');
    expect(edit.get('/a')).toBeUndefined();
    expect(edit.get('/new/parent/a')).toEqual(before);
    expect(edit.get('/x')).toEqual(untouched);
    const parent = edit.get('/new/parent');
    expect(parent?.kind === 'dir' && decodeDirMeta(tx.readStagedOrStored(parent.meta, 'dirmeta'))).toEqual(
      DEFAULT_DIR_META,
    );
    const written = edit.write();
    expect(written.tree).not.toBe(root.tree);
    // A fresh editor over the written root sees the same thing.
    const again = new TreeEditor(tx, written);
    expect(again.get('/new/parent/a/b/c.txt')).toEqual(edit.get('/new/parent/a/b/c.txt'));
    expect(() => edit.move('/x', '/new')).toThrow(/exists/);
    expect(() => edit.move('/nope', '/elsewhere')).toThrow(/does not exist/);
    expect(() => edit.set('/a/../etc', { kind: 'dir', ...written })).toThrow(/cannot be a path/);
    tx.abort();
    repo.close();
  });

  it('adds symlinks and files as objects, removes entries', async () => {
    const { repo, root } = await setup();
    const tx = repo.beginTransaction();
    const edit = new TreeEditor(tx, root);
    edit.symlink('/home', 'var/home');
    edit.writeFile('/usr/lib/note', Buffer.from('hi'));
    expect(edit.remove('/x/y/z.txt')?.kind).toBe('file');
    expect(edit.list('/x/y')).toEqual({ files: [], dirs: [] });
    expect(edit.get('/home')?.kind).toBe('file');
    edit.write();
    tx.commit();
    const home = edit.get('/home');
    expect(home?.kind === 'file' && repo.readFileHeader(home.checksum).symlinkTarget).toBe('var/home');
    const note = edit.get('/usr/lib/note');
    expect(note?.kind === 'file' && repo.loadFile(note.checksum).content.toString()).toBe('hi');
    repo.close();
  });
});
