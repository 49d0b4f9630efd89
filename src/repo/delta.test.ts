// Static deltas end to end through the API: generate FROM→TO in an archive or bare-user repository,
// pull it into a repository holding only FROM, and check which operation each changed file became
// (docs/format.md §6) and that every rebuilt object verifies.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { useTempDir } from '../../test/support/temp.js';
import { listTree, pseudoRandomBytes } from '../../test/support/tree.js';
import { type Checksum, hashBytes } from '../common/hash.js';
import { checkoutCommit } from './checkout.js';
import { commitTree } from './commit.js';
import { applyDelta } from './delta-apply.js';
import { PATCH_SLACK_BYTES, PATCH_WINDOW_BYTES, ZSTD_DICT_MAGIC } from './delta-window.js';
import { generateDelta } from './delta-generate.js';
import { fsckRepo } from './fsck.js';
import { type DeltaOp, DeltaPartWriter, type PatchWindow, encodeSuperblock, readDeltaPart } from './objects/index.js';
import { pullFromRemote } from './pull.js';
import type { Remote } from './remotes.js';
import { type SigningKey, keyId, signCommitMeta } from './sign.js';
import type { RepoMode } from './config.js';
import { Repo } from './store.js';
import { findDelta, readSuperblock, updateSummary } from './summary.js';
import { filledInBeforeAll } from '../../test/support/filled-later.js';

/** `bytes` with a short ASCII edit written at each offset: what an update does to most files. */
function edited(bytes: Buffer, ...offsets: number[]): Buffer {
  const copy = Buffer.from(bytes);
  for (const at of offsets) copy.write(`edit@${at}`, at);
  return copy;
}

const CONFIG = Buffer.from(
  Array.from({ length: 300 }, (_, i) => `option.${i} = value ${(i * 7919) % 1000}\n`).join(''),
);
const MODULE_A = pseudoRandomBytes(6000, 11);
const MODULE_B = pseudoRandomBytes(7000, 12);
const MODULE_SAME = pseudoRandomBytes(3000, 13);
const LIBFOO = pseudoRandomBytes(10_000, 14);
const TOOL = Buffer.from(`#!/bin/sh\n${'echo tool\n'.repeat(200)}`);
// Starts with zstd's dictionary magic: loaded as a dictionary it would be parsed, not used raw.
const MAGIC = Buffer.concat([ZSTD_DICT_MAGIC, pseudoRandomBytes(4000, 15)]);

/** Relative path → [content, mode] of each version. */
const V1: Record<string, [Buffer, number]> = {
  'etc/config.txt': [CONFIG, 0o644],
  'etc/unchanged.txt': [Buffer.from('same in both\n'), 0o644],
  'lib/modules/6.1.0-13/kernel/a.ko': [MODULE_A, 0o644],
  'lib/modules/6.1.0-13/kernel/b.ko': [MODULE_B, 0o644],
  'lib/modules/6.1.0-13/kernel/same.ko': [MODULE_SAME, 0o644],
  'usr/lib/libfoo-1.2.so': [LIBFOO, 0o755],
  'bin/tool': [TOOL, 0o644],
  'data/magic.bin': [MAGIC, 0o644],
};
const V2: Record<string, [Buffer, number]> = {
  'etc/config.txt': [edited(CONFIG, 100, 5000), 0o644], // modified in place → patch
  'etc/unchanged.txt': [Buffer.from('same in both\n'), 0o644], // same object → nothing
  'etc/added.conf': [Buffer.from('new in v2\n'), 0o600], // → new
  'lib/modules/6.1.0-14/kernel/a.ko': [edited(MODULE_A, 10, 3000), 0o644], // renamed dir → patch against the gone path
  'lib/modules/6.1.0-14/kernel/b.ko': [edited(MODULE_B, 6000), 0o644],
  'lib/modules/6.1.0-14/kernel/same.ko': [MODULE_SAME, 0o644], // same object at a new path → nothing
  'usr/lib/libfoo-1.3.so': [edited(LIBFOO, 42, 9000), 0o755], // versioned name → patch by stem
  'bin/tool': [TOOL, 0o755], // mode only → copy
  'data/magic.bin': [edited(MAGIC, 2000), 0o644], // its source cannot be a dictionary → new
};

