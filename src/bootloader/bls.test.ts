// BLS entry text and file names (golden text, parse/format round trips) and the TypeScript model
// of systemd-boot's order (systemd's own strverscmp_improved table, default-first proofs).
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ArborError, CorruptionError } from '../common/errors.js';
import {
  type BootEntry,
  type BootTries,
  compareBootEntries,
  entryFileName,
  formatBlsEntry,
  parseBlsEntry,
  parseEntryFileName,
  strverscmpImproved,
  systemdBootOrderMismatch,
} from './bls.js';
import { entryFileNames } from './swap.js';

const ENTRY: BootEntry = {
  title: 'Fedora Linux 40 (Forty) 40.20240501.0 (arbor:0)',
  version: '2',
  sortKey: 'arbor-fedora',
  linux: '/arbor/fedora-3f9c/vmlinuz',
  initrd: '/arbor/fedora-3f9c/initramfs.img',
  options: 'root=LABEL=sysroot rw quiet arbor=/arbor/boot.1/fedora/3f9c/0',
};

const ENTRY_TEXT = `title Fedora Linux 40 (Forty) 40.20240501.0 (arbor:0)
version 2
sort-key arbor-fedora
linux /arbor/fedora-3f9c/vmlinuz
initrd /arbor/fedora-3f9c/initramfs.img
options root=LABEL=sysroot rw quiet arbor=/arbor/boot.1/fedora/3f9c/0
`;

// A value as BLS can hold it: one line, no NUL, no leading or trailing space/tab/CR.
const value = fc
  .string({
    unit: fc.oneof(
      fc.constantFrom('a', 'Z', '0', ' ', '\t', '=', '"', '#', 'é', '\u{1F600}', '/', '-'),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
    ),
    minLength: 1,
    maxLength: 12,
  })
  .filter((s) => !/[\n\r\0]/.test(s) && !/^[ \t\r]|[ \t\r]$/.test(s));
const tries: fc.Arbitrary<BootTries> = fc.record({
  left: fc.nat({ max: 2 ** 31 - 1 }),
  done: fc.nat({ max: 2 ** 31 - 1 }),
});
const unknownKey = fc
  .stringMatching(/^[a-z][a-z0-9_-]{0,8}$/)
  .filter(
    (k) => !['title', 'version', 'machine-id', 'sort-key', 'linux', 'initrd', 'devicetree', 'options'].includes(k),
  );
const bootEntry: fc.Arbitrary<BootEntry> = fc.record(
  {
    title: value,
    version: value,
    machineId: value,
    sortKey: value,
    linux: value,
    initrd: value,
    devicetree: value,
    options: fc.oneof(fc.constant(''), value),
    tries,
    extra: fc.array(fc.tuple(unknownKey, value), { minLength: 1, maxLength: 3 }),
  },
  { requiredKeys: ['title', 'linux', 'options'] },
);
const stem = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$/);

