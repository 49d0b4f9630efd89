import { describe, expect, it } from 'vitest';
import {
  MiB,
  derivedUuid,
  derivedVolumeId,
  diskNeedBytes,
  fatSectorsPerCluster,
  imageKargs,
  imageSeed,
  parseImageRootFs,
  parseSizeBytes,
  rootNeedBytes,
  planDisk,
  renderSfdiskScript,
} from './plan.js';

const inputs = {
  commit: 'a'.repeat(64),
  bootloader: 'systemd-boot' as const,
  sizeBytes: null,
  kargs: ['rw'],
  remote: null,
  epoch: 1_700_000_000,
};

describe('image identifiers', () => {
  it('derive the same ids from the same inputs and other ids from any other input', () => {
    const seed = imageSeed(inputs);
    expect(derivedUuid(seed, 'disk')).toBe(derivedUuid(imageSeed({ ...inputs }), 'disk'));
    for (const other of [
      { ...inputs, kargs: ['ro'] },
      { ...inputs, epoch: 1 },
      { ...inputs, bootloader: 'grub-bios' as const },
      { ...inputs, remote: { name: 'o', url: 'http://x', keys: [] } },
    ])
      expect(derivedUuid(imageSeed(other), 'disk')).not.toBe(derivedUuid(seed, 'disk'));
    expect(derivedUuid(seed, 'disk')).not.toBe(derivedUuid(seed, 'partition root'));
  });

  it("keep an ext4 image's ids as they were before xfs, and give an xfs image others", () => {
    const seed = imageSeed(inputs).toString('hex');
    expect(imageSeed({ ...inputs, rootFs: 'ext4' }).toString('hex')).toBe(seed);
    expect(imageSeed({ ...inputs, rootFs: 'xfs' }).toString('hex')).not.toBe(seed);
  });

  it('are version 4 RFC 4122 UUIDs and 8-digit FAT volume ids', () => {
    expect(derivedUuid(imageSeed(inputs), 'x')).toMatch(
      /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/,
    );
    expect(derivedVolumeId(imageSeed(inputs))).toMatch(/^[0-9a-f]{8}$/);
  });
});

describe('root filesystems', () => {
  it.each(['ext4', 'xfs'])('knows %s', (name) => expect(parseImageRootFs(name)).toBe(name));

  it('refuses any other with E_IMAGE_ROOT_FS_UNSUPPORTED (exit 2), naming the ones it knows', () => {
    expect(() => parseImageRootFs('btrfs')).toThrow(
      expect.objectContaining({
        code: 'E_IMAGE_ROOT_FS_UNSUPPORTED',
        exit: 2,
        hint: 'use --root-fs ext4 or --root-fs xfs',
      }),
    );
  });

  it("sizes an xfs root at mkfs.xfs's 300 MiB minimum at least, and holds blocks, inodes and log above it", () => {
    const small = { blockBytes: 4 * MiB, inodes: 200 };
    expect(rootNeedBytes(small, 'xfs')).toBe(300 * MiB);
    const big = { blockBytes: 900 * MiB, inodes: 40_000 };
    // Its blocks, 512-byte inodes for a quarter more, the 64 MiB log, and room for the AG metadata.
    expect(rootNeedBytes(big, 'xfs')).toBeGreaterThan(900 * MiB + 50_000 * 512 + 64 * MiB);
    expect(rootNeedBytes(big, 'xfs') % MiB).toBe(0);
  });
});

describe('parseSizeBytes', () => {
  it.each([
    ['8G', 8 * 1024 * MiB],
    ['512M', 512 * MiB],
    ['1.5GiB', 1536 * MiB],
    ['4096', 4096],
    ['64k', 65536],
  ])('reads %s', (text, bytes) => expect(parseSizeBytes(text)).toBe(bytes));

  it.each(['', '0', '-1G', '8X', 'lots'])('refuses %j with E_USAGE', (text) => {
    expect(() => parseSizeBytes(text)).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });
});

describe('planDisk', () => {
  it('puts the ESP at 1 MiB and the root partition up to the backup GPT', () => {
    const seed = imageSeed(inputs);
    const plan = planDisk(seed, 'systemd-boot', 512 * MiB, 64 * MiB);
    expect(plan.partitions.map((p) => [p.name, p.startBytes / MiB, p.sizeBytes / MiB])).toEqual([
      ['esp', 1, 64],
      ['root', 65, 446],
    ]);
    expect(renderSfdiskScript(plan)).toContain(
      `start=133120, size=913408, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=${plan.partitions[1]?.uuid}, name="root"`,
    );
  });

  it('gives grub-bios a 1 MiB BIOS boot partition and no ESP', () => {
    const plan = planDisk(imageSeed(inputs), 'grub-bios', 100 * MiB, 64 * MiB);
    expect(plan.partitions.map((p) => [p.name, p.sizeBytes / MiB])).toEqual([
      ['bios-boot', 1],
      ['root', 97],
    ]);
    expect(diskNeedBytes('grub-bios', 64 * MiB, 97 * MiB)).toBe(100 * MiB);
  });
});

describe('imageKargs', () => {
  it.each([
    [[], ['root=UUID=abcd', 'rw']],
    [['console=ttyS0'], ['root=UUID=abcd', 'rw', 'console=ttyS0']],
    [
      ['root=LABEL=x', 'ro'],
      ['root=LABEL=x', 'ro'],
    ],
  ])('turns %j into %j', (kargs, expected) => expect(imageKargs(kargs, 'ABCD')).toEqual(expected));
});

describe('fatSectorsPerCluster', () => {
  it.each([
    [64 * MiB, 1],
    [128 * MiB, 2],
    [400 * MiB, 8],
    [4096 * MiB, 8],
  ])('gives a %d-byte ESP %d sectors per cluster, at least 65525 clusters', (size, spc) => {
    expect(fatSectorsPerCluster(size)).toBe(spc);
    expect(size / (spc * 512)).toBeGreaterThan(65525);
  });
});