function writeTree(root: string, files: Record<string, [Buffer, number]>): void {
  for (const [rel, [content, mode]] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), content);
    chmodSync(join(root, rel), mode);
  }
}

/** Path ('/etc/config.txt') → file checksum of a commit, from its dirtrees. */
function filesOf(repo: Repo, commit: Checksum): Map<string, Checksum> {
  const out = new Map<string, Checksum>();
  const walk = (tree: Checksum, prefix: string): void => {
    const dir = repo.readDirTree(tree);
    for (const f of dir.files) out.set(`${prefix}${f.name}`, f.checksum);
    for (const d of dir.dirs) walk(d.tree, `${prefix}${d.name}/`);
  };
  walk(repo.readCommit(commit).rootTree, '/');
  return out;
}

/** Dirtrees and dirmetas of a commit. */
function metaObjectsOf(repo: Repo, commit: Checksum): Set<Checksum> {
  const out = new Set<Checksum>();
  const walk = (tree: Checksum, meta: Checksum): void => {
    out.add(tree).add(meta);
    for (const d of repo.readDirTree(tree).dirs) walk(d.tree, d.meta);
  };
  const c = repo.readCommit(commit);
  walk(c.rootTree, c.rootMeta);
  return out;
}

/** Applies the delta stored in `dir` (generated in another repository) to `target`, aborting its transaction. */
async function applyStoredDelta(target: Repo, dir: string, to: Checksum): Promise<void> {
  const tx = target.beginTransaction();
  try {
    await applyDelta(tx, {
      expectedSuperblock: null,
      where: dir,
      superblock: async () => readFileSync(join(dir, 'superblock')),
      part: async (i) => readFileSync(join(dir, String(i))),
      partWhere: (i) => join(dir, String(i)),
      trustedKeys: null,
      what: `commit ${to}`,
    });
  } finally {
    tx.abort();
  }
}

/** Every operation of a stored delta, decoded from its (inline or separate) parts. */
function deltaOps(repo: Repo, from: Checksum, to: Checksum): DeltaOp[] {
  const entry = findDelta(repo, `${from}-${to}`);
  const { superblock } = readSuperblock(entry);
  return superblock.parts.flatMap((p, i) => [
    ...readDeltaPart(zstdDecompress(p.inline ?? readFileSync(join(entry.dir, String(i))))),
  ]);
}

const countOps = (ops: readonly DeltaOp[]): Record<DeltaOp['op'], number> => {
  const counts = { meta: 0, new: 0, copy: 0, patch: 0 };
  for (const op of ops) counts[op.op]++;
  return counts;
};

function signingKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: publicKey.export({ format: 'der', type: 'spki' }).subarray(12) };
}

