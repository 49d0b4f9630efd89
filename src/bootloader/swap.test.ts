// The boot set switch, crashed after every step: on /boot (loader -> loader.N) and on a FAT-style
// ESP (generations of entry files). After any crash systemd-boot must boot the old default or the
// new one, readers must see one complete set, and the next write must finish cleanly.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import { ArborError, present } from '../common/errors.js';
import { type BootEntry, compareBootEntries, parseBlsEntry } from './bls.js';
import { createBootloader } from './bootloader.js';
import {
  type BootSetStep,
  type EspStep,
  currentBootversion,
  entryFileNames,
  espEntriesDir,
  planEspSwitch,
  readBootEntries,
  readBootEntriesEsp,
  readBootEntryFiles,
  writeBootSet,
  writeBootSetEsp,
} from './swap.js';

/** N entries labelled LABEL, default first, with version = N - position (falls along the order). */
function bootSet(label: string, n: number, trial = false): BootEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    title: `${label} ${i}`,
    version: String(n - i),
    sortKey: 'arbor-os',
    linux: `/arbor/os-${label}${i}/vmlinuz`,
    initrd: `/arbor/os-${label}${i}/initramfs.img`,
    options: `root=LABEL=sysroot arbor=/arbor/boot.0/os/${label}${i}/0`,
    ...(trial && i === 0 ? { tries: { left: 3, done: 0 } } : {}),
  }));
}

class Crash extends Error {}
const crashAfter = <S>(n: number) => {
  let seen = 0;
  return (_step: S): void => {
    if (++seen === n) throw new Crash(`crash after step ${n}`);
  };
};

