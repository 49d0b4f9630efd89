// The mount of an installed system's EFI System Partition on the booted host. Arbor keeps the
// entries and kernels systemd-boot reads on the ESP at `[sysroot] esp=PATH`, a path inside the
// sysroot, which the booted deployment sees as /sysroot/PATH: a mount unit in the deployment's /etc
// puts the ESP there (systemd's gpt-auto generator, if it mounts the ESP at all, does so at the
// deployment's own /boot or /efi, which Arbor's commands never look at). Being in /etc, the /etc
// merge carries it to every later deployment.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The FAT volume id VOLUMEID (8 hex digits) as udev names the filesystem: `/dev/disk/by-uuid/ABCD-1234`. */
export function espDevice(volumeId: string): string {
  if (!/^[0-9a-f]{8}$/i.test(volumeId)) throw new Error(`not a FAT volume id: '${volumeId}'`);
  const id = volumeId.toUpperCase();
  return `/dev/disk/by-uuid/${id.slice(0, 4)}-${id.slice(4)}`;
}

/** The name systemd gives the mount unit of WHERE (an absolute, normal path): systemd-escape --path. */
export function mountUnitName(where: string): string {
  const path = where
    .split('/')
    .filter((p) => p !== '')
    .join('/');
  if (path === '') return '-.mount';
  const escaped = [...Buffer.from(path, 'utf8')]
    .map((b, i) => {
      const c = String.fromCharCode(b);
      if (c === '/') return '-';
      return /[A-Za-z0-9:_]/.test(c) || (c === '.' && i > 0) ? c : `\\x${b.toString(16).padStart(2, '0')}`;
    })
    .join('');
  return `${escaped}.mount`;
}

/** The mount unit's text: the vfat filesystem WHAT (a device path) at WHERE. */
export function espMountUnit(what: string, where: string): string {
  return [
    '# The EFI System Partition, where Arbor writes the boot entries and kernels systemd-boot reads',
    '# ([sysroot] esp in /sysroot/arbor/repo/config). Written when the system was installed.',
    '[Unit]',
    'Description=EFI System Partition for Arbor',
    'Documentation=file:///usr/share/doc/arbor/image.md',
    '',
    '[Mount]',
    `What=${what}`,
    `Where=${where}`,
    'Type=vfat',
    // Only root reads the ESP; kernel images and entries need no other reader.
    'Options=umask=0077,shortname=winnt',
    '',
    '[Install]',
    'WantedBy=local-fs.target',
    '',
  ].join('\n');
}

/**
 * Installs, enabled, into the /etc of the deployment at DEPLOYMENTDIR the unit mounting the vfat
 * filesystem WHAT at /sysroot/ESPMOUNT; returns the unit's name.
 */
export function installEspMount(deploymentDir: string, what: string, espMount: string): string {
  const where = `/sysroot${espMount}`;
  const name = mountUnitName(where);
  const units = join(deploymentDir, 'etc/systemd/system');
  mkdirSync(join(units, 'local-fs.target.wants'), { recursive: true });
  writeFileSync(join(units, name), espMountUnit(what, where), { mode: 0o644 });
  symlinkSync(`../${name}`, join(units, 'local-fs.target.wants', name));
  return name;
}