describe('static delta round trip', () => {
  const tmp = useTempDir('arbor-delta-');
  const trees = { v1: '', v2: '' };
  beforeAll(() => {
    trees.v1 = join(tmp.path, 'v1');
    trees.v2 = join(tmp.path, 'v2');
    writeTree(trees.v1, V1);
    writeTree(trees.v2, V2);
  });

  describe.each<[RepoMode, RepoMode, boolean]>([
    ['archive', 'bare-user', false],
    ['bare-user', 'archive', false],
    ['archive', 'archive', true],
    ['bare-user', 'bare-user', true],
  ])('from a %s repository into a %s one (inline parts: %s)', (sourceMode, targetMode, inline) => {
    const key = signingKey();
    const state = filledInBeforeAll<{
      source: Repo;
      target: Repo;
      remote: Remote;
      v1: Checksum;
      v2: Checksum;
      method: string;
      signedBy: string | null;
    }>();

    beforeAll(async () => {
      const dir = join(tmp.path, `${sourceMode}-${targetMode}-${inline}`);
      const source = Repo.init(join(dir, 'source'), sourceMode);
      const target = Repo.init(join(dir, 'target'), targetMode);
      const remote: Remote = { name: 'origin', url: source.path, keys: [key.publicKey], signVerify: true };
      const v1 = (
        await commitTree(source, { branch: 'os/main', parent: null, timestamp: 1700000000, tree: { dir: trees.v1 } })
      ).checksum;
      source.writeCommitMeta(v1, signCommitMeta(new Map(), v1, key));
      updateSummary(source, [key]);
      // The target gets v1 object by object: it then holds exactly FROM.
      await pullFromRemote(target, remote, { refs: ['os/main'], refPrefix: '', disableStaticDeltas: true });
      const v2 = (await commitTree(source, { branch: 'os/main', timestamp: 1700086400, tree: { dir: trees.v2 } }))
        .checksum;
      source.writeCommitMeta(v2, signCommitMeta(new Map(), v2, key));
      await generateDelta(source, { from: v1, to: v2, inline });
      updateSummary(source, [key]);
      const report = await pullFromRemote(target, remote, { refs: ['os/main'], refPrefix: '' });
      const pulled = report.refs[0];
      Object.assign(state, { source, target, remote, v1, v2, method: pulled?.method, signedBy: pulled?.signedBy });
      return () => {
        source.close();
        target.close();
      };
    });

    it('pulls v2 with the delta from v1, checking its signature', () => {
      expect(state.method).toBe(`delta from ${state.v1.slice(0, 12)}`);
      expect(state.signedBy).toBe(keyId(key.publicKey));
      expect(state.target.db.getRef('os/main')).toBe(state.v2);
      expect(state.target.db.isPartial(state.v2)).toBe(false);
    });

    it('leaves the target complete: every file of v2 verifies and fsck is clean', () => {
      for (const [path, checksum] of filesOf(state.source, state.v2)) {
        expect(state.target.computeFileChecksum(checksum), path).toBe(checksum);
        expect(state.target.loadFile(checksum).content).toEqual(state.source.loadFile(checksum).content);
      }
      expect(fsckRepo(state.target)).toMatchObject({ corrupt: [], missing: [] });
    });

    it('checks out v2 equal to the tree it was committed from', async () => {
      const dest = join(tmp.path, `${sourceMode}-${targetMode}-${inline}`, 'checkout');
      await checkoutCommit(state.target, state.v2, dest, { mode: 'copy' });
      expect(listTree(dest)).toEqual(listTree(trees.v2));
    });

    it('makes one operation per new object: 4 patches, 1 copy, 2 new, and the new dirtrees', () => {
      const ops = deltaOps(state.source, state.v1, state.v2);
      const oldMeta = metaObjectsOf(state.source, state.v1);
      const newMeta = [...metaObjectsOf(state.source, state.v2)].filter((c) => !oldMeta.has(c));
      expect(countOps(ops)).toEqual({ meta: newMeta.length, new: 2, copy: 1, patch: 4 });
      expect(new Set(ops.flatMap((o) => (o.op === 'meta' ? [] : [o.checksum])))).toHaveProperty('size', 7);
    });

    it('patches against the same path, the gone path of a renamed directory, and a versioned name by stem', () => {
      const before = filesOf(state.source, state.v1);
      const after = filesOf(state.source, state.v2);
      const sourceOf = new Map(
        deltaOps(state.source, state.v1, state.v2).flatMap((o) =>
          o.op === 'patch' || o.op === 'copy' ? [[o.checksum, [o.op, o.source] as const]] : [],
        ),
      );
      expect(sourceOf.get(after.get('/etc/config.txt') as Checksum)).toEqual(['patch', before.get('/etc/config.txt')]);
      expect(sourceOf.get(after.get('/lib/modules/6.1.0-14/kernel/a.ko') as Checksum)).toEqual([
        'patch',
        before.get('/lib/modules/6.1.0-13/kernel/a.ko'),
      ]);
      expect(sourceOf.get(after.get('/lib/modules/6.1.0-14/kernel/b.ko') as Checksum)).toEqual([
        'patch',
        before.get('/lib/modules/6.1.0-13/kernel/b.ko'),
      ]);
      expect(sourceOf.get(after.get('/usr/lib/libfoo-1.3.so') as Checksum)).toEqual([
        'patch',
        before.get('/usr/lib/libfoo-1.2.so'),
      ]);
      expect(sourceOf.get(after.get('/bin/tool') as Checksum)).toEqual(['copy', before.get('/bin/tool')]);
    });

    it('sends a file whose old version starts with the zstd dictionary magic as new content', () => {
      const ops = deltaOps(state.source, state.v1, state.v2);
      const oldMagic = filesOf(state.source, state.v1).get('/data/magic.bin');
      const newMagic = filesOf(state.source, state.v2).get('/data/magic.bin');
      expect(ops.find((o) => o.op !== 'meta' && o.checksum === newMagic)?.op).toBe('new');
      expect(ops.some((o) => (o.op === 'patch' || o.op === 'copy') && o.source === oldMagic)).toBe(false);
      expect(state.target.loadFile(newMagic as Checksum).content.subarray(0, 4)).toEqual(ZSTD_DICT_MAGIC);
    });
  });
});

