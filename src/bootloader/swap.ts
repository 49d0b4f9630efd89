// Switching boot sets atomically. On /boot: a complete `loader.N` is built and fsynced, then the
// `loader -> loader.N` symlink is replaced by one rename. On a FAT ESP (no symlinks): entry files
// of a new generation are staged invisibly and switched in by renames ordered so that systemd-boot
// boots the old default or the new one at every instant (docs/deploy.md "Bootloader backends").
import {
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { ArborError, CorruptionError, assert, errnoCode, ioError, present } from '../common/errors.js';
import { fsyncDir } from '../common/fs-atomic.js';
import { readBoundedFile } from '../common/read-bounded.js';
import {
  type BootEntry,
  compareBootEntries,
  entryFileName,
  formatBlsEntry,
  parseBlsEntry,
  parseEntryFileName,
  systemdBootOrderMismatch,
} from './bls.js';
import type { Bootloader } from './bootloader.js';

// --- shared -----------------------------------------------------------------------------------

function io<T>(action: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ArborError) throw error;
    throw ioError(action, path, error);
  }
}

/** Creates or truncates `path` with `text` and fsyncs it before returning. */
function writeDurable(path: string, text: string): void {
  io('write', path, () => {
    const fd = openSync(path, 'w', 0o644);
    try {
      writeSync(fd, Buffer.from(text, 'utf8'));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/** fsync of every file and directory below and including `dir` (the backend wrote some). */
function fsyncTree(dir: string): void {
  for (const entry of io('read directory', dir, () => readdirSync(dir, { withFileTypes: true }))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) fsyncTree(path);
    else if (entry.isFile()) {
      io('fsync', path, () => {
        const fd = openSync(path, 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      });
    }
  }
  io('fsync', dir, () => fsyncDir(dir));
}

const syncedRename = (dir: string, from: string, to: string): void =>
  io('rename', join(dir, from), () => {
    renameSync(join(dir, from), join(dir, to));
    fsyncDir(dir);
  });

/** The stem of an entry's file name: its sort-key (docs/deploy.md: `arbor-STATEROOT`), else `arbor`. */
const stemOf = (entry: BootEntry): string => entry.sortKey ?? 'arbor';

/**
 * File names for `entries` (default first) in one directory: `STEM-I[+LEFT[-DONE]].conf` with
 * STEM the sort-key (else `arbor`) plus `stemSuffix`, and I = count - 1 - position, so the default
 * has the highest file name (docs/deploy.md "Boot entries").
 */
export function entryFileNames(entries: readonly BootEntry[], stemSuffix = ''): string[] {
  return entries.map((entry, i) => entryFileName(`${stemOf(entry)}${stemSuffix}`, entries.length - 1 - i, entry.tries));
}

/**
 * Asserts systemd-boot would order `files` as given: the BLS entries must say the same as the
 * generated configs, whichever bootloader reads them. Fails, for example, for sort-key'd entries
 * whose `version` rises along the list (systemd-boot boots the highest version first).
 */
function assertSystemdBootOrder(files: readonly { fileName: string; entry: BootEntry }[]): void {
  const at = systemdBootOrderMismatch(files);
  assert(
    at < 0,
    `systemd-boot would not boot these entries in the order given (first difference at position ${at}: ` +
      `${files.map((f) => `${f.fileName} version=${f.entry.version ?? '-'}`).join(', ')}); with a sort-key, version must fall along the boot order`,
  );
}

/** Entries of `files` in systemd-boot's order with counters ignored, as writeBootSet wrote them. */
function inBootOrder<T extends { fileName: string; entry: BootEntry }>(files: T[]): T[] {
  const strip = (name: string): string => name.replace(/\+[0-9]+(-[0-9]+)?\.conf$/, '.conf');
  return files.sort((a, b) =>
    compareBootEntries({ ...a.entry, fileName: strip(a.fileName) }, { ...b.entry, fileName: strip(b.fileName) }),
  );
}

// --- /boot: loader -> loader.N ----------------------------------------------------------------

/** The bootversion N that `bootDir/loader` points to (`loader.N`), or null without a `loader`. */
export function currentBootversion(bootDir: string): 0 | 1 | null {
  const link = join(bootDir, 'loader');
  let target: string;
  try {
    if (!lstatSync(link).isSymbolicLink()) {
      throw new ArborError('E_BOOT_LOADER_INVALID', `'${link}' is not a symlink to loader.0 or loader.1`, {
        hint: 'move it away; arbor writes boot/loader as a symlink',
      });
    }
    target = readlinkSync(link);
  } catch (error) {
    if (error instanceof ArborError) throw error;
    if (errnoCode(error) === 'ENOENT') return null;
    throw ioError('read', link, error);
  }
  if (target === 'loader.0') return 0;
  if (target === 'loader.1') return 1;
  throw new CorruptionError('E_BOOT_LOADER_INVALID', `'${link}' points to '${target}', not to loader.0 or loader.1`);
}

/** A BLS entry is a dozen short lines; kernel arguments stay far below this. */
const MAX_ENTRY_BYTES = 64 * 1024;

/**
 * The text of the entry file at `path`: a regular file of at most MAX_ENTRY_BYTES, opened without
 * following a symlink (one planted in /boot or the ESP could make arbor read, and rewrite as a
 * boot entry, any file of the host), else E_BOOT_ENTRY_MALFORMED.
 */
function readEntryText(path: string): string {
  const read = readBoundedFile(path, MAX_ENTRY_BYTES);
  if (read !== null && 'bytes' in read) return read.bytes.toString('utf8');
  throw new CorruptionError(
    'E_BOOT_ENTRY_MALFORMED',
    `boot entry '${path}' ${read === null ? 'vanished while being read' : read.problem}`,
    { hint: 'arbor writes boot entries as regular files: move it away and run the command again' },
  );
}

/** The names in the entries directory `dir`; none without it. A symlink there is not followed. */
function listEntriesDir(dir: string): string[] {
  try {
    if (lstatSync(dir).isSymbolicLink())
      throw new CorruptionError('E_BOOT_ENTRY_MALFORMED', `boot entries directory '${dir}' is a symlink`, {
        hint: 'arbor writes it as a directory: move it away and run the command again',
      });
    return readdirSync(dir);
  } catch (error) {
    if (error instanceof ArborError) throw error;
    if (errnoCode(error) === 'ENOENT') return [];
    throw ioError('read directory', dir, error);
  }
}

/** The entries of `entriesDir` (*.conf) with their file names, in boot order; none without the dir. */
export function readBootEntryFiles(entriesDir: string): { fileName: string; entry: BootEntry }[] {
  const files = listEntriesDir(entriesDir)
    .filter((name) => name.endsWith('.conf'))
    .map((fileName) => ({ fileName, entry: parseBlsEntry(readEntryText(join(entriesDir, fileName)), fileName) }));
  return inBootOrder(files);
}

/** The entries of the current boot set (`bootDir/loader/entries`), default first; none without one. */
export function readBootEntries(bootDir: string): BootEntry[] {
  return readBootEntryFiles(join(bootDir, 'loader', 'entries')).map((f) => f.entry);
}

/** Points of writeBootSet after which a crash leaves a different state on disk (for tests). */
export type BootSetStep = 'staged' | 'renamed' | 'linked' | 'switched';

export interface WriteBootSetOptions {
  /** The bootversion the caller prepared for (its `arbor/boot.N`); must be the unused one. */
  readonly bootversion?: 0 | 1 | undefined;
  /** Called after each step; a throw there stands in for a crash. */
  readonly afterStep?: ((step: BootSetStep) => void) | undefined;
}

/**
 * Writes `entries` (default first) as the new boot set under `bootDir` and switches to it:
 * builds `loader.M.tmp` (M = 1 - current N; 0 without a `loader`) with `entries/*.conf`
 * (entryFileNames) and the bootloader's config, fsyncs every file and directory, replaces any
 * stale `loader.M` with it, then renames a new `loader.tmp -> loader.M` symlink over `loader` and
 * fsyncs `bootDir`. `loader.N` stays: it is the previous boot set until the next switch. A number
 * for `options` is the expected bootversion. Returns M.
 */
export function writeBootSet(
  bootDir: string,
  entries: readonly BootEntry[],
  bootloader: Bootloader,
  options: number | WriteBootSetOptions = {},
): 0 | 1 {
  const opts: WriteBootSetOptions = typeof options === 'number' ? { bootversion: options as 0 | 1 } : options;
  const current = currentBootversion(bootDir);
  const next = current === 0 ? 1 : 0;
  assert(
    opts.bootversion === undefined || opts.bootversion === next,
    `boot set prepared for bootversion ${opts.bootversion}, but ${next} is the unused one`,
  );
  const names = entryFileNames(entries);
  const files = entries.map((entry, i) => ({ fileName: present(names[i], `the file name of entry ${i}`), entry }));
  assertSystemdBootOrder(files);
  const texts = files.map((f) => ({ fileName: f.fileName, text: formatBlsEntry(f.entry) }));

  const target = join(bootDir, `loader.${next}`);
  const staging = `${target}.tmp`;
  // A staging dir left by a crash is incomplete by definition: start over.
  io('remove', staging, () => rmSync(staging, { recursive: true, force: true }));
  io('create', staging, () => mkdirSync(join(staging, 'entries'), { recursive: true }));
  for (const { fileName, text } of texts) writeDurable(join(staging, 'entries', fileName), text);
  bootloader.writeConfig(entries, staging);
  fsyncTree(staging);
  opts.afterStep?.('staged');

  // loader.M is not what `loader` names: a leftover of a crash after 'renamed', or the set before last.
  io('remove', target, () => rmSync(target, { recursive: true, force: true }));
  syncedRename(bootDir, `loader.${next}.tmp`, `loader.${next}`);
  opts.afterStep?.('renamed');

  const link = join(bootDir, 'loader.tmp');
  io('create', link, () => {
    rmSync(link, { force: true });
    symlinkSync(`loader.${next}`, link);
  });
  opts.afterStep?.('linked');
  // The switch: rename(2) replaces `loader` atomically; the fsync makes it durable.
  syncedRename(bootDir, 'loader.tmp', 'loader');
  opts.afterStep?.('switched');
  return next;
}

// --- ESP: generations of entry files ----------------------------------------------------------

/**
 * One step of an ESP switch. `write` creates NAME (a `.part` file) and fsyncs it; `rename` and
 * `remove` are followed by an fsync of the entries directory. A crash falls between two steps.
 */
export type EspStep =
  | { readonly op: 'write'; readonly name: string; readonly text: string }
  | { readonly op: 'rename'; readonly from: string; readonly to: string }
  | { readonly op: 'remove'; readonly name: string };

const STAGED = '.staged';
const PART = '.part';
// Ours: stem `arbor…-gGEN` (entryFileNames with stemSuffix `-gGEN`).
const GEN_STEM = /^(arbor[A-Za-z0-9._-]*)-g(0|[1-9][0-9]*)$/;

interface EspFile {
  readonly name: string;
  readonly kind: 'visible' | 'staged' | 'part';
  readonly gen: number;
  readonly index: number;
}

function classifyEsp(names: readonly string[]): EspFile[] {
  const files: EspFile[] = [];
  for (const name of names) {
    const kind = name.endsWith(`.conf${STAGED}`)
      ? 'staged'
      : name.endsWith(`.conf${PART}`)
        ? 'part'
        : name.endsWith('.conf')
          ? 'visible'
          : null;
    if (kind === null) continue;
    const final = kind === 'visible' ? name : name.slice(0, name.lastIndexOf('.'));
    const parsed = parseEntryFileName(final);
    const gen = parsed ? GEN_STEM.exec(parsed.stem) : null;
    if (!parsed || !gen) continue; // another OS's entry: never touched
    files.push({ name, kind, gen: Number(gen[2]), index: parsed.index });
  }
  return files;
}

/** Whether `indices` are exactly 0..max: a set written default (highest index) first, not cut short. */
function isComplete(files: readonly EspFile[]): boolean {
  const indices = new Set(files.map((f) => f.index));
  return files.length > 0 && indices.size === files.length && Math.max(...indices) === files.length - 1;
}

const byIndexDescending = (a: EspFile, b: EspFile): number => b.index - a.index;
const maxGen = (files: readonly EspFile[]): number | undefined =>
  files.length === 0 ? undefined : Math.max(...files.map((f) => f.gen));
const finalName = (f: EspFile): string => f.name.slice(0, -STAGED.length);

/**
 * What an interrupted switch left, decided from file names alone. N = the newest generation.
 * Committed (roll forward) when N has a visible entry, or when N's staging is complete and the
 * previous generation is no longer complete (its removal had begun) or absent. Otherwise N's
 * staging is abandoned and the previous generation is current.
 */
function espSituation(files: readonly EspFile[]): { current: number | undefined; forward: boolean } {
  const live = files.filter((f) => f.kind !== 'part');
  const newest = maxGen(live);
  if (newest === undefined) return { current: undefined, forward: false };
  const visible = live.filter((f) => f.kind === 'visible');
  if (visible.some((f) => f.gen === newest)) return { current: newest, forward: true };
  const staged = live.filter((f) => f.kind === 'staged' && f.gen === newest);
  const previous = maxGen(visible);
  const previousFiles = visible.filter((f) => f.gen === previous);
  if (isComplete(staged) && (previous === undefined || !isComplete(previousFiles)))
    return { current: newest, forward: true };
  return { current: previous, forward: false };
}

/**
 * The steps that finish or undo an interrupted switch (see espSituation): `.part` files and
 * stale staged copies go; rolling forward removes older visible entries, except that the old
 * default stays until the new default is visible, then renames the staged entries into place.
 */
function planEspRecovery(files: readonly EspFile[]): EspStep[] {
  const steps: EspStep[] = files.filter((f) => f.kind === 'part').map((f) => ({ op: 'remove', name: f.name }));
  const { current, forward } = espSituation(files);
  const visible = files.filter((f) => f.kind === 'visible');
  // A staged copy whose entry is visible already (rename done; systemd-boot may have recounted it).
  const isVisible = (f: EspFile): boolean => visible.some((v) => v.gen === f.gen && v.index === f.index);
  const staged = files.filter((f) => f.kind === 'staged');
  for (const f of staged) if (f.gen !== current || !forward || isVisible(f)) steps.push({ op: 'remove', name: f.name });
  if (current === undefined || !forward) return steps;
  const pending = staged.filter((f) => f.gen === current && !isVisible(f)).sort(byIndexDescending);
  const older = visible.filter((f) => f.gen !== current).sort((a, b) => a.gen - b.gen || a.index - b.index);
  const newDefaultVisible = visible.some((f) => f.gen === current);
  if (!newDefaultVisible) {
    const oldGen = maxGen(older);
    const oldDefault = older.filter((f) => f.gen === oldGen).sort(byIndexDescending)[0];
    for (const f of older) if (f !== oldDefault) steps.push({ op: 'remove', name: f.name });
    const [first, ...rest] = pending;
    if (first) steps.push({ op: 'rename', from: first.name, to: finalName(first) });
    if (oldDefault) steps.push({ op: 'remove', name: oldDefault.name });
    for (const f of rest) steps.push({ op: 'rename', from: f.name, to: finalName(f) });
  } else {
    for (const f of older) steps.push({ op: 'remove', name: f.name });
    for (const f of pending) steps.push({ op: 'rename', from: f.name, to: finalName(f) });
  }
  return steps;
}

/** The names in a directory after `steps` ran (planning the switch after the recovery). */
function simulate(names: readonly string[], steps: readonly EspStep[]): string[] {
  const out = new Set(names);
  for (const step of steps) {
    if (step.op === 'write') out.add(step.name);
    else if (step.op === 'remove') out.delete(step.name);
    else {
      out.delete(step.from);
      out.add(step.to);
    }
  }
  return [...out];
}

/**
 * The steps that switch the entries directory holding `names` to `entries` (default first): first
 * the recovery of an interrupted switch, then, for the new generation G (newest + 1):
 *  1. each entry, default first, written as `NAME.conf.part`, fsynced, renamed to `NAME.conf.staged`
 *     (invisible: systemd-boot reads only `*.conf`);
 *  2. the old generation's entries removed, except its default;
 *  3. the new default renamed into place;
 *  4. the old default removed;
 *  5. the other new entries renamed into place.
 * Visible at any instant: the old set, the old default alone or with the new default, or the new
 * default with part of its set; so systemd-boot boots the old default or the new one, whatever
 * their relative order. An empty `entries` only removes (old non-defaults, then the old default):
 * there is no new default to commit to. Pure: the entries' texts are in the steps.
 */
export function planEspSwitch(names: readonly string[], entries: readonly BootEntry[]): EspStep[] {
  const recovery = planEspRecovery(classifyEsp(names));
  const files = classifyEsp(simulate(names, recovery));
  const current = maxGen(files);
  const gen = current === undefined ? 0 : current + 1;
  for (const entry of entries) {
    if (!stemOf(entry).startsWith('arbor')) {
      throw new ArborError(
        'E_BOOT_ENTRY_INVALID',
        `ESP boot entries need a sort-key starting with 'arbor' (their file stem), not '${stemOf(entry)}'`,
      );
    }
  }
  const newNames = entryFileNames(entries, `-g${gen}`);
  const named = entries.map((entry, i) => ({ fileName: present(newNames[i], `the file name of entry ${i}`), entry }));
  assertSystemdBootOrder(named);
  const steps: EspStep[] = [...recovery];
  named.forEach(({ fileName: name, entry }) => {
    steps.push(
      { op: 'write', name: `${name}${PART}`, text: formatBlsEntry(entry) },
      { op: 'rename', from: `${name}${PART}`, to: `${name}${STAGED}` },
    );
  });
  const old = files.filter((f) => f.kind === 'visible').sort((a, b) => a.gen - b.gen || a.index - b.index);
  const oldDefault = old.filter((f) => f.gen === current).sort(byIndexDescending)[0];
  for (const f of old) if (f !== oldDefault) steps.push({ op: 'remove', name: f.name });
  const [first, ...rest] = newNames;
  if (first !== undefined) steps.push({ op: 'rename', from: `${first}${STAGED}`, to: first });
  if (oldDefault) steps.push({ op: 'remove', name: oldDefault.name });
  for (const name of rest) steps.push({ op: 'rename', from: `${name}${STAGED}`, to: name });
  return steps;
}

export interface WriteBootSetEspOptions {
  /** Called after each step; a throw there stands in for a crash. */
  readonly afterStep?: ((step: EspStep, index: number) => void) | undefined;
}

/** `ESP/loader/entries`, where systemd-boot reads type #1 entries. */
export const espEntriesDir = (espDir: string): string => join(espDir, 'loader', 'entries');

/**
 * Switches the ESP's boot entries (`espDir/loader/entries`) to `entries` (default first) by the
 * steps of planEspSwitch, finishing or undoing an interrupted earlier switch first. Entries need a
 * sort-key starting with `arbor`; other files in the directory are left alone. The kernels and
 * initramfs the entries name must already be on the ESP (systemd-boot skips an entry whose
 * `linux` is missing).
 */
export function writeBootSetEsp(
  espDir: string,
  entries: readonly BootEntry[],
  options: WriteBootSetEspOptions = {},
): void {
  const dir = espEntriesDir(espDir);
  io('create', dir, () => mkdirSync(dir, { recursive: true }));
  planEspSwitch(listEntriesDir(dir), entries).forEach((step, i) => {
    if (step.op === 'write') writeDurable(join(dir, step.name), step.text);
    else if (step.op === 'rename') syncedRename(dir, step.from, step.to);
    else {
      io('remove', join(dir, step.name), () => {
        try {
          unlinkSync(join(dir, step.name));
        } catch (error) {
          if (errnoCode(error) !== 'ENOENT') throw error;
        }
        fsyncDir(dir);
      });
    }
    options.afterStep?.(step, i);
  });
}

/**
 * The ESP's current boot set, default first: the generation an interrupted switch commits to
 * (its staged entries included), else the complete previous one. Reads only.
 */
export function readBootEntriesEsp(espDir: string): BootEntry[] {
  const dir = espEntriesDir(espDir);
  const files = classifyEsp(listEntriesDir(dir));
  const { current, forward } = espSituation(files);
  if (current === undefined) return [];
  const chosen = files.filter((f) => f.gen === current && (f.kind === 'visible' || (forward && f.kind === 'staged')));
  // A staged copy may sit beside its renamed entry: one per index, the visible one preferred.
  const byIndex = new Map<number, EspFile>();
  for (const f of chosen) if (!byIndex.has(f.index) || f.kind === 'visible') byIndex.set(f.index, f);
  return [...byIndex.values()].sort(byIndexDescending).map((f) => {
    const fileName = f.kind === 'visible' ? f.name : finalName(f);
    return parseBlsEntry(readEntryText(join(dir, f.name)), fileName);
  });
}