describe('formatBlsEntry and parseBlsEntry', () => {
  it('writes the fields in BLS order, one `key value` line each', () => {
    expect(formatBlsEntry(ENTRY)).toBe(ENTRY_TEXT);
    expect(parseBlsEntry(ENTRY_TEXT, 'arbor-fedora-1.conf')).toEqual(ENTRY);
  });

  it('takes the boot counter from the file name, not the text', () => {
    expect(parseBlsEntry(ENTRY_TEXT, 'arbor-fedora-1+2-1.conf')).toEqual({ ...ENTRY, tries: { left: 2, done: 1 } });
    expect(formatBlsEntry({ ...ENTRY, tries: { left: 2, done: 1 } })).toBe(ENTRY_TEXT);
  });

  test.prop([bootEntry, stem, fc.nat({ max: 1000 })])(
    'parses what it formats back to the same entry',
    (entry, s, index) => {
      expect(parseBlsEntry(formatBlsEntry(entry), entryFileName(s, index, entry.tries))).toEqual(entry);
    },
  );

  test.prop([bootEntry])('formats what it parsed to the same text', (entry) => {
    const text = formatBlsEntry(entry);
    expect(formatBlsEntry(parseBlsEntry(text, 'x-0.conf'))).toBe(text);
  });

  it('skips comments and blank lines, trims lines, accepts tabs and CRLF, and keeps unknown keys in order', () => {
    const text =
      '# written by hand\n\n  title\tHand made  \r\nlinux /vmlinuz\narchitecture x64\n#options ignored\ngrub_users $grub_users\noptions  a=1   b\n';
    expect(parseBlsEntry(text, 'hand.conf')).toEqual({
      title: 'Hand made',
      linux: '/vmlinuz',
      options: 'a=1   b',
      extra: [
        ['architecture', 'x64'],
        ['grub_users', '$grub_users'],
      ],
    });
  });

  it.each([
    ['a key without a value', 'title T\nlinux /v\noptions\n', /line 3: 'options' has no value/],
    ['a repeated known key', 'title T\nlinux /v\nlinux /w\n', /line 3: 'linux' appears more than once/],
    [
      'a second initrd (one initramfs per entry)',
      'title T\nlinux /v\ninitrd /a\ninitrd /b\n',
      /'initrd' appears more than once/,
    ],
    ['no title', 'linux /v\n', /no 'title'/],
    ['no linux (type #1 EFI entries are not ours)', 'title T\nefi /x.efi\n', /no 'linux'/],
    ['a key that is not a key', 'title T\nlinux /v\nOpt=ions x\n', /line 3: the key is not lowercase letters/],
    ['a line of another file', 'root:$6$secret:19000::\n', /line 1: not a KEY VALUE line$/],
  ])('rejects %s', (_, text, message) => {
    const parse = (): BootEntry => parseBlsEntry(text, 'bad.conf');
    expect(parse).toThrow(CorruptionError);
    expect(parse).toThrow(message);
    expect(parse).toThrow(/^boot entry 'bad.conf'/);
  });

  it.each<[string, BootEntry]>([
    ['a line break in a value', { ...ENTRY, title: 'two\nlines' }],
    ['leading whitespace in a value', { ...ENTRY, options: ' quiet' }],
    ['an empty version', { ...ENTRY, version: '' }],
    ['a known key among the extra keys', { ...ENTRY, extra: [['linux', '/x']] }],
    ['a counter above INT_MAX', { ...ENTRY, tries: { left: 2 ** 31, done: 0 } }],
  ])('refuses to format %s', (_, entry) => {
    expect(() => formatBlsEntry(entry)).toThrow(ArborError);
  });
});

describe('entryFileName and parseEntryFileName', () => {
  it.each<[string, number, BootTries | undefined, string]>([
    ['arbor-os', 0, undefined, 'arbor-os-0.conf'],
    ['arbor-os', 12, undefined, 'arbor-os-12.conf'],
    ['arbor-os', 1, { left: 3, done: 0 }, 'arbor-os-1+3.conf'],
    ['arbor-os', 1, { left: 2, done: 1 }, 'arbor-os-1+2-1.conf'],
    ['arbor-os', 1, { left: 0, done: 3 }, 'arbor-os-1+0-3.conf'],
    ['arbor-my-os.2', 3, undefined, 'arbor-my-os.2-3.conf'],
  ])('names %s entry %d with tries %o %s', (s, index, t, name) => {
    expect(entryFileName(s, index, t)).toBe(name);
    expect(parseEntryFileName(name)).toEqual(t ? { stem: s, index, tries: t } : { stem: s, index });
  });

  test.prop([stem, fc.nat(), fc.option(tries, { nil: undefined })])(
    'parses every name it makes back to its parts',
    (s, index, t) => {
      const parsed = parseEntryFileName(entryFileName(s, index, t));
      expect(parsed).toEqual(t ? { stem: s, index, tries: t } : { stem: s, index });
    },
  );

  it('reads +3-0 as +3, as systemd-boot does', () => {
    expect(parseEntryFileName('arbor-os-1+3-0.conf')).toEqual({
      stem: 'arbor-os',
      index: 1,
      tries: { left: 3, done: 0 },
    });
  });

  it.each([
    'arbor-os.conf',
    'arbor-os-01.conf',
    'arbor-os-1+03.conf',
    'arbor-os-1+3.conf.staged',
    '-1.conf',
    'arbor os-1.conf',
    'arbor-os-1+2147483648.conf',
  ])('does not claim %s', (name) => {
    expect(parseEntryFileName(name)).toBeNull();
  });

  it.each([
    ['a stem with a slash', 'arbor/os', 0],
    ['a negative index', 'arbor-os', -1],
    ['a fractional index', 'arbor-os', 1.5],
  ])('refuses %s', (_, s, index) => {
    expect(() => entryFileName(s, index)).toThrow(ArborError);
  });
});

