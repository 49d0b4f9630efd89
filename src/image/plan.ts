// Pure decisions of an image build: the identifiers derived from its inputs (so the same commit
// and options give the same bytes), the sizes it needs, the partition layout and the sfdisk script.
import { createHash } from 'node:crypto';
import { UsageError } from '../common/errors.js';

export const MiB = 1024 * 1024;
const SECTOR_BYTES = 512;
/** The first partition starts at 1 MiB (LBA 2048), after the primary GPT; every one on a MiB boundary. */
const FIRST_PARTITION_BYTES = MiB;
/** The backup GPT (33 sectors) lives in a spare MiB at the end. */
const BACKUP_GPT_BYTES = MiB;

/** Bootloaders an image can carry; a closed set (an unknown name is a usage error). */
const IMAGE_BOOTLOADERS = ['systemd-boot', 'grub-bios'] as const;
export type ImageBootloader = (typeof IMAGE_BOOTLOADERS)[number];

/** NAME as an ImageBootloader; E_IMAGE_BOOTLOADER_UNKNOWN (exit 2) otherwise. */
export function parseImageBootloader(name: string): ImageBootloader {
  const known = IMAGE_BOOTLOADERS.find((b) => b === name);
  if (known === undefined)
    throw new UsageError('E_IMAGE_BOOTLOADER_UNKNOWN', `unknown bootloader '${name}'`, {
      hint: `use one of ${IMAGE_BOOTLOADERS.join(', ')}`,
    });
  return known;
}

/** Root filesystems an image can have; a closed set (E_IMAGE_ROOT_FS_UNSUPPORTED otherwise, exit 2). */
const IMAGE_ROOT_FILESYSTEMS = ['ext4', 'xfs'] as const;
export type ImageRootFs = (typeof IMAGE_ROOT_FILESYSTEMS)[number];

/** NAME as an ImageRootFs; E_IMAGE_ROOT_FS_UNSUPPORTED (exit 2) otherwise. */
export function parseImageRootFs(name: string): ImageRootFs {
  const known = IMAGE_ROOT_FILESYSTEMS.find((f) => f === name);
  if (known === undefined)
    throw new UsageError('E_IMAGE_ROOT_FS_UNSUPPORTED', `root filesystem '${name}' is not supported`, {
      hint: `use --root-fs ${IMAGE_ROOT_FILESYSTEMS.join(' or --root-fs ')}`,
    });
  return known;
}

/** Partition type GUIDs: the UAPI Discoverable Partitions Specification's, so systemd finds them. */
export const GPT_TYPE = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  rootX86_64: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
} as const;

/** Everything that decides an image's bytes; hashed into its identifiers. */
export interface ImageInputs {
  readonly commit: string;
  readonly bootloader: ImageBootloader;
  readonly sizeBytes: number | null;
  readonly kargs: readonly string[];
  readonly remote: { readonly name: string; readonly url: string; readonly keys: readonly string[] } | null;
  readonly epoch: number;
  /** The first-boot configuration in a canonical form; absent or null: none (and the seed is as without it). */
  readonly firstboot?: string | null;
  /** The root filesystem; absent or ext4: the seed is as before xfs existed (ext4 images keep their bytes). */
  readonly rootFs?: ImageRootFs;
}

/** A 32-byte seed for an image's identifiers: SHA-256 of its inputs in one canonical form. */
export function imageSeed(inputs: ImageInputs): Buffer {
  const canonical = JSON.stringify([
    'arbor-image-1',
    inputs.commit,
    inputs.bootloader,
    inputs.sizeBytes,
    inputs.kargs,
    inputs.remote === null ? null : [inputs.remote.name, inputs.remote.url, inputs.remote.keys],
    inputs.epoch,
    ...(inputs.firstboot ? [inputs.firstboot] : []),
    ...(inputs.rootFs === 'xfs' ? ['root-fs xfs'] : []),
  ]);
  return createHash('sha256').update(canonical).digest();
}

