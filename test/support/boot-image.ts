// Disk images made from a sysroot directory, without mounting anything: an ext4 root image for
// direct kernel boot, a GPT disk with an ESP running systemd-boot (UEFI), and a GPT disk with GRUB
// in a BIOS-boot partition; plus reading the Boot Loader Specification entries they boot.
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  readSync,
} from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { hasCommand, runTool, runToolBytes } from './tool.js';

const MiB = 1024 * 1024;
const SECTOR_BYTES = 512;
/** Every partition starts on a MiB boundary; the first at 1 MiB (LBA 2048), after the primary GPT. */
const FIRST_PARTITION_BYTES = MiB;

const SYSTEMD_BOOT_EFI = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
const GRUB_I386_PC_DIR = '/usr/lib/grub/i386-pc';
/** The filesystem label of the root partition; entries say `root=LABEL=sysroot`. */
const ROOT_LABEL = 'sysroot';

const GPT_TYPE = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
} as const;

const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' };

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
// Images

/** Bytes the tree under DIR occupies on disk (du: hardlinks counted once). */
function diskUsageBytes(dir: string): number {
  const out = runTool('du', ['-s', '--block-size=1', dir]);
  return Number(out.split(/\s/)[0]);
}

/** Inodes the tree under DIR uses (hardlinks counted once). */
function inodeCount(dir: string): number {
  return Number(runTool('du', ['-s', '--inodes', dir]).split(/\s/)[0]);
}

const roundUpMiB = (bytes: number): number => Math.ceil(bytes / MiB) * MiB;

export interface RootImageOptions {
  /** Filesystem label (default `sysroot`, what `root=LABEL=sysroot` finds). */
  label?: string;
  /** Free space wanted beyond the estimate (default 0). */
  extraBytes?: number;
}

/**
 * Makes OUT an ext4 image holding SYSROOT (mkfs.ext4 -d: symlinks, hardlinks and xattrs kept,
 * owners as on the host, no journal), sized du × 1.25 + 16 MiB. Returns the image size in bytes.
 */
export function buildRootImage(sysroot: string, out: string, options: RootImageOptions = {}): number {
  const sizeBytes = roundUpMiB(diskUsageBytes(sysroot) * 1.25 + 16 * MiB + (options.extraBytes ?? 0));
  // mke2fs's ratio for filesystems over 512 MiB (one inode per 16 KiB) can fall short of a tree of
  // many small files (a repo plus deployments): ask for at least 1.5 × the inodes in use.
  const inodes = Math.max(Math.ceil(inodeCount(sysroot) * 1.5) + 1024, Math.floor(sizeBytes / 16384));
  rmSync(out, { force: true });
  runTool('truncate', ['-s', String(sizeBytes), out]);
  runTool('mkfs.ext4', [
    '-q',
    '-F',
    '-L',
    options.label ?? ROOT_LABEL,
    '-N',
    String(inodes),
    '-E',
    'root_owner=0:0',
    '-O',
    '^has_journal',
    '-d',
    sysroot,
    out,
  ]);
  return sizeBytes;
}

interface Partition {
  type: string;
  name: string;
  /** An image file written at the partition's start; the partition is this size, rounded up to MiB. */
  image: string;
}

/** Writes a GPT disk at OUT holding PARTITIONS in order from 1 MiB, each on a MiB boundary. */
function writeGptDisk(out: string, partitions: readonly Partition[]): void {
  let offset = FIRST_PARTITION_BYTES;
  const placed = partitions.map((p) => {
    const size = roundUpMiB(statSync(p.image).size);
    const at = offset;
    offset += size;
    return { ...p, at, size };
  });
  // One spare MiB at the end holds the backup GPT (33 sectors).
  rmSync(out, { force: true });
  runTool('truncate', ['-s', String(offset + MiB), out]);
  const script = [
    'label: gpt',
    'unit: sectors',
    ...placed.map(
      (p) => `start=${p.at / SECTOR_BYTES}, size=${p.size / SECTOR_BYTES}, type=${p.type}, name="${p.name}"`,
    ),
    '',
  ].join('\n');
  runTool('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', out], { input: script });
  for (const p of placed) {
    runTool('dd', [`if=${p.image}`, `of=${out}`, 'bs=1M', `seek=${p.at / MiB}`, 'conv=notrunc,sparse', 'status=none']);
  }
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
}

