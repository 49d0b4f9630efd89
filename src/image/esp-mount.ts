// The mount of an image's EFI System Partition on the booted host. Arbor keeps the entries and
// kernels systemd-boot reads on the ESP at `[sysroot] esp=/efi`, a path inside the sysroot, which
// the booted deployment sees as /sysroot/efi: a mount unit in the deployment's /etc puts the ESP
// there (systemd's gpt-auto generator, if it mounts the ESP at all, does so at the deployment's
// /boot or /efi, which Arbor's commands never look at). Being in /etc, the /etc merge carries it
// to every later deployment.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESP_MOUNT } from './staging.js';

/** The unit's name: systemd names a mount unit after its escaped mount point. */
export const ESP_MOUNT_UNIT = `sysroot-${ESP_MOUNT.slice(1)}.mount`;

/** The FAT volume id VOLUMEID (8 hex digits) as udev names the filesystem: `/dev/disk/by-uuid/ABCD-1234`. */
export function espDevice(volumeId: string): string {
  if (!/^[0-9a-f]{8}$/i.test(volumeId)) throw new Error(`not a FAT volume id: '${volumeId}'`);
  const id = volumeId.toUpperCase();
  return `/dev/disk/by-uuid/${id.slice(0, 4)}-${id.slice(4)}`;
}

/** The mount unit's text for the ESP with FAT volume id VOLUMEID. */
export function espMountUnit(volumeId: string): string {
  return [
    '# The EFI System Partition, where Arbor writes the boot entries and kernels systemd-boot reads',
    '# ([sysroot] esp=/efi in /sysroot/arbor/repo/config). Written by `arbor image build`.',
    '[Unit]',
    'Description=EFI System Partition for Arbor',
    'Documentation=file:///usr/share/doc/arbor/image.md',
    '',
    '[Mount]',
    `What=${espDevice(volumeId)}`,
    `Where=/sysroot${ESP_MOUNT}`,
    'Type=vfat',
    // Only root reads the ESP; kernel images and entries need no other reader.
    'Options=umask=0077,shortname=winnt',
    '',
    '[Install]',
    'WantedBy=local-fs.target',
    '',
  ].join('\n');
}

/** Installs the ESP's mount unit, enabled, into the /etc of the deployment at DEPLOYMENTDIR. */
export function installEspMount(deploymentDir: string, volumeId: string): void {
  const units = join(deploymentDir, 'etc/systemd/system');
  mkdirSync(join(units, 'local-fs.target.wants'), { recursive: true });
  writeFileSync(join(units, ESP_MOUNT_UNIT), espMountUnit(volumeId), { mode: 0o644 });
  symlinkSync(`../${ESP_MOUNT_UNIT}`, join(units, 'local-fs.target.wants', ESP_MOUNT_UNIT));
}