describe('strverscmpImproved', () => {
  // systemd's own table (src/test/test-string-util.c, TEST(strverscmp_improved)): each older
  // than every later one.
  const ordered = [
    '~1',
    '',
    'ab',
    'abb',
    'abc',
    '0001',
    '002',
    '12',
    '122',
    '122.9',
    '123~rc1',
    '123',
    '123-a',
    '123-a.1',
    '123-a1',
    '123-a1.1',
    '123-3',
    '123-3.1',
    '123^patch1',
    '123^1',
    '123.a-1',
    '123.1-1',
    '123a-1',
    '124',
  ];
  it('orders systemd test-string-util’s version list', () => {
    for (const [i, older] of ordered.entries()) {
      expect(strverscmpImproved(older, older)).toBe(0);
      for (const newer of ordered.slice(i + 1)) {
        expect([older, newer, strverscmpImproved(older, newer)]).toEqual([older, newer, -1]);
        expect(strverscmpImproved(newer, older)).toBe(1);
      }
    }
  });

  it.each([
    ['123.45-67.88', '123.45-67.89'],
    ['123.45-67.89', '123.45-67.89a'],
    ['123.45-67.ab', '123.45-67.89'],
    ['123.45-67.9', '123.45-67.89'],
    ['123.45-67', '123.45-67.89'],
    ['123.45-9.99', '123.45-67.89'],
    ['123-99.99', '123.45-67.89'],
    ['123~rc1-99.99', '123~rc2-67.89'],
    ['123~rc1-99.99', '123^aa2-67.89'],
    ['123^aa2-67.89', '123aa2-67.89'],
    ['123.aa2-67.89', '123.ab2-67.89'],
    ['5.5p1', '5.5p10'],
    ['10.1xyz', '10xyz'],
    ['xyz.4', '2'],
    ['6.0', '6.0.rc1'],
    ['1.0~rc1~git123', '1.0~rc1'],
    ['1.0^git1', '1.01'],
    ['1.0^20160101^git1', '1.0^20160102'],
    ['1.0^git1~pre', '1.0^git1'],
    ['1.fc17', '1b.fc17'],
    ['2.0', '2_0'],
    ['9', '10'],
    ['arbor-os-9.conf', 'arbor-os-10.conf'],
  ])('puts %s before %s', (older, newer) => {
    expect(strverscmpImproved(older, newer)).toBe(-1);
    expect(strverscmpImproved(newer, older)).toBe(1);
  });

  it.each([
    ['123_aa2-67.89', '123aa+2-67.89'],
    ['', undefined],
    ['0_', '0'],
    ['_0_', '0'],
    ['', '_'],
    ['~', '~'],
    ['10.0001', '10.1'],
    ['a+', 'a_'],
    ['1.1.α', '1.1.ββ'],
    ['1\u0660\u0661', '1'],
  ])('holds %s and %s equal', (a, b) => {
    expect(strverscmpImproved(a, b)).toBe(0);
  });

  it.each([
    ['123.', '123', 1],
    ['12_3', '123', -1],
    ['12_3', '12.3', 1],
    ['123_0', '123', 1],
    ['123..0', '123.0', -1],
    ['~', '', -1],
  ])('compares %s with %s as %d', (a, b, r) => {
    expect(strverscmpImproved(a, b)).toBe(r);
  });
});

/** The file that systemd-boot boots: the first of `names` in its order. */
const firstBooted = (candidates: { fileName: string; sortKey?: string; version?: string }[]): string =>
  [...candidates].sort(compareBootEntries)[0]?.fileName ?? '';

