// GRUB for BIOS on a GPT disk, without grub-install's device probing: core.img (every module
// built in, an early config that finds the root filesystem and runs its grub.cfg) goes into the
// BIOS boot partition, boot.img into the MBR's code area, each told where the next stage is.
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ArborError } from '../common/errors.js';
import { runTool } from './tool.js';

export const GRUB_I386_PC_DIR = '/usr/lib/grub/i386-pc';
const SECTOR_BYTES = 512;

/**
 * Built into core.img, so nothing is loaded from disk (no /boot/grub/i386-pc needed). loadenv:
 * the trial counter of a generated grub.cfg (load_env/save_env, docs/deploy.md).
 */
const GRUB_MODULES = [
  'biosdisk',
  'part_gpt',
  'ext2',
  'search',
  'search_fs_uuid',
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
/** GRUB's driver for each root filesystem an image can have (ext2 reads ext4): it takes ext2's place in the list. */
const GRUB_FS_MODULE = { ext4: 'ext2', xfs: 'xfs' } as const;

export interface GrubCoreOptions {
  /** How GRUB finds the filesystem holding grub.cfg. */
  readonly search: { readonly label: string } | { readonly fsUuid: string };
  /** grub.cfg's path in that filesystem (absolute, no `..`, quotes or spaces); $prefix is its directory. */
  readonly grubCfgPath: string;
  /** The filesystem holding grub.cfg and the kernels (default ext4): its driver is built in. */
  readonly rootFs?: keyof typeof GRUB_FS_MODULE;
}

/** The early config core.img runs: serial and screen console, find the filesystem, run its grub.cfg. */
function renderGrubEarlyConfig(options: GrubCoreOptions): string {
  const { grubCfgPath } = options;
  if (!posix.isAbsolute(grubCfgPath) || grubCfgPath.split('/').includes('..') || /[\s'"]/.test(grubCfgPath))
    throw new ArborError(
      'E_IMAGE_GRUB',
      `grub.cfg path '${grubCfgPath}' must be absolute, without .., quotes or spaces`,
    );
  const search =
    'label' in options.search
      ? `search --no-floppy --label ${options.search.label} --set=root`
      : `search --no-floppy --fs-uuid ${options.search.fsUuid} --set=root`;
  return [
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    search,
    `set prefix=($root)${posix.dirname(grubCfgPath)}`,
    `configfile ($root)${grubCfgPath}`,
    '',
  ].join('\n');
}

/**
 * Makes core.img for i386-pc (grub-mkimage; its output depends only on its inputs). WORKDIR holds
 * the early config while it runs. Throws E_IMAGE_GRUB when it would not fit MAXBYTES.
 */
export function buildGrubCore(workDir: string, options: GrubCoreOptions, maxBytes: number): Buffer {
  const earlyCfg = join(workDir, 'grub-early.cfg');
  const coreImage = join(workDir, 'core.img');
  writeFileSync(earlyCfg, renderGrubEarlyConfig(options));
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
    posix.dirname(options.grubCfgPath),
    ...GRUB_MODULES.map((m) => (m === 'ext2' ? GRUB_FS_MODULE[options.rootFs ?? 'ext4'] : m)),
  ]);
  const core = readFileSync(coreImage);
  if (core.length > maxBytes)
    throw new ArborError('E_IMAGE_GRUB', `core.img is ${core.length} bytes, more than its ${maxBytes}-byte partition`);
  return core;
}

/**
 * Writes CORE at byte COREOFFSET of DISK and makes the disk boot it: boot.img's code (bytes
 * 0..440; the disk signature and protective MBR sfdisk wrote stay) learns core.img's LBA at 0x5c
 * (GRUB_BOOT_MACHINE_KERNEL_SECTOR), and core.img's first sector (diskboot) the LBA of the rest
 * at 0x1f4 (its blocklist).
 */
export function installGrubBios(disk: string, core: Buffer, coreOffset: number): void {
  const bootImgPath = join(GRUB_I386_PC_DIR, 'boot.img');
  if (!existsSync(bootImgPath))
    throw new ArborError('E_IMAGE_TOOL_MISSING', `'${bootImgPath}' is missing: GRUB for BIOS is not installed`, {
      hint: 'install grub-pc-bin',
    });
  const coreLba = BigInt(coreOffset / SECTOR_BYTES);
  const bootImage = readFileSync(bootImgPath);
  bootImage.writeBigUInt64LE(coreLba, 0x5c);
  const fd = openSync(disk, 'r+');
  try {
    writeSync(fd, core, 0, core.length, coreOffset);
    writeSync(fd, bootImage, 0, 440, 0);
    const first = Buffer.alloc(SECTOR_BYTES);
    readSync(fd, first, 0, SECTOR_BYTES, coreOffset);
    first.writeBigUInt64LE(coreLba + 1n, 0x1f4);
    writeSync(fd, first, 0, SECTOR_BYTES, coreOffset);
  } finally {
    closeSync(fd);
  }
}