/**
 * Makes OUT a GPT disk for OVMF: partition 1 an ESP (FAT32) with systemd-boot as
 * /EFI/BOOT/BOOTX64.EFI, /loader/loader.conf, the entries, and every kernel and initrd they name
 * (copied from SYSROOT/boot, where BLS paths are rooted); partition 2 the root image of SYSROOT.
 */
export function buildUefiDisk(sysroot: string, out: string, options: UefiDiskOptions = {}): void {
  const entriesDir = options.entriesDir ?? join(sysroot, 'boot/loader/entries');
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
    const espImage = join(work, 'esp.img');
    const espBytes = options.espBytes ?? Math.max(64 * MiB, roundUpMiB(diskUsageBytes(esp) + 32 * MiB));
    runTool('mkfs.vfat', ['-C', '-F', '32', '-n', 'ESP', espImage, String(espBytes / 1024)]);
    const top = readdirSync(esp).map((name) => join(esp, name));
    runTool('mcopy', ['-i', espImage, '-s', '-p', '-m', '-Q', ...top, '::/'], { env: MTOOLS_ENV });

    const rootImage = join(work, 'root.img');
    buildRootImage(sysroot, rootImage);
    writeGptDisk(out, [
      { type: GPT_TYPE.esp, name: 'EFI System', image: espImage },
      { type: GPT_TYPE.linux, name: ROOT_LABEL, image: rootImage },
    ]);
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
}

/** The filesystem label of the separate /boot partition (BiosGrubDiskOptions.separateBootPartition). */
const BOOT_LABEL = 'boot';

/**
 * The modules built into core.img: nothing is loaded from disk, so no /boot/grub/i386-pc is needed.
 * loadenv: the trial counter in a generated grub.cfg (load_env/save_env, docs/deploy.md).
 */
const GRUB_MODULES = [
  'biosdisk',
  'part_gpt',
  'ext2',
  'search',
  'search_label',
  'configfile',
  'linux',
  'normal',
  'boot',
  'serial',
  'terminal',
  'echo',
  'test',
  'loadenv',
];

/**
 * Makes OUT a GPT disk for SeaBIOS: boot.img in the MBR's code area, core.img (all modules built in,
 * an early config that finds its filesystem by label and runs grubCfgPath) in a 1 MiB BIOS-boot
 * partition 1 at LBA 2048, optionally SYSROOT/boot as partition 2, and the root image of SYSROOT
 * last. What grub-install would do, without its device probing: boot.img learns core.img's LBA at
 * 0x5c, and core.img's first sector (diskboot) the LBA of the rest at 0x1f4.
 */
