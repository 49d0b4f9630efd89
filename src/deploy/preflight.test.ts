// The preflight's pieces: interpreters of scripts and ELF binaries, /proc/modules parsing and the
// missing-modules rule. (Its chroot-style path resolution is tested in in-root.test.ts.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { initPath, interpreterOf, missingModules, parseProcModules } from './preflight.js';

describe('interpreterOf', () => {
  const none = (): Buffer => Buffer.alloc(0);
  it('reads the first word of a #! line', () => {
    expect(interpreterOf(Buffer.from('#! /bin/bash -e\necho\n'), none)).toBe('/bin/bash');
    expect(interpreterOf(Buffer.from('#!/usr/bin/env python3\n'), none)).toBe('/usr/bin/env');
    expect(interpreterOf(Buffer.from('#!\n'), none)).toBeNull();
    expect(interpreterOf(Buffer.from('plain data'), none)).toBeNull();
  });

  it.skipIf(process.arch !== 'x64')("reads PT_INTERP of this machine's /usr/bin/true", () => {
    const bytes = readFileSync('/usr/bin/true');
    const at = (offset: number, length: number): Buffer => bytes.subarray(offset, offset + length);
    expect(interpreterOf(bytes.subarray(0, 256), at)).toBe('/lib64/ld-linux-x86-64.so.2');
  });

  it('finds none in a static ELF file (no PT_INTERP)', () => {
    // A minimal 64-bit little-endian ELF header with one PT_LOAD program header.
    const elf = Buffer.alloc(64 + 56);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2;
    elf[5] = 1;
    elf.writeBigUInt64LE(64n, 32); // e_phoff
    elf.writeUInt16LE(56, 54); // e_phentsize
    elf.writeUInt16LE(1, 56); // e_phnum
    elf.writeUInt32LE(1, 64); // PT_LOAD
    expect(interpreterOf(elf, (o, l) => elf.subarray(o, o + l))).toBeNull();
  });
});

describe('modules', () => {
  it('parses /proc/modules', () => {
    expect(parseProcModules('vfat 24576 1 - Live 0x0\nnvidia 1 0 - Live 0x0 (POE)\n\n')).toEqual(['vfat', 'nvidia']);
  });

  it('counts loaded modules the booted tree provides and the new one lacks, with - and _ alike', () => {
    const booted = new Set(['vfat', 'snd_hda_intel']);
    expect(missingModules(['vfat', 'snd-hda-intel', 'nvidia'], booted, new Set(['snd_hda_intel']))).toEqual(['vfat']);
    expect(missingModules(['vfat', 'nvidia'], null, new Set(['vfat']))).toEqual(['nvidia']);
    expect(missingModules([], booted, new Set())).toEqual([]);
  });
});

describe('initPath', () => {
  it('is the last init= argument, else /sbin/init', () => {
    expect(initPath(['quiet'])).toBe('/sbin/init');
    expect(initPath(['init=/bin/sh', 'init=/usr/lib/systemd/systemd'])).toBe('/usr/lib/systemd/systemd');
  });
});