/** A random-looking (version 4, RFC 4122 variant) UUID derived from SEED for PURPOSE, upper case as sfdisk prints it. */
export function derivedUuid(seed: Buffer, purpose: string): string {
  const b = createHash('sha256').update(seed).update(`\0${purpose}`).digest().subarray(0, 16);
  b.writeUInt8((b.readUInt8(6) & 0x0f) | 0x40, 6);
  b.writeUInt8((b.readUInt8(8) & 0x3f) | 0x80, 8);
  const hex = b.toString('hex').toUpperCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A FAT volume id (8 hex digits) derived from SEED. */
export function derivedVolumeId(seed: Buffer): string {
  return createHash('sha256').update(seed).update('\0esp-volume-id').digest('hex').slice(0, 8);
}

/**
 * The kernel arguments of the image's entry: `root=UUID=<its root filesystem>` unless KARGS name
 * a root, `rw` unless they say `ro` or `rw`, then KARGS.
 */
export function imageKargs(kargs: readonly string[], rootFsUuid: string): string[] {
  const has = (re: RegExp): boolean => kargs.some((k) => re.test(k));
  return [
    ...(has(/^root=/) ? [] : [`root=UUID=${rootFsUuid.toLowerCase()}`]),
    ...(has(/^r[ow]$/) ? [] : ['rw']),
    ...kargs,
  ];
}

/** Parses `--size`: bytes, or a number with K, M, G or T (powers of 1024, optional `iB`/`B`). */
export function parseSizeBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  const unit = { '': 1, K: 1024, M: MiB, G: 1024 * MiB, T: 1024 * 1024 * MiB }[(m?.[2] ?? '').toUpperCase()];
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0)
    throw new UsageError('E_USAGE', `--size: expected a size such as 8G, 512M or a byte count, got '${text}'`);
  return bytes;
}

export const roundUpMiB = (bytes: number): number => Math.ceil(bytes / MiB) * MiB;

/** What the root filesystem must hold, measured on the staged sysroot (hardlinks counted once). */
export interface RootUsage {
  /** Bytes of file content, each rounded up to 4 KiB blocks, plus one block per directory. */
  readonly blockBytes: number;
  readonly inodes: number;
}

/** mkfs.xfs (xfsprogs 5.19 and later) refuses a filesystem smaller than 300 MiB. */
const XFS_MIN_BYTES = 300 * MiB;
/** The log mkfs.xfs 6.1 gives a filesystem under a few GiB (16,384 blocks of 4 KiB). */
const XFS_LOG_BYTES = 64 * MiB;

/**
 * The least root filesystem of type FS that holds USAGE. ext4: its blocks, 256-byte inodes for
 * 1.25 × the ones in use (room to deploy an upgrade's directories), the journal and group metadata
 * (about 3%), and the 5% mkfs reserves for root. xfs: its blocks, 512-byte inodes for 1.25 × the
 * ones in use, the log, 5% for allocation-group metadata, and never under mkfs.xfs's minimum.
 */
export function rootNeedBytes(usage: RootUsage, fs: ImageRootFs = 'ext4'): number {
  if (fs === 'xfs') {
    const inodes = Math.ceil(usage.inodes * 1.25) * 512;
    return roundUpMiB(Math.max(XFS_MIN_BYTES, (usage.blockBytes + inodes) / 0.95 + XFS_LOG_BYTES + 8 * MiB));
  }
  const inodeTable = Math.ceil(usage.inodes * 1.25) * 256;
  const journal = usage.blockBytes > 512 * MiB ? 64 * MiB : 16 * MiB;
  return roundUpMiB((usage.blockBytes + inodeTable) / 0.92 + journal + 8 * MiB);
}

/** The inode count to ask mkfs for: its default ratio (one per 16 KiB), or more for a tree of many small files. */
export function rootInodeCount(rootBytes: number, usage: RootUsage): number {
  return Math.max(Math.floor(rootBytes / 16384), Math.ceil(usage.inodes * 1.25) + 1024);
}

