// The /etc 3-way merge decided in memory: one row per rule of docs/deploy.md ("/etc merge"),
// properties that hold for any three trees, and config-diff's listing.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  ETC_ROOT,
  type EtcEntry,
  type EtcTree,
  compareEtcPaths,
  describeEtcChange,
  diffEtcTrees,
  mergedEtcTree,
  planEtcMerge,
} from './etc-merge.js';

type Over = Partial<{ mode: number; uid: number; gid: number; xattrs: Record<string, string> }>;
const meta = (o: Over, mode: number) => ({
  mode: o.mode ?? mode,
  uid: o.uid ?? 0,
  gid: o.gid ?? 0,
  xattrs: new Map(Object.entries(o.xattrs ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
});
const F = (digest: string, o: Over = {}): EtcEntry => ({ type: 'file', digest, ...meta(o, 0o644) });
const D = (o: Over = {}): EtcEntry => ({ type: 'dir', ...meta(o, 0o755) });
const L = (target: string, o: Over = {}): EtcEntry => ({ type: 'symlink', target, ...meta(o, 0o777) });
const FIFO = (o: Over = {}): EtcEntry => ({ type: 'other', format: 0o010000, rdev: 0, ...meta(o, 0o644) });
const CHR = (rdev: number, o: Over = {}): EtcEntry => ({ type: 'other', format: 0o020000, rdev, ...meta(o, 0o600) });
/** A tree with a default root directory unless `.` is given. */
const T = (entries: Record<string, EtcEntry>): EtcTree => new Map([[ETC_ROOT, D()], ...Object.entries(entries)]);

// Shared starting points.
const base = T({
  'a.conf': F('a1'),
  'b.conf': F('b1'),
  link: L('a.conf'),
  'd.d': D(),
  'd.d/x.conf': F('x1'),
  'd.d/y.conf': F('y1'),
});
const edit = (tree: EtcTree, changes: Record<string, EtcEntry | null>): EtcTree => {
  const out = new Map(tree);
  for (const [path, entry] of Object.entries(changes)) {
    // Removing or retyping a directory takes what it held along.
    if (!entry || entry.type !== 'dir')
      for (const p of [...out.keys()]) if (p === path || p.startsWith(`${path}/`)) out.delete(p);
    if (entry) out.set(path, entry);
  }
  return out;
};

type Side = 'admin' | 'new';
interface Row {
  title: string;
  old: EtcTree;
  admin: EtcTree;
  fresh: EtcTree;
  /** path → the side whose entry the result has; paths not listed (except `.`, default 'new') are absent. */
  result: Record<string, Side>;
  conflicts?: [path: string, admin: string, defaults: string][];
  deleted?: [path: string, reason: Side | 'defaults'][];
}

/** Every path of `side` under the listed roots, as result expectations. */
const all = (tree: EtcTree, side: Side, except: string[] = []): Record<string, Side> =>
  Object.fromEntries(
    [...tree.keys()].filter((p) => !except.some((e) => p === e || p.startsWith(`${e}/`))).map((p) => [p, side]),
  );

const rows: Row[] = [
  // Files: content, mode, owner, xattrs
  {
    title: 'a file nobody changed follows the new defaults',
    old: base,
    admin: base,
    fresh: base,
    result: all(base, 'new'),
  },
  {
    title: 'an admin-modified file is kept',
    old: base,
    admin: edit(base, { 'a.conf': F('a-admin') }),
    fresh: base,
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
  },
  {
    title: 'a file only the new defaults changed takes the new version',
    old: base,
    admin: base,
    fresh: edit(base, { 'a.conf': F('a2') }),
    result: all(base, 'new'),
  },
  {
    title: 'a file changed differently on both sides keeps the admin version and is reported',
    old: base,
    admin: edit(base, { 'a.conf': F('a-admin') }),
    fresh: edit(base, { 'a.conf': F('a2') }),
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
    conflicts: [['a.conf', 'changed content', 'changed content']],
  },
  {
    title: 'the same change on both sides is no conflict',
    old: base,
    admin: edit(base, { 'a.conf': F('a2', { mode: 0o600 }) }),
    fresh: edit(base, { 'a.conf': F('a2', { mode: 0o600 }) }),
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
  },
  {
    title: 'a mode-only change by the admin is kept',
    old: base,
    admin: edit(base, { 'a.conf': F('a1', { mode: 0o600 }) }),
    fresh: base,
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
  },
  {
    title: 'a mode-only change by the admin against new content keeps the admin entry whole and is reported',
    old: base,
    admin: edit(base, { 'a.conf': F('a1', { mode: 0o600 }) }),
    fresh: edit(base, { 'a.conf': F('a2') }),
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
    conflicts: [['a.conf', 'changed mode', 'changed content']],
  },
  {
    title: 'a mode-only change by the new defaults is taken',
    old: base,
    admin: base,
    fresh: edit(base, { 'a.conf': F('a1', { mode: 0o640 }) }),
    result: all(base, 'new'),
  },
  {
    title: 'an owner-only change by the admin is kept',
    old: base,
    admin: edit(base, { 'a.conf': F('a1', { gid: 42 }) }),
    fresh: base,
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
  },
  {
    title: 'owner changes on both sides conflict',
    old: base,
    admin: edit(base, { 'a.conf': F('a1', { uid: 7 }) }),
    fresh: edit(base, { 'a.conf': F('a1', { uid: 8 }) }),
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
    conflicts: [['a.conf', 'changed owner', 'changed owner']],
  },
  {
    title: 'an xattr-only change by the admin is kept',
    old: base,
    admin: edit(base, { 'a.conf': F('a1', { xattrs: { 'user.note': 'mine' } }) }),
    fresh: base,
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
  },
  {
    title: 'an xattr-only change by the new defaults is taken',
    old: base,
    admin: base,
    fresh: edit(base, { 'a.conf': F('a1', { xattrs: { 'security.capability': 'cap' } }) }),
    result: all(base, 'new'),
  },
  {
    title: 'xattr changes on both sides conflict',
    old: base,
    admin: edit(base, { 'a.conf': F('a1', { xattrs: { 'user.v': '1' } }) }),
    fresh: edit(base, { 'a.conf': F('a1', { xattrs: { 'user.v': '2' } }) }),
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
    conflicts: [['a.conf', 'changed xattrs', 'changed xattrs']],
  },
  // Additions and deletions
  {
    title: 'an admin-added file is kept',
    old: base,
    admin: edit(base, { 'local.conf': F('l') }),
    fresh: base,
    result: { ...all(base, 'new'), 'local.conf': 'admin' },
  },
  {
    title: 'a file the new defaults add appears',
    old: base,
    admin: base,
    fresh: edit(base, { 'new.conf': F('n') }),
    result: all(edit(base, { 'new.conf': F('n') }), 'new'),
  },
  {
    title: 'the same file added on both sides is no conflict',
    old: base,
    admin: edit(base, { 'both.conf': F('same') }),
    fresh: edit(base, { 'both.conf': F('same') }),
    result: { ...all(base, 'new'), 'both.conf': 'admin' },
  },
  {
    title: 'different files added at one path keep the admin one and are reported',
    old: base,
    admin: edit(base, { 'both.conf': F('mine') }),
    fresh: edit(base, { 'both.conf': F('theirs') }),
    result: { ...all(base, 'new'), 'both.conf': 'admin' },
    conflicts: [['both.conf', 'added file', 'added file']],
  },
  {
    title: 'an admin deletion stays deleted',
    old: base,
    admin: edit(base, { 'b.conf': null }),
    fresh: base,
    result: all(base, 'new', ['b.conf']),
    deleted: [['b.conf', 'admin']],
  },
  {
    title: 'an admin deletion stays deleted when the new defaults changed the file, and is reported',
    old: base,
    admin: edit(base, { 'b.conf': null }),
    fresh: edit(base, { 'b.conf': F('b2') }),
    result: all(base, 'new', ['b.conf']),
    conflicts: [['b.conf', 'deleted file', 'changed content']],
    deleted: [['b.conf', 'admin']],
  },
  {
    title: 'a deletion on both sides is no conflict',
    old: base,
    admin: edit(base, { 'b.conf': null }),
    fresh: edit(base, { 'b.conf': null }),
    result: all(base, 'new', ['b.conf']),
  },
  {
    title: 'a file the new defaults remove goes when the admin left it alone',
    old: base,
    admin: base,
    fresh: edit(base, { 'b.conf': null }),
    result: all(base, 'new', ['b.conf']),
    deleted: [['b.conf', 'defaults']],
  },
  {
    title: 'a file the new defaults remove stays when the admin modified it, and is reported',
    old: base,
    admin: edit(base, { 'b.conf': F('b-admin') }),
    fresh: edit(base, { 'b.conf': null }),
    result: { ...all(base, 'new', ['b.conf']), 'b.conf': 'admin' },
    conflicts: [['b.conf', 'changed content', 'deleted file']],
  },
  // Symlinks
  {
    title: 'an admin-retargeted symlink is kept',
    old: base,
    admin: edit(base, { link: L('b.conf') }),
    fresh: base,
    result: { ...all(base, 'new'), link: 'admin' },
  },
  {
    title: 'a symlink the new defaults retarget follows them',
    old: base,
    admin: base,
    fresh: edit(base, { link: L('d.d/x.conf') }),
    result: all(base, 'new'),
  },
  {
    title: 'symlinks retargeted on both sides conflict',
    old: base,
    admin: edit(base, { link: L('b.conf') }),
    fresh: edit(base, { link: L('d.d/x.conf') }),
    result: { ...all(base, 'new'), link: 'admin' },
    conflicts: [['link', 'changed target', 'changed target']],
  },
  // Type changes: file ↔ symlink ↔ directory, on either side
  {
    title: 'an admin file → symlink change is kept',
    old: base,
    admin: edit(base, { 'a.conf': L('b.conf') }),
    fresh: base,
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
  },
  {
    title: 'an admin symlink → file change is kept',
    old: base,
    admin: edit(base, { link: F('real') }),
    fresh: base,
    result: { ...all(base, 'new'), link: 'admin' },
  },
  {
    title: 'a new-defaults file → symlink change is taken',
    old: base,
    admin: base,
    fresh: edit(base, { 'a.conf': L('b.conf') }),
    result: all(base, 'new'),
  },
  {
    title: 'the same file → symlink change on both sides is no conflict',
    old: base,
    admin: edit(base, { 'a.conf': L('b.conf') }),
    fresh: edit(base, { 'a.conf': L('b.conf') }),
    result: { ...all(base, 'new'), 'a.conf': 'admin' },
  },
  {
    title: 'an admin file → directory change is kept with its content',
    old: base,
    admin: edit(base, { 'a.conf': D(), 'a.conf/part': F('p') }),
    fresh: base,
    result: { ...all(base, 'new'), 'a.conf': 'admin', 'a.conf/part': 'admin' },
  },
  {
    title: 'a new-defaults file → directory change is taken with its content',
    old: base,
    admin: base,
    fresh: edit(base, { 'a.conf': D(), 'a.conf/part': F('p') }),
    result: all(edit(base, { 'a.conf': D(), 'a.conf/part': F('p') }), 'new'),
  },
  {
    title: 'an admin file → directory change against new content keeps the directory and is reported',
    old: base,
    admin: edit(base, { 'a.conf': D(), 'a.conf/part': F('p') }),
    fresh: edit(base, { 'a.conf': F('a2') }),
    result: { ...all(base, 'new'), 'a.conf': 'admin', 'a.conf/part': 'admin' },
    conflicts: [['a.conf', 'replaced file with directory', 'changed content']],
  },
  {
    title: 'an admin directory → file change is kept, dropping the unchanged new subtree without a conflict',
    old: base,
    admin: edit(base, { 'd.d': F('flat') }),
    fresh: base,
    result: { ...all(base, 'new', ['d.d']), 'd.d': 'admin' },
    deleted: [
      ['d.d/x.conf', 'admin'],
      ['d.d/y.conf', 'admin'],
    ],
  },
  {
    title: 'an admin directory → file change against changes below it keeps the file and is reported',
    old: base,
    admin: edit(base, { 'd.d': F('flat') }),
    fresh: edit(base, { 'd.d/x.conf': F('x2'), 'd.d/new.conf': F('n') }),
    result: { ...all(base, 'new', ['d.d']), 'd.d': 'admin' },
    conflicts: [['d.d', 'replaced directory with file', 'changed entries below']],
    deleted: [
      ['d.d/new.conf', 'admin'],
      ['d.d/x.conf', 'admin'],
      ['d.d/y.conf', 'admin'],
    ],
  },
  {
    title: 'an admin directory → symlink change is kept',
    old: base,
    admin: edit(base, { 'd.d': L('elsewhere') }),
    fresh: base,
    result: { ...all(base, 'new', ['d.d']), 'd.d': 'admin' },
    deleted: [
      ['d.d/x.conf', 'admin'],
      ['d.d/y.conf', 'admin'],
    ],
  },
  {
    title: 'a new-defaults directory → file change is taken when the admin left the directory alone',
    old: base,
    admin: base,
    fresh: edit(base, { 'd.d': F('flat') }),
    result: all(base, 'new', ['d.d/x.conf', 'd.d/y.conf']),
    deleted: [
      ['d.d/x.conf', 'defaults'],
      ['d.d/y.conf', 'defaults'],
    ],
  },
  {
    title:
      'a new-defaults directory → symlink change keeps the admin directory whole when the admin changed inside it, and is reported',
    old: base,
    admin: edit(base, { 'd.d/x.conf': F('x-admin') }),
    fresh: edit(base, { 'd.d': L('/usr/lib/d.d') }),
    result: { ...all(base, 'new', ['d.d']), 'd.d': 'admin', 'd.d/x.conf': 'admin', 'd.d/y.conf': 'admin' },
    conflicts: [['d.d', 'changed entries below', 'replaced directory with symlink']],
  },
  {
    title: 'a symlink → directory change by the admin against a symlink → file change is reported',
    old: base,
    admin: edit(base, { link: D(), 'link/in': F('i') }),
    fresh: edit(base, { link: F('f') }),
    result: { ...all(base, 'new'), link: 'admin', 'link/in': 'admin' },
    conflicts: [['link', 'replaced symlink with directory', 'replaced symlink with file']],
  },
  {
    title: 'a file → directory change on both sides merges the two directories',
    old: base,
    admin: edit(base, { 'a.conf': D(), 'a.conf/mine': F('m'), 'a.conf/both': F('b1') }),
    fresh: edit(base, { 'a.conf': D(), 'a.conf/theirs': F('t'), 'a.conf/both': F('b2') }),
    result: {
      ...all(base, 'new'),
      'a.conf': 'admin',
      'a.conf/mine': 'admin',
      'a.conf/theirs': 'new',
      'a.conf/both': 'admin',
    },
    conflicts: [['a.conf/both', 'added file', 'added file']],
  },
  // Directories
  {
    title: "an admin directory's mode is kept while new files arrive in it",
    old: base,
    admin: edit(base, { 'd.d': D({ mode: 0o700 }) }),
    fresh: edit(base, { 'd.d/new.conf': F('n') }),
    result: { ...all(edit(base, { 'd.d/new.conf': F('n') }), 'new'), 'd.d': 'admin' },
  },
  {
    title: 'directory metadata changed on both sides conflicts at the directory only',
    old: base,
    admin: edit(base, { 'd.d': D({ mode: 0o700 }) }),
    fresh: edit(base, { 'd.d': D({ uid: 5 }), 'd.d/y.conf': F('y2') }),
    result: { ...all(base, 'new'), 'd.d': 'admin' },
    conflicts: [['d.d', 'changed mode', 'changed owner']],
  },
  {
    title: 'an admin-deleted directory stays deleted',
    old: base,
    admin: edit(base, { 'd.d': null }),
    fresh: base,
    result: all(base, 'new', ['d.d']),
    deleted: [
      ['d.d', 'admin'],
      ['d.d/x.conf', 'admin'],
      ['d.d/y.conf', 'admin'],
    ],
  },
  {
    title: 'an admin-deleted directory stays deleted when the new defaults add to it, and is reported',
    old: base,
    admin: edit(base, { 'd.d': null }),
    fresh: edit(base, { 'd.d/new.conf': F('n') }),
    result: all(base, 'new', ['d.d']),
    conflicts: [['d.d', 'deleted directory', 'changed entries below']],
    deleted: [
      ['d.d', 'admin'],
      ['d.d/new.conf', 'admin'],
      ['d.d/x.conf', 'admin'],
      ['d.d/y.conf', 'admin'],
    ],
  },
  {
    title: 'a directory the new defaults remove goes when the admin left it alone',
    old: base,
    admin: base,
    fresh: edit(base, { 'd.d': null }),
    result: all(base, 'new', ['d.d']),
    deleted: [
      ['d.d', 'defaults'],
      ['d.d/x.conf', 'defaults'],
      ['d.d/y.conf', 'defaults'],
    ],
  },
  {
    title: 'a directory the new defaults remove stays whole when the admin added to it, and is reported',
    old: base,
    admin: edit(base, { 'd.d/local.conf': F('l') }),
    fresh: edit(base, { 'd.d': null }),
    result: {
      ...all(base, 'new', ['d.d']),
      'd.d': 'admin',
      'd.d/local.conf': 'admin',
      'd.d/x.conf': 'admin',
      'd.d/y.conf': 'admin',
    },
    conflicts: [['d.d', 'changed entries below', 'deleted directory']],
  },
  {
    title: 'an admin-added directory is kept with its content',
    old: base,
    admin: edit(base, {
      'my.d': D({ mode: 0o750 }),
      'my.d/1.conf': F('1'),
      'my.d/sub': D(),
      'my.d/sub/2': L('../1.conf'),
    }),
    fresh: base,
    result: {
      ...all(base, 'new'),
      'my.d': 'admin',
      'my.d/1.conf': 'admin',
      'my.d/sub': 'admin',
      'my.d/sub/2': 'admin',
    },
  },
  {
    title: 'a directory added on both sides merges entry by entry',
    old: base,
    admin: edit(base, { 'n.d': D(), 'n.d/1': F('a') }),
    fresh: edit(base, { 'n.d': D({ mode: 0o700 }), 'n.d/2': F('b') }),
    result: { ...all(base, 'new'), 'n.d': 'admin', 'n.d/1': 'admin', 'n.d/2': 'new' },
    conflicts: [['n.d', 'added directory', 'added directory']],
  },
  {
    title: 'a change to the /etc directory itself is kept',
    old: base,
    admin: edit(base, { [ETC_ROOT]: D({ mode: 0o750 }) }),
    fresh: edit(base, { 'c.conf': F('c') }),
    result: { ...all(edit(base, { 'c.conf': F('c') }), 'new'), [ETC_ROOT]: 'admin' },
  },
  // Special files
  {
    title: 'an admin-added fifo is kept',
    old: base,
    admin: edit(base, { pipe: FIFO() }),
    fresh: base,
    result: { ...all(base, 'new'), pipe: 'admin' },
  },
  {
    title: 'a device node renumbered on both sides conflicts',
    old: edit(base, { dev: CHR(0x0103) }),
    admin: edit(base, { dev: CHR(0x0105) }),
    fresh: edit(base, { dev: CHR(0x0107) }),
    result: { ...all(base, 'new'), dev: 'admin' },
    conflicts: [['dev', 'changed device', 'changed device']],
  },
  {
    title: 'a fifo → device node change is a type change',
    old: edit(base, { dev: FIFO() }),
    admin: edit(base, { dev: CHR(1) }),
    fresh: edit(base, { dev: FIFO({ mode: 0o600 }) }),
    result: { ...all(base, 'new'), dev: 'admin' },
    conflicts: [['dev', 'replaced special file with special file', 'changed mode']],
  },
  // Whole trees
  {
    title: 'a first deployment (no old defaults, no admin /etc) copies the new defaults',
    old: new Map(),
    admin: new Map(),
    fresh: base,
    result: all(base, 'new'),
  },
];

describe('planEtcMerge', () => {
  it.each(rows)('$title', ({ old, admin, fresh, result, conflicts = [], deleted }) => {
    const plan = planEtcMerge(old, admin, fresh);
    const expected: Record<string, Side> = { [ETC_ROOT]: 'new', ...result };
    const sides = { admin, new: fresh };
    // Each placed path comes from the expected side, with that side's entry.
    const placed = plan.actions.filter((a) => a.kind !== 'delete');
    expect(Object.fromEntries(placed.map((a) => [a.path, a.kind === 'keep-admin' ? 'admin' : 'new']))).toEqual(
      expected,
    );
    for (const a of placed) expect(a.entry).toBe(sides[expected[a.path] as Side].get(a.path));
    expect(plan.conflicts.map((c) => [c.path, c.admin, c.defaults])).toEqual(conflicts);
    if (deleted) {
      expect(plan.actions.filter((a) => a.kind === 'delete').map((a) => [a.path, a.reason])).toEqual(deleted);
    }
  });

  it('orders actions parents first, by UTF-8 bytes', () => {
    const tree = T({ '-x': F('1'), a: D(), 'a/b': F('2'), 'a-b': F('3'), é: F('4') });
    const paths = planEtcMerge(new Map(), new Map(), tree).actions.map((a) => a.path);
    expect(paths).toEqual(['.', '-x', 'a', 'a-b', 'a/b', 'é']);
  });

  it('compares without the xattrs it is told to ignore, and still copies the chosen side with them', () => {
    const old = T({ f: F('1', { xattrs: { 'security.selinux': 'usr_t' } }) });
    const admin = T({ f: F('1', { xattrs: { 'security.selinux': 'etc_t' } }) });
    const fresh = T({ f: F('2', { xattrs: { 'security.selinux': 'usr_t' } }) });
    const plan = planEtcMerge(old, admin, fresh, { ignoreXattrs: ['security.selinux'] });
    expect(plan.conflicts).toEqual([]);
    expect(mergedEtcTree(plan).get('f')).toBe(fresh.get('f'));
    expect(planEtcMerge(old, admin, fresh).conflicts.map((c) => c.admin)).toEqual(['changed xattrs']);
  });

  it('reports structured changes beside the words', () => {
    const plan = planEtcMerge(base, edit(base, { 'a.conf': F('x', { mode: 0o600 }) }), edit(base, { 'a.conf': null }));
    expect(plan.conflicts).toEqual([
      {
        path: 'a.conf',
        admin: 'changed content, mode',
        defaults: 'deleted file',
        adminChange: { kind: 'modified', aspects: ['content', 'mode'] },
        defaultsChange: { kind: 'deleted', type: 'file' },
      },
    ]);
    expect(describeEtcChange({ kind: 'replaced', from: 'dir', to: 'other' })).toBe(
      'replaced directory with special file',
    );
  });

  it('treats a missing admin /etc as the admin having deleted it', () => {
    const plan = planEtcMerge(base, new Map(), edit(base, { 'a.conf': F('a2') }));
    expect(mergedEtcTree(plan).size).toBe(0);
    expect(plan.conflicts.map((c) => [c.path, c.admin, c.defaults])).toEqual([
      ['.', 'deleted directory', 'changed entries below'],
    ]);
  });

  it('rejects a tree with an entry outside any directory (a bug in the caller)', () => {
    expect(() => planEtcMerge(new Map(), new Map(), T({ 'a/b': F('1') }))).toThrow(
      /new defaults \/etc tree has 'a\/b' without its directory/,
    );
    expect(() => planEtcMerge(new Map(), new Map(), T({ '/abs': F('1') }))).toThrow(/bad path/);
  });
});

// Trees over a small set of paths, so the three sides often touch the same ones.
const PATHS = ['a', 'b', 'd', 'd/x', 'd/y', 'd/e', 'd/e/z'];
const entryArb: fc.Arbitrary<EtcEntry | null> = fc.oneof(
  fc.constant(null),
  fc.record({ d: fc.constantFrom('1', '2'), mode: fc.constantFrom(0o644, 0o600) }).map(({ d, mode }) => F(d, { mode })),
  fc.constantFrom(0o755, 0o700).map((mode) => D({ mode })),
  fc.constantFrom('t1', 't2').map((t) => L(t)),
  fc.constantFrom('v1', 'v2').map((v) => F('1', { xattrs: { 'user.v': v } })),
);
const treeArb: fc.Arbitrary<EtcTree> = fc
  .tuple(fc.constantFrom(0o755, 0o700), fc.array(entryArb, { minLength: PATHS.length, maxLength: PATHS.length }))
  .map(([rootMode, entries]) => {
    const out = new Map<string, EtcEntry>([[ETC_ROOT, D({ mode: rootMode })]]);
    PATHS.forEach((path, i) => {
      const entry = entries[i];
      const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ETC_ROOT;
      if (entry && out.get(parent)?.type === 'dir') out.set(path, entry);
    });
    return out;
  });
/** Keeps only entries whose parent directory is kept (in path order, parents first). */
const pruned = (entries: [string, EtcEntry | undefined][]): EtcTree => {
  const out = new Map<string, EtcEntry>();
  for (const [path, entry] of entries) {
    const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ETC_ROOT;
    if (entry && (path === ETC_ROOT || out.get(parent)?.type === 'dir')) out.set(path, entry);
  }
  return out;
};
/** A tree that takes each path from `tree` or from another random tree, so "unchanged" paths are common. */
const variantArb = (tree: EtcTree): fc.Arbitrary<EtcTree> =>
  fc.oneof(
    fc.constant(tree),
    fc
      .tuple(treeArb, fc.array(fc.boolean(), { minLength: PATHS.length + 1, maxLength: PATHS.length + 1 }))
      .map(([other, keep]) => pruned([ETC_ROOT, ...PATHS].map((p, i) => [p, keep[i] ? tree.get(p) : other.get(p)]))),
  );
const threeArb = treeArb.chain((old) => fc.tuple(fc.constant(old), variantArb(old), variantArb(old)));

const asObject = (tree: EtcTree): Record<string, EtcEntry> => Object.fromEntries(tree);

describe('planEtcMerge on any three trees', () => {
  test.prop([threeArb])('gives the new defaults when the admin changed nothing', ([old, , fresh]) => {
    expect(asObject(mergedEtcTree(planEtcMerge(old, old, fresh)))).toEqual(asObject(fresh));
    expect(planEtcMerge(old, old, fresh).conflicts).toEqual([]);
  });
  test.prop([threeArb])("gives the admin's /etc when the defaults did not change", ([old, admin]) => {
    expect(asObject(mergedEtcTree(planEtcMerge(old, admin, old)))).toEqual(asObject(admin));
    expect(planEtcMerge(old, admin, old).conflicts).toEqual([]);
  });
  test.prop([threeArb])('reports nothing when both sides made the same change', ([old, admin]) => {
    const plan = planEtcMerge(old, admin, admin);
    expect(asObject(mergedEtcTree(plan))).toEqual(asObject(admin));
    expect(plan.conflicts).toEqual([]);
  });
  test.prop([threeArb])(
    'builds a well-formed tree from entries of the admin or the new defaults, and merging it again changes nothing',
    ([old, admin, fresh]) => {
      const plan = planEtcMerge(old, admin, fresh);
      const result = mergedEtcTree(plan);
      for (const a of plan.actions) {
        if (a.kind === 'keep-admin') expect(a.entry).toBe(admin.get(a.path));
        if (a.kind === 'take-new') expect(a.entry).toBe(fresh.get(a.path));
        if (a.kind === 'delete') expect(result.has(a.path)).toBe(false);
      }
      // Well formed: planEtcMerge asserts it of its inputs. Next upgrade with unchanged defaults: same /etc.
      expect(asObject(mergedEtcTree(planEtcMerge(fresh, result, fresh)))).toEqual(asObject(result));
      const paths = plan.actions.map((a) => a.path);
      expect([...paths].sort(compareEtcPaths)).toEqual(paths);
    },
  );
  test.prop([threeArb])(
    'reports a conflict only where both sides changed something, keeping the admin side there',
    ([old, admin, fresh]) => {
      const plan = planEtcMerge(old, admin, fresh);
      const result = mergedEtcTree(plan);
      const under = (tree: EtcTree, p: string) =>
        [...tree].filter(([q]) => q === p || p === ETC_ROOT || q.startsWith(`${p}/`));
      for (const c of plan.conflicts) {
        expect(under(admin, c.path)).not.toEqual(under(old, c.path));
        expect(under(fresh, c.path)).not.toEqual(under(old, c.path));
        expect(result.get(c.path)).toBe(admin.get(c.path));
      }
    },
  );
});

describe('diffEtcTrees (config-diff)', () => {
  it('lists added, modified and deleted paths; a directory added, deleted or retyped once', () => {
    const etc = edit(base, {
      'a.conf': F('a-admin'),
      'b.conf': null,
      link: L('b.conf', { uid: 3 }),
      'd.d': F('flat'),
      'new.d': D(),
      'new.d/1': F('1'),
      [ETC_ROOT]: D({ mode: 0o700 }),
      local: F('l'),
    });
    expect(diffEtcTrees(base, etc)).toEqual([
      { path: '.', change: 'modified', details: ['mode'] },
      { path: 'a.conf', change: 'modified', details: ['content'] },
      { path: 'b.conf', change: 'deleted', details: [] },
      { path: 'd.d', change: 'modified', details: ['type'] },
      { path: 'link', change: 'modified', details: ['target', 'owner'] },
      { path: 'local', change: 'added', details: [] },
      { path: 'new.d', change: 'added', details: [] },
    ]);
  });
  it('is empty for an untouched /etc', () => {
    expect(diffEtcTrees(base, base)).toEqual([]);
  });
  it('lists a deleted directory once', () => {
    expect(diffEtcTrees(base, edit(base, { 'd.d': null }))).toEqual([{ path: 'd.d', change: 'deleted', details: [] }]);
  });
});
