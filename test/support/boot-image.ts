// Disk images made from a sysroot directory, without mounting anything: an ext4 root image for
// direct kernel boot, a GPT disk with an ESP running systemd-boot (UEFI), and a GPT disk with GRUB
// in a BIOS-boot partition; plus reading the Boot Loader Specification entries they boot.
import { randomUUID } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { listFat, makeFat, readFatFile, writeGpt } from '../../src/image/disk.js';
import { GRUB_I386_PC_DIR, buildGrubCore, installGrubBios } from '../../src/image/grub-bios.js';
import {
  type DiskPlan,
  GPT_TYPE as IMAGE_GPT_TYPE,
  MiB,
  type PlannedPartition,
  rootInodeCount,
  roundUpMiB,
} from '../../src/image/plan.js';
import { makeExt4 } from '../../src/image/root-fs.js';
import { hasCommand, runTool } from './tool.js';

/** Every partition starts on a MiB boundary; the first at 1 MiB (LBA 2048), after the primary GPT. */
const FIRST_PARTITION_BYTES = MiB;

const SYSTEMD_BOOT_EFI = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
/** The filesystem label of the root partition; entries say `root=LABEL=sysroot`. */
const ROOT_LABEL = 'sysroot';

const GPT_TYPE = { ...IMAGE_GPT_TYPE, linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' } as const;

// ---------------------------------------------------------------------------------------------
// Boot Loader Specification entries

/** One type #1 entry as read from disk; `initrd` may repeat, the other keys keep their last value. */
export interface BlsEntry {
  /** File name, e.g. `arbor-os-1.conf`. */
  readonly file: string;
  readonly title?: string;
  readonly version?: string;
  readonly sortKey?: string;
  readonly linux?: string;
  readonly initrd: readonly string[];
  readonly options: string;
  /** Every key as written (repeated keys: all values in order). */
  readonly fields: ReadonlyMap<string, readonly string[]>;
}

/** Parses one entry file's text (`key value` lines, `#` comments). */
export function parseBlsEntry(file: string, text: string): BlsEntry {
  const fields = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1] as string;
    fields.set(key, [...(fields.get(key) ?? []), m[2] as string]);
  }
  const last = (key: string): string | undefined => fields.get(key)?.at(-1);
  return {
    file,
    title: last('title'),
    version: last('version'),
    sortKey: last('sort-key'),
    linux: last('linux'),
    initrd: fields.get('initrd') ?? [],
    // The spec lets `options` repeat; the command line is all of them joined.
    options: (fields.get('options') ?? []).join(' '),
    fields,
  };
}

/**
 * Version-aware comparison as systemd-boot does it (strverscmp_improved, simplified): digit runs
 * compare as numbers, everything else bytewise; negative when a sorts before b.
 */
function compareVersions(a: string, b: string): number {
  const runs = (s: string): string[] => s.match(/\d+|\D+/g) ?? [];
  const ra = runs(a);
  const rb = runs(b);
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i] as string;
    const y = rb[i] as string;
    if (/^\d/.test(x) && /^\d/.test(y)) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return ra.length - rb.length;
}

/** Boot counting in a file name (`NAME+LEFT[-DONE].conf`), as systemd-boot reads it; null without. */
function parseBootCounter(file: string): { id: string; triesLeft: number; triesDone: number } | null {
  const m = /^(.*)\+(\d+)(?:-(\d+))?\.conf$/.exec(file);
  return m ? { id: `${m[1]}.conf`, triesLeft: Number(m[2]), triesDone: Number(m[3] ?? 0) } : null;
}

/**
 * systemd-boot 252's entry order (boot_entry_compare), negative when A boots before B: entries with
 * no tries left last; entries with a sort-key before those without; two with sort-keys by sort-key,
 * machine-id, then version descending; then by id (file name, lowercased, counter removed)
 * descending; then more tries left, fewer tries done.
 */
export function compareBootEntries(a: BlsEntry, b: BlsEntry): number {
  const ca = parseBootCounter(a.file);
  const cb = parseBootCounter(b.file);
  const exhausted = (c: typeof ca): number => (c !== null && c.triesLeft === 0 ? 1 : 0);
  if (exhausted(ca) !== exhausted(cb)) return exhausted(ca) - exhausted(cb);
  const unsorted = (e: BlsEntry): number => (e.sortKey === undefined ? 1 : 0);
  if (unsorted(a) !== unsorted(b)) return unsorted(a) - unsorted(b);
  if (a.sortKey !== undefined && b.sortKey !== undefined) {
    if (a.sortKey !== b.sortKey) return a.sortKey < b.sortKey ? -1 : 1;
    const ma = a.fields.get('machine-id')?.at(-1) ?? '';
    const mb = b.fields.get('machine-id')?.at(-1) ?? '';
    if (ma !== mb) return ma < mb ? -1 : 1;
    const v = compareVersions(b.version ?? '', a.version ?? '');
    if (v !== 0) return v;
  }
  const id = (e: BlsEntry, c: typeof ca): string => (c?.id ?? e.file).toLowerCase();
  const byId = compareVersions(id(b, cb), id(a, ca));
  if (byId !== 0 || ca === null || cb === null) return byId;
  if (ca.triesLeft !== cb.triesLeft) return cb.triesLeft - ca.triesLeft;
  return ca.triesDone - cb.triesDone;
}

