// Writing a disk file without mounting or loop devices: the GPT (sfdisk on the file), a FAT
// filesystem at a partition's offset (mkfs.vfat --offset, then mtools), and reading it back.
import { closeSync, ftruncateSync, openSync, readdirSync, utimesSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { type DiskPlan, fatSectorsPerCluster, renderSfdiskScript } from './plan.js';
import { runTool } from './tool.js';

const SECTOR_BYTES = 512;
/** mtools refuses FAT images whose geometry it cannot check; ours come from mkfs.vfat. */
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1' };

/**
 * Writes PLAN's GPT onto DISK: with CREATE, DISK is made first (new, sparse, the plan's size);
 * otherwise it exists (a device, or a file of at least the plan's size) and only the tables change.
 */
export function writeGpt(disk: string, plan: DiskPlan, create = true): void {
  if (create) {
    const fd = openSync(disk, 'wx', 0o644);
    try {
      ftruncateSync(fd, plan.sizeBytes);
    } finally {
      closeSync(fd);
    }
  }
  runTool('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', disk], { input: renderSfdiskScript(plan) });
}

export interface FatOptions {
  readonly disk: string;
  readonly offsetBytes: number;
  readonly sizeBytes: number;
  readonly label: string;
  /** 8 hex digits. */
  readonly volumeId: string;
  /** Seconds: the time of every entry (and of mkfs.vfat's own). */
  readonly epoch: number;
  /** Its content: copied recursively with mtools. */
  readonly source: string;
}

/**
 * Makes a FAT32 filesystem at the offset and copies SOURCE into it. Every time on it is EPOCH:
 * the sources' mtimes are set to it first (mcopy -m keeps them), SOURCE_DATE_EPOCH covers the
 * rest, and --invariant mkfs.vfat's own.
 */
export function makeFat(o: FatOptions): void {
  const env = { ...MTOOLS_ENV, SOURCE_DATE_EPOCH: String(o.epoch) };
  runTool(
    'mkfs.vfat',
    [
      '-F',
      '32',
      '-S',
      '512',
      '-s',
      String(fatSectorsPerCluster(o.sizeBytes)),
      '-n',
      o.label,
      // On a whole disk (install to-disk) mkfs.vfat refuses a device with partitions, and might
      // fake an MBR: the filesystem is one partition of it, so neither applies (-I, --mbr=n).
      '-I',
      '--mbr=n',
      // --invariant sets a constant volume id too: -i must come after it.
      '--invariant',
      '-i',
      o.volumeId,
      '--offset',
      String(o.offsetBytes / SECTOR_BYTES),
      o.disk,
      String(o.sizeBytes / 1024),
    ],
    { env },
  );
  setTimes(o.source, o.epoch);
  const top = readdirSync(o.source)
    .sort()
    .map((name) => join(o.source, name));
  if (top.length > 0)
    runTool('mcopy', ['-i', `${o.disk}@@${o.offsetBytes}`, '-s', '-p', '-m', '-Q', ...top, '::/'], { env });
}

function setTimes(path: string, epoch: number): void {
  if (lstatSync(path).isDirectory()) for (const name of readdirSync(path)) setTimes(join(path, name), epoch);
  utimesSync(path, epoch, epoch);
}

/** The bytes of PATH (e.g. `/loader/entries/x.conf`) on the FAT filesystem at OFFSETBYTES of DISK. */
export function readFatFile(disk: string, offsetBytes: number, path: string): Buffer {
  return runTool('mcopy', ['-n', '-i', `${disk}@@${offsetBytes}`, `::${path}`, '-'], { env: MTOOLS_ENV }).stdout;
}

/** Names in directory DIR of the FAT filesystem at OFFSETBYTES of DISK (without . and ..), sorted. */
export function listFat(disk: string, offsetBytes: number, dir: string): string[] {
  const out = runTool('mdir', ['-b', '-i', `${disk}@@${offsetBytes}`, `::${dir}`], { env: MTOOLS_ENV }).stdout;
  return out
    .toString('utf8')
    .split('\n')
    .map((line) => line.trim().replace(/\/$/, ''))
    .filter((line) => line !== '')
    .map((line) => line.slice(line.lastIndexOf('/') + 1))
    .filter((name) => name !== '.' && name !== '..')
    .sort();
}