/** The ESP's size: room for four copies of what it holds now (kernels of the deployments an upgrade adds), 64 MiB at least. */
export function espBytes(contentBytes: number): number {
  return Math.max(64 * MiB, roundUpMiB(contentBytes * 4 + 16 * MiB));
}

/**
 * Sectors (512 bytes) per cluster of a FAT32 filesystem of SIZEBYTES: the largest power of two up
 * to 8 (4 KiB clusters) that still leaves the 65,525 clusters FAT32 needs, with room for the FATs.
 * Given explicitly: mkfs.vfat sizes clusters for the whole disk file, not for the partition.
 */
export function fatSectorsPerCluster(sizeBytes: number): number {
  let spc = 8;
  while (spc > 1 && sizeBytes / (spc * 512) < 70_000) spc /= 2;
  return spc;
}

/** The smallest disk holding the root filesystem: partitions before it, GPTs, and the root itself. */
export function diskNeedBytes(bootloader: ImageBootloader, espSize: number, rootNeed: number): number {
  return FIRST_PARTITION_BYTES + bootPartitionBytes(bootloader, espSize) + rootNeed + BACKUP_GPT_BYTES;
}

/** The default disk size: the need plus a quarter (at least 64 MiB) for the host's own writes. */
export function defaultDiskBytes(need: number): number {
  return roundUpMiB(need + Math.max(need / 4, 64 * MiB));
}

const BIOS_BOOT_BYTES = MiB;

function bootPartitionBytes(bootloader: ImageBootloader, espSize: number): number {
  return bootloader === 'systemd-boot' ? espSize : BIOS_BOOT_BYTES;
}

export interface PlannedPartition {
  /** The GPT partition name: `esp`, `bios-boot` or `root` in images. */
  readonly name: string;
  readonly type: string;
  readonly startBytes: number;
  readonly sizeBytes: number;
  /** The partition's unique GUID. */
  readonly uuid: string;
}

export interface DiskPlan {
  readonly sizeBytes: number;
  readonly diskGuid: string;
  readonly partitions: readonly PlannedPartition[];
}

/**
 * The GPT layout of a disk of SIZEBYTES (a MiB multiple): the boot partition (ESP for
 * systemd-boot, 1 MiB BIOS boot for grub-bios) at 1 MiB, then the root partition to the last MiB.
 */
export function planDisk(seed: Buffer, bootloader: ImageBootloader, sizeBytes: number, espSize: number): DiskPlan {
  const bootSize = bootPartitionBytes(bootloader, espSize);
  const rootStart = FIRST_PARTITION_BYTES + bootSize;
  const boot: PlannedPartition =
    bootloader === 'systemd-boot'
      ? { name: 'esp', type: GPT_TYPE.esp, startBytes: FIRST_PARTITION_BYTES, sizeBytes: bootSize, uuid: '' }
      : {
          name: 'bios-boot',
          type: GPT_TYPE.biosBoot,
          startBytes: FIRST_PARTITION_BYTES,
          sizeBytes: bootSize,
          uuid: '',
        };
  const root: PlannedPartition = {
    name: 'root',
    type: GPT_TYPE.rootX86_64,
    startBytes: rootStart,
    sizeBytes: sizeBytes - rootStart - BACKUP_GPT_BYTES,
    uuid: '',
  };
  return {
    sizeBytes,
    diskGuid: derivedUuid(seed, 'disk'),
    partitions: [boot, root].map((p) => ({ ...p, uuid: derivedUuid(seed, `partition ${p.name}`) })),
  };
}

/** sfdisk's input for PLAN: a GPT with fixed disk and partition GUIDs. */
export function renderSfdiskScript(plan: DiskPlan): string {
  return [
    'label: gpt',
    `label-id: ${plan.diskGuid}`,
    'unit: sectors',
    'first-lba: 2048',
    ...plan.partitions.map(
      (p) =>
        `start=${p.startBytes / SECTOR_BYTES}, size=${p.sizeBytes / SECTOR_BYTES}, type=${p.type}, uuid=${p.uuid}, name="${p.name}"`,
    ),
    '',
  ].join('\n');
}