describe('static delta from scratch', () => {
  const tmp = useTempDir('arbor-delta-scratch-');

  it('rebuilds a whole commit in an empty repository from new content alone', async () => {
    writeTree(join(tmp.path, 'tree'), V2);
    const source = Repo.init(join(tmp.path, 'source'), 'archive');
    const target = Repo.init(join(tmp.path, 'target'), 'bare-user');
    try {
      const commit = (
        await commitTree(source, {
          branch: 'os/main',
          parent: null,
          timestamp: 1700000000,
          tree: { dir: join(tmp.path, 'tree') },
        })
      ).checksum;
      const generated = await generateDelta(source, { from: null, to: commit });
      updateSummary(source);
      const report = await pullFromRemote(
        target,
        { name: 'origin', url: source.path, keys: [], signVerify: false },
        { refs: ['os/main'], refPrefix: '' },
      );
      expect(report.refs[0]?.method).toBe('delta from scratch');
      // The same content at two paths (none here) would be one op; every file object is new.
      expect(generated.ops).toMatchObject({ copy: 0, patch: 0, new: filesOf(source, commit).size });
      expect(fsckRepo(target)).toMatchObject({ corrupt: [], missing: [] });
      expect(target.db.getRef('os/main')).toBe(commit);
    } finally {
      source.close();
      target.close();
    }
  });

  it('refuses a delta whose FROM commit the repository lacks', async () => {
    writeTree(join(tmp.path, 'a'), V1);
    writeTree(join(tmp.path, 'b'), V2);
    const source = Repo.init(join(tmp.path, 'source2'), 'archive');
    const target = Repo.init(join(tmp.path, 'target2'), 'archive');
    try {
      const v1 = (
        await commitTree(source, { branch: 'os/main', parent: null, timestamp: 1, tree: { dir: join(tmp.path, 'a') } })
      ).checksum;
      const v2 = (await commitTree(source, { branch: 'os/main', timestamp: 2, tree: { dir: join(tmp.path, 'b') } }))
        .checksum;
      const { dir } = await generateDelta(source, { from: v1, to: v2 });
      await expect(applyStoredDelta(target, dir, v2)).rejects.toMatchObject({ code: 'E_DELTA_FROM_MISSING' });
      expect(target.hasObject(v2, 'commit')).toBe(false);
    } finally {
      source.close();
      target.close();
    }
  });

  it.each<RepoMode>(['archive', 'bare-user'])(
    'refuses a delta that leaves a file of the new commit missing from a %s repository, naming it',
    async (mode) => {
      const root = join(tmp.path, `incomplete-${mode}`);
      writeTree(join(root, 'a'), V1);
      writeTree(join(root, 'b'), V2);
      const source = Repo.init(join(root, 'source'), 'archive');
      const target = Repo.init(join(root, 'target'), mode);
      try {
        const v1 = (
          await commitTree(source, { branch: 'os/main', parent: null, timestamp: 1, tree: { dir: join(root, 'a') } })
        ).checksum;
        updateSummary(source, []);
        const remote: Remote = { name: 'origin', url: source.path, keys: [], signVerify: false };
        await pullFromRemote(target, remote, { refs: ['os/main'], refPrefix: '', disableStaticDeltas: true });
        const v2 = (await commitTree(source, { branch: 'os/main', timestamp: 2, tree: { dir: join(root, 'b') } }))
          .checksum;
        const { dir } = await generateDelta(source, { from: v1, to: v2 });
        // A file v2 shares with v1, so the delta carries nothing of it: the target must have it.
        const unchanged = filesOf(source, v2).get('/etc/unchanged.txt') as Checksum;
        rmSync(target.objectPath(unchanged, 'file'));
        await expect(applyStoredDelta(target, dir, v2)).rejects.toMatchObject({
          code: 'E_DELTA_INCOMPLETE',
          message: expect.stringContaining(
            `leaves 1 objects of the new commit missing, first file ${unchanged} (unchanged.txt)`,
          ),
        });
        expect(target.hasObject(v2, 'commit')).toBe(false);
      } finally {
        source.close();
        target.close();
      }
    },
  );
});