describe('writeBootSet', () => {
  const tmp = useTempDir('arbor-swap-');
  let n = 0;
  const freshBoot = (): string => {
    const boot = join(tmp.path, `boot-${n++}`);
    mkdirSync(boot);
    return boot;
  };
  const grub = createBootloader('grub2', { pathPrefix: '/boot', timeoutSec: 0 });

  it('writes loader.0 and points loader at it on a fresh /boot', () => {
    const boot = freshBoot();
    const entries = bootSet('a', 3, true);
    expect(currentBootversion(boot)).toBeNull();
    expect(writeBootSet(boot, entries, grub)).toBe(0);
    expect(readlinkSync(join(boot, 'loader'))).toBe('loader.0');
    expect(readdirSync(join(boot, 'loader.0/entries')).sort()).toEqual([
      'arbor-os-0.conf',
      'arbor-os-1.conf',
      'arbor-os-2+3.conf',
    ]);
    expect(readFileSync(join(boot, 'loader.0/grub.cfg'), 'utf8')).toContain("menuentry 'a 0'");
    expect(readBootEntries(boot)).toEqual(entries);
    expect(readdirSync(boot).sort()).toEqual(['loader', 'loader.0']);
  });

  it('alternates loader.0 and loader.1, keeping the previous set until the next switch', () => {
    const boot = freshBoot();
    writeBootSet(boot, bootSet('a', 2), grub);
    expect(writeBootSet(boot, bootSet('b', 1), grub, 1)).toBe(1);
    expect(readdirSync(boot).sort()).toEqual(['loader', 'loader.0', 'loader.1']);
    expect(readBootEntries(boot)).toEqual(bootSet('b', 1));
    expect(readBootEntryFiles(join(boot, 'loader.0/entries')).map((f) => f.entry)).toEqual(bootSet('a', 2));
    expect(writeBootSet(boot, bootSet('c', 2), grub, { bootversion: 0 })).toBe(0);
    expect(readBootEntries(boot)).toEqual(bootSet('c', 2));
    expect(readBootEntryFiles(join(boot, 'loader.1/entries')).map((f) => f.entry)).toEqual(bootSet('b', 1));
  });

  it('writes only entries for the BLS-only backend', () => {
    const boot = freshBoot();
    writeBootSet(boot, bootSet('a', 1), createBootloader('none'));
    expect(readdirSync(join(boot, 'loader.0'))).toEqual(['entries']);
  });

  it.each<BootSetStep>(['staged', 'renamed', 'linked', 'switched'])(
    'leaves one complete set after a crash after %s, and the next write finishes',
    (step) => {
      const boot = freshBoot();
      const before = bootSet('old', 2);
      const after = bootSet('new', 3, true);
      writeBootSet(boot, before, grub);
      writeBootSet(boot, bootSet('older', 1), grub);
      writeBootSet(boot, before, grub); // loader -> loader.0, loader.1 holds a stale set
      const crash = (s: BootSetStep): void => {
        if (s === step) throw new Crash(s);
      };
      expect(() => writeBootSet(boot, after, grub, { afterStep: crash })).toThrow(Crash);
      expect(readBootEntries(boot)).toEqual(step === 'switched' ? after : before);
      const grubCfg = readFileSync(join(boot, 'loader/grub.cfg'), 'utf8');
      expect(grubCfg).toContain(step === 'switched' ? "menuentry 'new 0'" : "menuentry 'old 0'");
      // The next change of the boot set starts from what the crash left.
      const next = bootSet('next', 2);
      writeBootSet(boot, next, grub);
      expect(readBootEntries(boot)).toEqual(next);
      expect(readdirSync(boot).sort()).toEqual(['loader', 'loader.0', 'loader.1']);
    },
  );

  it('replaces a half-written staging directory', () => {
    const boot = freshBoot();
    mkdirSync(join(boot, 'loader.0.tmp/entries'), { recursive: true });
    writeFileSync(join(boot, 'loader.0.tmp/entries/arbor-os-7.conf'), 'title torn');
    writeBootSet(boot, bootSet('a', 1), grub);
    expect(readdirSync(join(boot, 'loader.0/entries'))).toEqual(['arbor-os-0.conf']);
  });

  it('refuses a bootversion other than the unused one', () => {
    const boot = freshBoot();
    expect(() => writeBootSet(boot, bootSet('a', 1), grub, 1)).toThrow(
      /internal error: boot set prepared for bootversion 1, but 0/,
    );
    expect(existsSync(join(boot, 'loader'))).toBe(false);
  });

  it('refuses entries that systemd-boot would boot in another order', () => {
    const boot = freshBoot();
    const rising = bootSet('a', 2).map((e, i) => ({ ...e, version: `${i + 1}.0` }));
    expect(() => writeBootSet(boot, rising, grub)).toThrow(
      /internal error: systemd-boot would not boot these entries in the order given/,
    );
    expect(readdirSync(boot)).toEqual([]);
  });

  it('exits 1 when boot/loader is a directory, not a symlink', () => {
    const boot = freshBoot();
    mkdirSync(join(boot, 'loader'));
    expect(() => writeBootSet(boot, bootSet('a', 1), grub)).toThrow(ArborError);
    expect(() => currentBootversion(boot)).toThrow(/is not a symlink to loader.0 or loader.1/);
  });

  /** A /boot whose current set holds one entry, then `plant` run on its entries directory. */
  const plantedBoot = (plant: (entries: string) => void): string => {
    const boot = freshBoot();
    writeBootSet(boot, bootSet('a', 1), grub);
    plant(join(boot, 'loader.0', 'entries'));
    return boot;
  };
  const secret = (): string => {
    const path = join(tmp.path, `secret-${n++}`);
    writeFileSync(path, 'title stolen\nlinux /etc/shadow\n');
    return path;
  };

  it.each([
    ['a symlink to a file elsewhere', (dir: string) => symlinkSync(secret(), join(dir, 'evil.conf')), 'is a symlink'],
    [
      'a fifo (never opened for reading)',
      (dir: string) => execFileSync('mkfifo', [join(dir, 'fifo.conf')]),
      'is a special file',
    ],
    ['a directory', (dir: string) => mkdirSync(join(dir, 'dir.conf')), 'is a directory'],
    [
      'a file over 64 KiB',
      (dir: string) => writeFileSync(join(dir, 'huge.conf'), `title x\nlinux /v\n#${'x'.repeat(65 * 1024)}\n`),
      'is larger than 65536 bytes',
    ],
  ])('refuses an entry that is %s with E_BOOT_ENTRY_MALFORMED, naming it', (_what, plant, problem) => {
    const boot = plantedBoot(plant);
    const read = (): unknown => readBootEntries(boot);
    expect(read).toThrow(expect.objectContaining({ code: 'E_BOOT_ENTRY_MALFORMED', exit: 3 }));
    expect(read).toThrow(new RegExp(`boot entry '.*/loader/entries/\\w+\\.conf' ${problem}`));
  });

  it('refuses an entries directory that is a symlink', () => {
    const elsewhere = join(tmp.path, `elsewhere-${n++}`);
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'x.conf'), 'title x\nlinux /v\n');
    const boot = plantedBoot((dir) => {
      rmSync(dir, { recursive: true });
      symlinkSync(elsewhere, dir);
    });
    expect(() => readBootEntries(boot)).toThrow(/boot entries directory '.*entries' is a symlink/);
  });
});