describe('compareBootEntries (systemd-boot 252 order)', () => {
  const entry = (i: number, n: number, extra: Partial<BootEntry> = {}): BootEntry => ({
    title: `d${i}`,
    linux: '/v',
    options: '',
    version: String(n - i),
    ...extra,
  });

  it.each([1, 2, 3, 9, 10, 11, 12, 101])(
    'boots the default first, then the rest in order, for %d entries without sort-key',
    (n) => {
      const entries = Array.from({ length: n }, (_, i) => entry(i, n));
      const names = entryFileNames(entries.map((e) => ({ ...e, sortKey: 'arbor-os' }))); // stem only; sort-key left out below
      const candidates = names.map((fileName) => ({ fileName }));
      expect([...candidates].sort(compareBootEntries).map((c) => c.fileName)).toEqual(names);
    },
  );

  it.each([1, 2, 10, 12])(
    'boots the default first for %d entries with sort-key and version = count - position',
    (n) => {
      const entries = Array.from({ length: n }, (_, i) => entry(i, n, { sortKey: 'arbor-os' }));
      expect(
        systemdBootOrderMismatch(
          entryFileNames(entries).map((fileName, i) => ({ fileName, entry: entries[i] as BootEntry })),
        ),
      ).toBe(-1);
    },
  );

  it('lets a rising version beat the file name when every entry has a sort-key', () => {
    // docs/deploy.md writes the commit's version: after a rollback to 1.0 systemd-boot still boots 2.0.
    const entries = [
      entry(0, 2, { sortKey: 'arbor-os', version: '1.0' }),
      entry(1, 2, { sortKey: 'arbor-os', version: '2.0' }),
    ];
    const files = entryFileNames(entries).map((fileName, i) => ({ fileName, entry: entries[i] as BootEntry }));
    expect(systemdBootOrderMismatch(files)).toBe(0);
    expect(
      firstBooted(
        files.map((f) => ({ fileName: f.fileName, sortKey: 'arbor-os', version: f.entry.version as string })),
      ),
    ).toBe('arbor-os-0.conf');
  });

  it('puts entries with a sort-key before entries without, and sorts sort-keys ascending', () => {
    expect(firstBooted([{ fileName: 'zzz-9.conf' }, { fileName: 'aaa-0.conf', sortKey: 'z' }])).toBe('aaa-0.conf');
    expect(
      firstBooted([
        { fileName: 'a.conf', sortKey: 'b' },
        { fileName: 'b.conf', sortKey: 'a' },
      ]),
    ).toBe('b.conf');
  });

  it.each<[string, string[], string]>([
    ['a fresh trial default', ['arbor-os-1+3.conf', 'arbor-os-0.conf'], 'arbor-os-1+3.conf'],
    ['a trial with tries left', ['arbor-os-0.conf', 'arbor-os-1+1-2.conf'], 'arbor-os-1+1-2.conf'],
    ['an exhausted trial: the previous deployment', ['arbor-os-1+0-3.conf', 'arbor-os-0.conf'], 'arbor-os-0.conf'],
    [
      'an exhausted trial among 12 entries',
      ['arbor-os-11+0-3.conf', ...Array.from({ length: 11 }, (_, i) => `arbor-os-${i}.conf`)],
      'arbor-os-10.conf',
    ],
    ['an exhausted trial when it is the only entry', ['arbor-os-0+0-3.conf'], 'arbor-os-0+0-3.conf'],
  ])('boots %s', (_, names, booted) => {
    expect(firstBooted(names.map((fileName) => ({ fileName })))).toBe(booted);
    expect(firstBooted([...names].reverse().map((fileName) => ({ fileName, sortKey: 'arbor-os', version: '1' })))).toBe(
      booted,
    );
  });

  test.prop([
    fc.integer({ min: 1, max: 40 }),
    fc.array(
      fc.option(fc.record({ left: fc.integer({ min: 1, max: 9 }), done: fc.nat({ max: 9 }) }), { nil: undefined }),
      { maxLength: 40 },
    ),
  ])('boots the default first whatever counters with tries left the entries carry', (n, counters) => {
    const entries = Array.from({ length: n }, (_, i) => entry(i, n, { sortKey: 'arbor-os', tries: counters[i] }));
    const names = entryFileNames(entries);
    const order = names
      .map((fileName, i) => ({ fileName, sortKey: 'arbor-os', version: entries[i]?.version as string }))
      .sort(compareBootEntries);
    expect(order.map((c) => c.fileName)).toEqual(names);
    expect(firstBooted(names.map((fileName) => ({ fileName })))).toBe(names[0]);
  });

  test.prop([fc.integer({ min: 2, max: 30 }), fc.nat()])(
    'sorts an exhausted default last, so the second entry boots',
    (n, seed) => {
      const entries = Array.from({ length: n }, (_, i) =>
        entry(i, n, { sortKey: 'arbor-os', ...(i === 0 ? { tries: { left: 0, done: 1 + (seed % 5) } } : {}) }),
      );
      const names = entryFileNames(entries);
      const order = names.map((fileName) => ({ fileName })).sort(compareBootEntries);
      expect(order.map((c) => c.fileName)).toEqual([...names.slice(1), names[0]]);
    },
  );

  it('parses counters as systemd-boot does: only a last +LEFT[-DONE] right before .conf', () => {
    // '+2x' is no counter, so this entry is not exhausted and its higher name wins.
    expect(firstBooted([{ fileName: 'a-1+0-3x.conf' }, { fileName: 'a-0.conf' }])).toBe('a-1+0-3x.conf');
    expect(firstBooted([{ fileName: 'a-1+9+0.conf' }, { fileName: 'a-0.conf' }])).toBe('a-0.conf');
  });
});