export function buildBiosGrubDisk(sysroot: string, out: string, options: BiosGrubDiskOptions = {}): void {
  const separate = options.separateBootPartition ?? false;
  const grubCfgPath = options.grubCfgPath ?? (separate ? '/grub/grub.cfg' : '/boot/grub/grub.cfg');
  if (!posix.isAbsolute(grubCfgPath) || grubCfgPath.split('/').includes('..') || /[\s'"]/.test(grubCfgPath)) {
    throw new Error(`grubCfgPath '${grubCfgPath}' must be an absolute path without .., quotes or spaces`);
  }
  const grubFs = separate ? join(sysroot, 'boot') : sysroot;
  if (!existsSync(join(grubFs, grubCfgPath)))
    throw new Error(`${join(grubFs, grubCfgPath)} does not exist: GRUB would have nothing to run`);
  const work = mkdtempSync(join(dirname(out), '.bios-disk-'));
  try {
    const earlyCfg = join(work, 'early.cfg');
    writeFileSync(
      earlyCfg,
      [
        'serial --unit=0 --speed=115200',
        'terminal_input serial console',
        'terminal_output serial console',
        `search --no-floppy --label ${separate ? BOOT_LABEL : ROOT_LABEL} --set=root`,
        `set prefix=($root)${posix.dirname(grubCfgPath)}`,
        `configfile ($root)${grubCfgPath}`,
        '',
      ].join('\n'),
    );
    const coreImage = join(work, 'core.img');
    runTool('grub-mkimage', [
      '-O',
      'i386-pc',
      '-d',
      GRUB_I386_PC_DIR,
      '-o',
      coreImage,
      '-c',
      earlyCfg,
      '-p',
      posix.dirname(grubCfgPath),
      ...GRUB_MODULES,
    ]);
    const biosBootImage = join(work, 'bios-boot.img');
    const core = readFileSync(coreImage);
    if (core.length > MiB) throw new Error(`core.img is ${core.length} bytes, more than the 1 MiB BIOS-boot partition`);
    writeFileSync(biosBootImage, Buffer.concat([core, Buffer.alloc(MiB - core.length)]));

    const partitions: Partition[] = [{ type: GPT_TYPE.biosBoot, name: 'BIOS boot', image: biosBootImage }];
    if (separate) {
      const bootImage = join(work, 'boot.img');
      buildRootImage(join(sysroot, 'boot'), bootImage, { label: BOOT_LABEL });
      partitions.push({ type: GPT_TYPE.linux, name: BOOT_LABEL, image: bootImage });
    }
    const rootImage = join(work, 'root.img');
    buildRootImage(sysroot, rootImage);
    partitions.push({ type: GPT_TYPE.linux, name: ROOT_LABEL, image: rootImage });
    writeGptDisk(out, partitions);

    const coreLba = BigInt(FIRST_PARTITION_BYTES / SECTOR_BYTES);
    // boot.img: code only (0..440); the disk signature and protective MBR sfdisk wrote stay.
    const bootImage = readFileSync(join(GRUB_I386_PC_DIR, 'boot.img'));
    bootImage.writeBigUInt64LE(coreLba, 0x5c); // GRUB_BOOT_MACHINE_KERNEL_SECTOR
    const fd = openSync(out, 'r+');
    try {
      writeSync(fd, bootImage, 0, 440, 0);
      // diskboot's blocklist: the rest of core.img starts right after its first sector.
      const first = Buffer.alloc(SECTOR_BYTES);
      readSync(fd, first, 0, SECTOR_BYTES, Number(coreLba) * SECTOR_BYTES);
      first.writeBigUInt64LE(coreLba + 1n, 0x1f4);
      writeSync(fd, first, 0, SECTOR_BYTES, Number(coreLba) * SECTOR_BYTES);
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a disk's ESP from the host (mtools; the ESP is partition 1 at 1 MiB, as buildUefiDisk makes it)

const espTarget = (disk: string): string => `${disk}@@${FIRST_PARTITION_BYTES}`;

/** The bytes of PATH (e.g. `/loader/entries/arbor-os-1.conf`) on DISK's ESP. */
export function readEspFile(disk: string, path: string): Buffer {
  return runToolBytes('mcopy', ['-n', '-i', espTarget(disk), `::${path}`, '-'], { env: MTOOLS_ENV });
}

/** Names in directory DIR of DISK's ESP (files and directories, without . and ..), sorted. */
export function listEsp(disk: string, dir: string): string[] {
  const out = runTool('mdir', ['-b', '-i', espTarget(disk), `::${dir}`], { env: MTOOLS_ENV });
  return out
    .split('\n')
    .map((line) => line.trim().replace(/\/$/, ''))
    .filter((line) => line !== '')
    .map((line) => basename(line))
    .filter((name) => name !== '.' && name !== '..')
    .sort();
}

// ---------------------------------------------------------------------------------------------

/** Tools and files the image builders need; `missing` names what is absent. */
export function imageToolingMissing(): string[] {
  const missing = ['mkfs.ext4', 'truncate', 'du', 'dd', 'sfdisk', 'mkfs.vfat', 'mcopy', 'mdir', 'grub-mkimage'].filter(
    (c) => !hasCommand(c),
  );
  for (const file of [SYSTEMD_BOOT_EFI, join(GRUB_I386_PC_DIR, 'boot.img')]) if (!existsSync(file)) missing.push(file);
  return missing;
}
