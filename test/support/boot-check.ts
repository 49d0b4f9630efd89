// What the QEMU boot tests share: the tooling they need, the boot trees they commit or lay out,
// booting a sysroot's default entry directly, and what every successful boot must report.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { present } from '../../src/common/errors.js';
import { buildRootImage, entryFiles, imageToolingMissing, readDefaultBootEntry } from './boot-image.js';
import { BOOT_END_MARKER, hasBootTreeTooling, parseBootMarkers, writeBootTree } from './boot-tree.js';
import { TEST_CACHE_DIR, type TestKernel, buildBusyboxInitramfs, fetchTestKernel } from './kernel.js';
import { type BootResult, bootDirect, hasQemuTooling } from './qemu.js';
import { hasCommand } from './tool.js';

export const BOOT_STATEROOT = 'os';
/** What the admin writes into /etc (ETC_MARKER_FILE) before the boot that must still see it. */
export const ETC_CHANGE = 'admin-change-before-upgrade';
/** What the stateroot's var holds (VAR_MARKER_FILE): a boot must mount it. */
export const VAR_CONTENT = 'stateroot-var-kept';

/** QEMU, the disk image tools, the boot tree tools, and a test kernel from the cache or apt-get. */
export const HAVE_QEMU_BOOT_TOOLING =
  hasQemuTooling() &&
  imageToolingMissing().length === 0 &&
  hasBootTreeTooling() &&
  (existsSync(join(TEST_CACHE_DIR, 'kernel/current')) || hasCommand('apt-get'));

/** A deployment a boot must report: its version marker, commit checksum and serial. */
export interface ExpectedDeployment {
  readonly version: string;
  readonly checksum: string;
  readonly serial: number;
}

/** The test kernel, one busybox initramfs, and a boot tree per version under `dir` (`dir/tree-VERSION`). */
export async function prepareBootTrees(
  dir: string,
  versions: readonly string[],
): Promise<{ kernel: TestKernel; trees: Map<string, string> }> {
  const kernel = await fetchTestKernel();
  // One initramfs in every tree: the trees share a boot checksum, so one kernel directory in /boot.
  const initramfsPath = join(dir, 'initramfs.img');
  buildBusyboxInitramfs(kernel, initramfsPath);
  const trees = new Map<string, string>();
  for (const version of versions) {
    const tree = join(dir, `tree-${version}`);
    mkdirSync(tree);
    writeBootTree(tree, { kernel, initramfsPath, version });
    trees.set(version, tree);
  }
  return { kernel, trees };
}

/**
 * Direct kernel boot of SYSROOT's default entry (its kernel and initrd, `append` or its options),
 * the sysroot as the only disk, built at `disk` (left there for the caller to reuse or remove).
 */
export async function bootDefaultEntry(
  sysroot: string,
  disk: string,
  options: { append?: string; untilMarker?: boolean } = {},
): Promise<{ options: string; result: BootResult }> {
  const entry = readDefaultBootEntry(sysroot);
  const files = entryFiles(entry, join(sysroot, 'boot'));
  expect(files.initrd).toHaveLength(1);
  if (!existsSync(disk)) buildRootImage(sysroot, disk);
  const result = await bootDirect(
    {
      kernel: files.linux,
      initrd: present(files.initrd[0], 'the initrd'),
      append: options.append ?? entry.options,
      disk,
    },
    { ...(options.untilMarker !== false && { marker: BOOT_END_MARKER }), snapshot: true },
  );
  return { options: entry.options, result };
}

/**
 * The assertions every successful boot shares: EXPECTED is the root, /usr is read-only, /etc is
 * writable with ETC_CHANGE, the stateroot's var is mounted. The serial transcript is in the
 * failure message. Returns the kernel command line the guest got.
 */
export function expectBootedDeployment(result: BootResult, expected: ExpectedDeployment): string {
  const markers = parseBootMarkers(result.output);
  const context = `serial console (${result.elapsedMs} ms):\n${result.output.slice(-6000)}`;
  expect(result.timedOut, context).toBe(false);
  expect(markers.failure, context).toBeNull();
  expect(markers, context).toMatchObject({
    done: true,
    version: expected.version,
    commit: expected.checksum,
    serial: String(expected.serial),
    rootMount: `/arbor/deploy/${BOOT_STATEROOT}/deploy/${expected.checksum}.${expected.serial}`,
    usrReadOnly: true,
    etcWritable: true,
    etcMarker: ETC_CHANGE,
    varMarker: VAR_CONTENT,
  });
  return markers.cmdline ?? '';
}