// --- ESP ---------------------------------------------------------------------------------------

const FOREIGN = 'fedora-6.8.conf';

function espSnapshot(esp: string): string[] {
  return readdirSync(espEntriesDir(esp)).sort();
}

/** The title systemd-boot boots from the visible `*.conf` files (FOREIGN has no sort-key: last). */
function bootedTitle(esp: string): string | undefined {
  const dir = espEntriesDir(esp);
  const candidates = readdirSync(dir)
    .filter((name) => name.endsWith('.conf'))
    .map((fileName) => ({ fileName, ...parseBlsEntry(readFileSync(join(dir, fileName), 'utf8'), fileName) }));
  return candidates.sort(compareBootEntries)[0]?.title;
}

describe('writeBootSetEsp', () => {
  const tmp = useTempDir('arbor-esp-');
  let n = 0;
  /** An ESP holding a foreign entry, then BEFORE written by us (if any). */
  function esp(before: BootEntry[] | null): string {
    const dir = join(tmp.path, `esp-${n++}`);
    mkdirSync(espEntriesDir(dir), { recursive: true });
    writeFileSync(join(espEntriesDir(dir), FOREIGN), 'title Fedora\nlinux /fedora/vmlinuz\n');
    writeFileSync(join(dir, 'loader', 'loader.conf'), 'timeout 0\n');
    if (before) writeBootSetEsp(dir, before);
    return dir;
  }

  it('writes generation 0 beside other entries, then switches to generation 1 and removes 0', () => {
    const dir = esp(null);
    writeBootSetEsp(dir, bootSet('a', 2, true));
    expect(espSnapshot(dir)).toEqual(['arbor-os-g0-0.conf', 'arbor-os-g0-1+3.conf', FOREIGN]);
    expect(readBootEntriesEsp(dir)).toEqual(bootSet('a', 2, true));
    writeBootSetEsp(dir, bootSet('b', 1));
    expect(espSnapshot(dir)).toEqual(['arbor-os-g1-0.conf', FOREIGN]);
    expect(readFileSync(join(dir, 'loader', 'loader.conf'), 'utf8')).toBe('timeout 0\n');
    expect(bootedTitle(dir)).toBe('b 0');
  });

  it('follows systemd-boot renaming a counted entry', () => {
    const dir = esp(bootSet('a', 2, true));
    // systemd-boot counted one boot attempt of the default before this switch.
    const entries = espEntriesDir(dir);
    writeFileSync(join(entries, 'arbor-os-g0-1+2-1.conf'), readFileSync(join(entries, 'arbor-os-g0-1+3.conf')));
    rmSync(join(entries, 'arbor-os-g0-1+3.conf'));
    expect(readBootEntriesEsp(dir)[0]?.tries).toEqual({ left: 2, done: 1 });
    writeBootSetEsp(dir, bootSet('b', 2));
    expect(espSnapshot(dir)).toEqual(['arbor-os-g1-0.conf', 'arbor-os-g1-1.conf', FOREIGN]);
  });

  it('refuses entries whose sort-key does not start with arbor (the files it owns)', () => {
    expect(() =>
      writeBootSetEsp(esp(null), [{ ...present(bootSet('a', 1)[0], 'entry a'), sortKey: 'fedora' }]),
    ).toThrow(/sort-key starting with 'arbor'/);
  });

  it('drops a torn .part file and ignores it when reading', () => {
    const dir = esp(bootSet('a', 2));
    writeFileSync(join(espEntriesDir(dir), 'arbor-os-g1-1.conf.part'), 'title to');
    expect(readBootEntriesEsp(dir)).toEqual(bootSet('a', 2));
    writeBootSetEsp(dir, bootSet('b', 1));
    expect(espSnapshot(dir)).toEqual(['arbor-os-g1-0.conf', FOREIGN]);
  });

  it('plans the switch in the documented order', () => {
    const names = ['arbor-os-g4-0.conf', 'arbor-os-g4-1+1-2.conf', FOREIGN];
    const steps = planEspSwitch(names, bootSet('b', 2));
    const brief = steps.map((s: EspStep) => (s.op === 'rename' ? `rename ${s.from} ${s.to}` : `${s.op} ${s.name}`));
    expect(brief).toEqual([
      'write arbor-os-g5-1.conf.part',
      'rename arbor-os-g5-1.conf.part arbor-os-g5-1.conf.staged',
      'write arbor-os-g5-0.conf.part',
      'rename arbor-os-g5-0.conf.part arbor-os-g5-0.conf.staged',
      'remove arbor-os-g4-0.conf',
      'rename arbor-os-g5-1.conf.staged arbor-os-g5-1.conf',
      'remove arbor-os-g4-1+1-2.conf',
      'rename arbor-os-g5-0.conf.staged arbor-os-g5-0.conf',
    ]);
  });

  // Transitions where the old default sorts before the new one (3 → 2 entries: version 3 > 2),
  // after it (2 → 4), from nothing, and to a trial.
  const transitions: [string, BootEntry[] | null, BootEntry[]][] = [
    ['3 entries to 2 (old default sorts first)', bootSet('old', 3), bootSet('new', 2)],
    ['2 entries to 4 with a trial (new default sorts first)', bootSet('old', 2), bootSet('new', 4, true)],
    ['a trial to 1 entry', bootSet('old', 2, true), bootSet('new', 1)],
    ['nothing to 2 entries', null, bootSet('new', 2)],
    ['2 entries to none', bootSet('old', 2), []],
  ];

  describe.each(transitions)('from %s', (_, before, after) => {
    // Counted from the plan (collection time, no directory yet): `before` was written as generation 0.
    const stepCount = planEspSwitch([FOREIGN, ...entryFileNames(before ?? [], '-g0')], after).length;
    const okTitles = [before?.[0]?.title, after[0]?.title];
    const okSets = [before ?? [], after];
    // Emptying the ESP has no new generation to commit to: it reads as the old set shrinking,
    // default last (still what boots).
    const expectOneSet = (read: BootEntry[]): void => {
      if (after.length === 0 && read.length > 0) expect(read[0]).toEqual(before?.[0]);
      else expect(okSets).toContainEqual(read);
    };
    const expectFinal = (dir: string): void => {
      expect(readBootEntriesEsp(dir)).toEqual(after);
      expect(espSnapshot(dir).filter((name) => name !== FOREIGN)).toHaveLength(after.length);
      expect(espSnapshot(dir).every((name) => name.endsWith('.conf'))).toBe(true);
      expect(bootedTitle(dir)).toBe(after[0]?.title ?? 'Fedora');
    };

    it.each(Array.from({ length: stepCount }, (__, k) => k + 1))(
      'boots the old or the new default after a crash after step %d, and recovers',
      (k) => {
        const dir = esp(before);
        expect(() => writeBootSetEsp(dir, after, { afterStep: crashAfter(k) })).toThrow(Crash);
        // What the firmware would do now: systemd-boot picks one of the two defaults.
        const booted = bootedTitle(dir);
        expect(booted === 'Fedora' ? undefined : booted, espSnapshot(dir).join(' ')).toBeOneOf(okTitles);
        // What arbor reads now: one whole set, never a mix.
        expectOneSet(readBootEntriesEsp(dir));
        writeBootSetEsp(dir, after);
        expectFinal(dir);
      },
    );

    it.each(Array.from({ length: stepCount }, (__, k) => k + 1))(
      'recovers from a crash after step %d even when the recovery crashes too',
      (k) => {
        for (let j = 1; ; j++) {
          const dir = esp(before);
          try {
            writeBootSetEsp(dir, after, { afterStep: crashAfter(k) });
          } catch (error) {
            if (!(error instanceof Crash)) throw error;
          }
          let finished = false;
          try {
            writeBootSetEsp(dir, after, { afterStep: crashAfter(j) });
            finished = true;
          } catch (error) {
            if (!(error instanceof Crash)) throw error;
          }
          const booted = bootedTitle(dir);
          expect(booted === 'Fedora' ? undefined : booted).toBeOneOf(okTitles);
          expectOneSet(readBootEntriesEsp(dir));
          writeBootSetEsp(dir, after);
          expectFinal(dir);
          if (finished) break;
        }
      },
    );
  });

  it('keeps a file system without symlinks: nothing it writes is a link', () => {
    const dir = esp(bootSet('a', 2));
    writeBootSetEsp(dir, bootSet('b', 3, true));
    for (const name of espSnapshot(dir)) expect(lstatSync(join(espEntriesDir(dir), name)).isSymbolicLink()).toBe(false);
  });
});