describe('windowed patches of a file larger than one window', () => {
  const tmp = useTempDir('arbor-delta-window-');
  const MiB = 1024 * 1024;
  const OLD = pseudoRandomBytes(20 * MiB, 21);
  // Edits in the first window (its source range starts at the file's start), the middle, and the
  // last window (its range ends at the file's end), and 4 KiB appended.
  const NEW = Buffer.concat([edited(OLD, 100, 10 * MiB, 20 * MiB - 50), pseudoRandomBytes(4096, 22)]);
  const state = filledInBeforeAll<{ source: Repo; v1: Checksum; v2: Checksum; dir: string; big: Checksum }>();

  /** v1 and v2 committed into `repo`, in order. */
  const commitVersions = async (repo: Repo): Promise<[Checksum, Checksum]> => {
    const commit = async (tree: string, timestamp: number): Promise<Checksum> =>
      (await commitTree(repo, { branch: 'os/main', timestamp, tree: { dir: join(tmp.path, tree) } })).checksum;
    return [await commit('v1', 1), await commit('v2', 2)];
  };

  beforeAll(async () => {
    // big-same.so only changes mode: read as streams too, it must still become a copy.
    writeTree(join(tmp.path, 'v1'), { 'usr/lib/big.so': [OLD, 0o755], 'usr/lib/big-same.so': [OLD, 0o755] });
    writeTree(join(tmp.path, 'v2'), { 'usr/lib/big.so': [NEW, 0o755], 'usr/lib/big-same.so': [OLD, 0o644] });
    const source = Repo.init(join(tmp.path, 'source'), 'archive');
    const [v1, v2] = await commitVersions(source);
    const { dir } = await generateDelta(source, { from: v1, to: v2 });
    const big = filesOf(source, v2).get('/usr/lib/big.so') as Checksum;
    Object.assign(state, { source, v1, v2, dir, big });
    return () => source.close();
  });

  const patchOp = (): DeltaOp & { op: 'patch' } => {
    const op = deltaOps(state.source, state.v1, state.v2).find((o) => o.op === 'patch');
    if (op?.op !== 'patch') throw new Error('no patch op');
    return op;
  };

  /** A target holding v1, pulled object by object. */
  const targetWithV1 = async (name: string, mode: RepoMode): Promise<Repo> => {
    const target = Repo.init(join(tmp.path, name), mode);
    const remote: Remote = { name: 'origin', url: state.source.path, keys: [], signVerify: false };
    state.source.db.updateRefs([{ name: 'os/main', checksum: state.v1 }], 1);
    updateSummary(state.source);
    await pullFromRemote(target, remote, { refs: ['os/main'], refPrefix: '', disableStaticDeltas: true });
    return target;
  };

  /** Applies the delta with its patch op replaced by `tamper(op)`, re-encoding part and superblock. */
  const applyTampered = async (target: Repo, tamper: (op: DeltaOp & { op: 'patch' }) => DeltaOp): Promise<void> => {
    const { superblock } = readSuperblock(findDelta(state.source, `${state.v1}-${state.v2}`));
    const parts = superblock.parts.map((p, i) => {
      const body = zstdDecompress(p.inline ?? readFileSync(join(state.dir, String(i))));
      const writer = new DeltaPartWriter();
      for (const op of readDeltaPart(body)) writer.add(op.op === 'patch' ? tamper(op) : op);
      const newBody = writer.finish();
      const stored = zstdCompress(newBody);
      return {
        info: { ...p, checksum: hashBytes(stored), size: stored.length, uncompressedSize: newBody.length },
        stored,
      };
    });
    const sb = encodeSuperblock({ ...superblock, parts: parts.map((p) => p.info) });
    const tx = target.beginTransaction();
    try {
      await applyDelta(tx, {
        expectedSuperblock: null,
        where: 'tampered',
        superblock: async () => sb,
        part: async (i) => parts[i]?.stored ?? Buffer.alloc(0),
        partWhere: (i) => `tampered/${i}`,
        trustedKeys: null,
        what: `commit ${state.v2}`,
      });
      tx.commit();
    } catch (error) {
      tx.abort();
      throw error;
    }
  };

  it('cuts the patch into windows within the bounds, the first from the old start and the last to its end', () => {
    const { windows } = patchOp();
    expect(windows.map((w) => w.outputSize)).toEqual([...Array<number>(5).fill(4 * MiB), 4096]);
    expect(windows[0]?.sourceOffset).toBe(0);
    const last = windows.at(-1);
    expect((last?.sourceOffset ?? 0) + (last?.sourceSize ?? 0)).toBe(OLD.length);
    for (const w of windows) expect(w.sourceSize).toBeLessThanOrEqual(PATCH_WINDOW_BYTES + 2 * PATCH_SLACK_BYTES);
    // Windows 1 and 3 hold no edit: each is patched against its own old bytes alone.
    for (const i of [1, 3]) expect(windows[i]).toMatchObject({ sourceOffset: i * 4 * MiB, sourceSize: 4 * MiB });
    // Random content only matches its old version: the patch is the edits and the appended tail.
    expect(windows.reduce((n, w) => n + w.frame.length, 0)).toBeLessThan(64 * 1024);
  });

  it('copies a big file whose content did not change', () => {
    expect(countOps(deltaOps(state.source, state.v1, state.v2))).toMatchObject({ new: 0, copy: 1, patch: 1 });
  });

  it('generates the same operations from a bare-user repository, whose objects are read in place', async () => {
    const source = Repo.init(join(tmp.path, 'source-bare-user'), 'bare-user');
    try {
      const [v1, v2] = await commitVersions(source);
      expect([v1, v2]).toEqual([state.v1, state.v2]);
      await generateDelta(source, { from: v1, to: v2 });
      expect(deltaOps(source, v1, v2)).toEqual(deltaOps(state.source, state.v1, state.v2));
    } finally {
      source.close();
    }
  });

  it('refuses to generate a delta from a big source object that does not hash to its name', async () => {
    const source = Repo.init(join(tmp.path, 'source-corrupt'), 'bare-user');
    try {
      const [v1, v2] = await commitVersions(source);
      const old = filesOf(source, v1).get('/usr/lib/big.so') as Checksum;
      // Its last byte: in no window's range but the last, and found because every byte is hashed.
      const path = source.objectPath(old, 'file');
      const bytes = readFileSync(path);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
      writeFileSync(path, bytes, { flag: 'r+' });
      await expect(generateDelta(source, { from: v1, to: v2 })).rejects.toMatchObject({
        code: 'E_OBJECT_CORRUPT',
        message: expect.stringContaining(`file ${old} is corrupt`),
      });
    } finally {
      source.close();
    }
  });

  it.each<RepoMode>(['bare-user', 'archive'])('rebuilds the file in a %s repository holding v1', async (mode) => {
    const target = await targetWithV1(`target-${mode}`, mode);
    try {
      await applyTampered(target, (op) => op);
      expect(target.loadFile(state.big).content.equals(NEW)).toBe(true);
      expect(fsckRepo(target)).toMatchObject({ corrupt: [], missing: [] });
    } finally {
      target.close();
    }
  });

  it('refuses a corrupt window naming it, and stores nothing of the file', async () => {
    const target = await targetWithV1('target-corrupt', 'bare-user');
    try {
      const corrupt = (op: DeltaOp & { op: 'patch' }): DeltaOp => ({
        ...op,
        windows: op.windows.map((w, i) => {
          if (i !== 1) return w;
          const frame = Buffer.from(w.frame);
          frame[frame.length - 8] = (frame[frame.length - 8] ?? 0) ^ 0xff;
          return { ...w, frame };
        }),
      });
      await expect(applyTampered(target, corrupt)).rejects.toMatchObject({
        code: 'E_PULL_CORRUPT',
        message: expect.stringMatching(new RegExp(`file ${state.big} .*(patch window 1|hashing to)`)),
      });
      expect(target.hasObject(state.big, 'file')).toBe(false);
    } finally {
      target.close();
    }
  });

  it.each<[string, (ws: readonly PatchWindow[]) => PatchWindow[], string]>([
    [
      'reads past the end of its source',
      (ws) => ws.map((w, i) => (i === 2 ? { ...w, sourceOffset: OLD.length } : w)),
      'which holds 20971520',
    ],
    [
      'declares another size than its window',
      (ws) => ws.map((w, i) => ({ ...w, outputSize: w.outputSize + (i === 1 ? -1 : i === 2 ? 1 : 0) })),
      `declares ${PATCH_WINDOW_BYTES} bytes, not the ${PATCH_WINDOW_BYTES - 1} its window says`,
    ],
    ['rebuilds less than the header says', (ws) => ws.slice(0, 2), 'the header says'],
  ])('refuses a window that %s', async (what, change, problem) => {
    const target = await targetWithV1(`target-${what.replace(/\W+/g, '-')}`, 'bare-user');
    try {
      await expect(applyTampered(target, (op) => ({ ...op, windows: change(op.windows) }))).rejects.toThrow(problem);
      expect(target.hasObject(state.big, 'file')).toBe(false);
    } finally {
      target.close();
    }
  });

  it('refuses a delta of format version 1 as such, with a hint', async () => {
    const target = await targetWithV1('target-version', 'bare-user');
    const entry = findDelta(state.source, `${state.v1}-${state.v2}`);
    const sb = readFileSync(join(entry.dir, 'superblock'));
    sb[1] = 1;
    const tx = target.beginTransaction();
    try {
      await expect(
        applyDelta(tx, {
          expectedSuperblock: null,
          where: 'old-delta',
          superblock: async () => sb,
          part: async (i) => readFileSync(join(entry.dir, String(i))),
          partWhere: (i) => `old-delta/${i}`,
          trustedKeys: null,
          what: `commit ${state.v2}`,
        }),
      ).rejects.toMatchObject({ code: 'E_DELTA_VERSION', message: expect.stringContaining('format version 1') });
    } finally {
      tx.abort();
      target.close();
    }
  });
});
