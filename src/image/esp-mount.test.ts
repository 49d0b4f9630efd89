import { describe, expect, it } from 'vitest';
import { ESP_MOUNT_UNIT, espDevice, espMountUnit } from './esp-mount.js';

describe('the ESP mount unit', () => {
  it('is named after /sysroot/efi and mounts the FAT volume by its udev name', () => {
    expect(ESP_MOUNT_UNIT).toBe('sysroot-efi.mount');
    expect(espDevice('a1b2c3d4')).toBe('/dev/disk/by-uuid/A1B2-C3D4');
    const unit = espMountUnit('0badf00d');
    expect(unit).toContain('\nWhat=/dev/disk/by-uuid/0BAD-F00D\nWhere=/sysroot/efi\nType=vfat\n');
    expect(unit).toContain('\n[Install]\nWantedBy=local-fs.target\n');
  });

  it('refuses what is not a volume id', () => {
    expect(() => espDevice('xyz')).toThrow(/not a FAT volume id/);
  });
});