/** Reads `*.conf` in ENTRIESDIR in systemd-boot's boot order (compareBootEntries), default first. */
export function readBootEntries(entriesDir: string): BlsEntry[] {
  return readdirSync(entriesDir)
    .filter((name) => name.endsWith('.conf'))
    .map((name) => parseBlsEntry(name, readFileSync(join(entriesDir, name), 'utf8')))
    .sort(compareBootEntries);
}

/** The entry systemd-boot boots without a menu choice: first of readBootEntries(SYSROOT/boot/loader/entries). */
export function readDefaultBootEntry(sysroot: string): BlsEntry {
  const dir = join(sysroot, 'boot/loader/entries');
  const first = readBootEntries(dir)[0];
  if (first === undefined) throw new Error(`no boot entries in ${dir}`);
  return first;
}

/** Host paths of an entry's kernel and initrds, relative to BOOTDIR (the partition holding the entries). */
export function entryFiles(entry: BlsEntry, bootDir: string): { linux: string; initrd: string[] } {
  if (entry.linux === undefined) throw new Error(`boot entry ${entry.file} has no linux line`);
  const resolve = (p: string): string => {
    if (!p.startsWith('/') || p.split('/').includes('..'))
      throw new Error(`boot entry ${entry.file}: '${p}' is not an absolute path within the partition`);
    return join(bootDir, p);
  };
  return { linux: resolve(entry.linux), initrd: entry.initrd.map(resolve) };
}

// ---------------------------------------------------------------------------------------------
// Images (laid out, formatted and made bootable by src/image, which `arbor image build` uses)

/** Bytes the tree under DIR occupies on disk (du: hardlinks counted once). */
function diskUsageBytes(dir: string): number {
  const out = runTool('du', ['-s', '--block-size=1', dir]);
  return Number(out.split(/\s/)[0]);
}

/** Inodes the tree under DIR uses (hardlinks counted once). */
function inodeCount(dir: string): number {
  return Number(runTool('du', ['-s', '--inodes', dir]).split(/\s/)[0]);
}

export interface RootImageOptions {
  /** Filesystem label (default `sysroot`, what `root=LABEL=sysroot` finds). */
  label?: string;
  /** Free space wanted beyond the estimate (default 0). */
  extraBytes?: number;
  /**
   * With an ext4 journal (default false: images booted once need none). Images whose guests are
   * killed mid-write (power-cut tests) need it, as real roots have it: without one, a cut can
   * leave directory blocks the next mount refuses (EUCLEAN).
   */
  journal?: boolean;
}

/** Room for the journal mkfs.ext4 makes by default on a test root (16 MiB up to 1 GiB, 32 MiB to 2 GiB). */
const JOURNAL_ROOM_BYTES = 32 * MiB;

/** Size of a root filesystem for SYSROOT: du × 1.25 + 16 MiB (+ the journal's room). */
const rootImageBytes = (sysroot: string, options: RootImageOptions): number =>
  roundUpMiB(
    diskUsageBytes(sysroot) * 1.25 +
      16 * MiB +
      (options.extraBytes ?? 0) +
      (options.journal === true ? JOURNAL_ROOM_BYTES : 0),
  );

/**
 * Writes an ext4 filesystem holding SYSROOT (mkfs.ext4 -d: symlinks, hardlinks and xattrs kept,
 * owners as on the host, a journal only if asked) at OFFSETBYTES of DISK, SIZEBYTES long.
 */
