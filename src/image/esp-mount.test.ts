import { describe, expect, it } from 'vitest';
import { espDevice, espMountUnit, mountUnitName } from './esp-mount.js';

describe('the ESP mount unit', () => {
  it('mounts the FAT volume by its udev name', () => {
    expect(espDevice('a1b2c3d4')).toBe('/dev/disk/by-uuid/A1B2-C3D4');
    const unit = espMountUnit(espDevice('0badf00d'), '/sysroot/efi');
    expect(unit).toContain('\nWhat=/dev/disk/by-uuid/0BAD-F00D\nWhere=/sysroot/efi\nType=vfat\n');
    expect(unit).toContain('\n[Install]\nWantedBy=local-fs.target\n');
  });

  it('is named as systemd-escape --path names it', () => {
    expect(mountUnitName('/sysroot/efi')).toBe('sysroot-efi.mount');
    expect(mountUnitName('/sysroot/boot/efi')).toBe('sysroot-boot-efi.mount');
    expect(mountUnitName('/sysroot/my-esp')).toBe('sysroot-my\\x2desp.mount');
    expect(mountUnitName('/sysroot/.esp')).toBe('sysroot-.esp.mount');
    expect(mountUnitName('/')).toBe('-.mount');
  });

  it('refuses what is not a volume id', () => {
    expect(() => espDevice('xyz')).toThrow(/not a FAT volume id/);
  });
});