function writeRootFs(
  sysroot: string,
  disk: string,
  at: { offsetBytes: number; sizeBytes: number },
  options: RootImageOptions,
): void {
  const work = mkdtempSync(join(dirname(disk), '.root-fs-'));
  try {
    makeExt4({
      disk,
      ...at,
      source: sysroot,
      label: options.label ?? ROOT_LABEL,
      uuid: randomUUID(),
      hashSeed: randomUUID(),
      inodes: rootInodeCount(at.sizeBytes, { blockBytes: 0, inodes: inodeCount(sysroot) }),
      epoch: Math.floor(Date.now() / 1000),
      workDir: work,
      journal: options.journal === true,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Makes OUT an ext4 image holding SYSROOT (see writeRootFs), sized du × 1.25 + 16 MiB. Returns its size in bytes. */
export function buildRootImage(sysroot: string, out: string, options: RootImageOptions = {}): number {
  const sizeBytes = rootImageBytes(sysroot, options);
  rmSync(out, { force: true });
  runTool('truncate', ['-s', String(sizeBytes), out]);
  writeRootFs(sysroot, out, { offsetBytes: 0, sizeBytes }, options);
  return sizeBytes;
}

/** Where a planned partition is, as writeRootFs takes it. */
const at = (p: PlannedPartition): { offsetBytes: number; sizeBytes: number } => ({
  offsetBytes: p.startBytes,
  sizeBytes: p.sizeBytes,
});

/** A GPT plan for partitions of the given sizes, in order from 1 MiB, and the disk's size. */
function planTestDisk(partitions: readonly { name: string; type: string; sizeBytes: number }[]): DiskPlan {
  let offset = FIRST_PARTITION_BYTES;
  const placed = partitions.map((p) => {
    const at = offset;
    offset += p.sizeBytes;
    return { ...p, startBytes: at, uuid: randomUUID().toUpperCase() };
  });
  // One spare MiB at the end holds the backup GPT (33 sectors).
  return { sizeBytes: offset + MiB, diskGuid: randomUUID().toUpperCase(), partitions: placed };
}

export interface UefiDiskOptions {
  /** Entries copied to the ESP's /loader/entries (default SYSROOT/boot/loader/entries). */
  entriesDir?: string;
  /**
   * An ESP's content as Arbor wrote it (`[sysroot] esp`: loader/entries and the kernels under
   * arbor/), copied as is instead of entriesDir and the kernels it names.
   */
  espTree?: string;
  /** Text of /loader/loader.conf (default `timeout 0`: boot the default entry without a menu). */
  loaderConf?: string;
  /** ESP size in bytes (default: content + 32 MiB, at least 64 MiB; FAT32 needs about 33 MiB). */
  espBytes?: number;
  /** Give the root filesystem an ext4 journal (RootImageOptions.journal). */
  journal?: boolean;
}

/**
 * Makes OUT a GPT disk for OVMF: partition 1 an ESP (FAT32) with systemd-boot as
 * /EFI/BOOT/BOOTX64.EFI, /loader/loader.conf, the entries, and every kernel and initrd they name
 * (copied from SYSROOT/boot, where BLS paths are rooted); partition 2 the root filesystem of SYSROOT.
 */
export function buildUefiDisk(sysroot: string, out: string, options: UefiDiskOptions = {}): void {
  const entriesDir = options.entriesDir ?? join(sysroot, 'boot/loader/entries');
  const root: RootImageOptions = { journal: options.journal ?? false };
  const work = mkdtempSync(join(dirname(out), '.uefi-disk-'));
  try {
    const esp = join(work, 'esp');
    mkdirSync(join(esp, 'EFI/BOOT'), { recursive: true });
    mkdirSync(join(esp, 'loader/entries'), { recursive: true });
    copyFileSync(SYSTEMD_BOOT_EFI, join(esp, 'EFI/BOOT/BOOTX64.EFI'));
    writeFileSync(join(esp, 'loader/loader.conf'), options.loaderConf ?? 'timeout 0\n');
    if (options.espTree !== undefined) cpSync(options.espTree, esp, { recursive: true });
    for (const entry of options.espTree === undefined ? readBootEntries(entriesDir) : []) {
      copyFileSync(join(entriesDir, entry.file), join(esp, 'loader/entries', entry.file));
      const files = entryFiles(entry, join(sysroot, 'boot'));
      for (const [host, bls] of [
        [files.linux, entry.linux as string],
        ...files.initrd.map((f, i) => [f, entry.initrd[i] as string] as const),
      ] as const) {
        const target = join(esp, bls);
        if (existsSync(target)) continue; // entries share kernels
        mkdirSync(dirname(target), { recursive: true });
        copyFileSync(host, target);
      }
    }
    const espBytes = options.espBytes ?? Math.max(64 * MiB, roundUpMiB(diskUsageBytes(esp) + 32 * MiB));
    const plan = planTestDisk([
      { name: 'EFI System', type: GPT_TYPE.esp, sizeBytes: espBytes },
      { name: ROOT_LABEL, type: GPT_TYPE.rootX86_64, sizeBytes: rootImageBytes(sysroot, root) },
    ]);
    rmSync(out, { force: true });
    writeGpt(out, plan);
    const [espPart, rootPart] = plan.partitions as [PlannedPartition, PlannedPartition];
    makeFat({
      disk: out,
      offsetBytes: espPart.startBytes,
      sizeBytes: espPart.sizeBytes,
      label: 'ESP',
      volumeId: '1234abcd',
      epoch: Math.floor(Date.now() / 1000),
      source: esp,
    });
    writeRootFs(sysroot, out, at(rootPart), root);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface BiosGrubDiskOptions {
  /**
   * The grub.cfg GRUB runs, as a path in the filesystem GRUB reads (default `/boot/grub/grub.cfg`,
   * or `/grub/grub.cfg` with separateBootPartition). GRUB's $prefix is its directory. It must
   * exist in SYSROOT (relative symlinks are fine).
   */
  grubCfgPath?: string;
  /**
   * Also put SYSROOT/boot in its own ext4 partition labelled `boot`, which GRUB reads instead of
   * the root (paths in grub.cfg then have no /boot prefix, as with a separate /boot). Default false.
   */
  separateBootPartition?: boolean;
  /** Give the root filesystem (and the separate /boot) an ext4 journal (RootImageOptions.journal). */
  journal?: boolean;
}

/** The filesystem label of the separate /boot partition (BiosGrubDiskOptions.separateBootPartition). */
const BOOT_LABEL = 'boot';

/**
 * Makes OUT a GPT disk for SeaBIOS: GRUB (src/image/grub-bios.ts: core.img finding its filesystem
 * by label and running grubCfgPath) in a 1 MiB BIOS-boot partition 1 at LBA 2048, optionally
 * SYSROOT/boot as partition 2, and the root filesystem of SYSROOT last.
 */
export function buildBiosGrubDisk(sysroot: string, out: string, options: BiosGrubDiskOptions = {}): void {
  const separate = options.separateBootPartition ?? false;
  const root: RootImageOptions = { journal: options.journal ?? false };
  const grubCfgPath = options.grubCfgPath ?? (separate ? '/grub/grub.cfg' : '/boot/grub/grub.cfg');
  const grubFs = separate ? join(sysroot, 'boot') : sysroot;
  if (!existsSync(join(grubFs, grubCfgPath)))
    throw new Error(`${join(grubFs, grubCfgPath)} does not exist: GRUB would have nothing to run`);
  const work = mkdtempSync(join(dirname(out), '.bios-disk-'));
  try {
    const core = buildGrubCore(work, { search: { label: separate ? BOOT_LABEL : ROOT_LABEL }, grubCfgPath }, MiB);
    const plan = planTestDisk([
      { name: 'BIOS boot', type: GPT_TYPE.biosBoot, sizeBytes: MiB },
      ...(separate
        ? [{ name: BOOT_LABEL, type: GPT_TYPE.linux, sizeBytes: rootImageBytes(join(sysroot, 'boot'), root) }]
        : []),
      { name: ROOT_LABEL, type: GPT_TYPE.rootX86_64, sizeBytes: rootImageBytes(sysroot, root) },
    ]);
    rmSync(out, { force: true });
    writeGpt(out, plan);
    const parts = plan.partitions;
    if (separate)
      writeRootFs(join(sysroot, 'boot'), out, at(parts[1] as PlannedPartition), { ...root, label: BOOT_LABEL });
    writeRootFs(sysroot, out, at(parts.at(-1) as PlannedPartition), root);
    installGrubBios(out, core, (parts[0] as PlannedPartition).startBytes);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a disk's ESP from the host (mtools; the ESP is partition 1 at 1 MiB, as buildUefiDisk makes it)

/** The bytes of PATH (e.g. `/loader/entries/arbor-os-1.conf`) on DISK's ESP. */
export const readEspFile = (disk: string, path: string): Buffer => readFatFile(disk, FIRST_PARTITION_BYTES, path);

/** Names in directory DIR of DISK's ESP (files and directories, without . and ..), sorted. */
export const listEsp = (disk: string, dir: string): string[] => listFat(disk, FIRST_PARTITION_BYTES, dir);

// ---------------------------------------------------------------------------------------------

/** Tools and files the image builders need; `missing` names what is absent. */
export function imageToolingMissing(): string[] {
  const missing = ['mkfs.ext4', 'truncate', 'du', 'sfdisk', 'mkfs.vfat', 'mcopy', 'mdir', 'grub-mkimage'].filter(
    (c) => !hasCommand(c),
  );
  for (const file of [SYSTEMD_BOOT_EFI, join(GRUB_I386_PC_DIR, 'boot.img')]) if (!existsSync(file)) missing.push(file);
  return missing;
}
