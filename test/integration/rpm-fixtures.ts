// Builds the RPM fixtures of fixtures/rpm/ with rpmbuild at test time, and edits built packages
// (then re-signs their digests) so tests can reach the checks behind the header digests.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  HEADER_PREAMBLE_BYTES,
  LEAD_BYTES,
  decodeHeader,
  headerLength,
  signaturePadding,
} from '../../src/rpm-compose/rpm/header.js';
import { SigTag, Tag } from '../../src/rpm-compose/rpm/tags.js';
import { ROOT } from '../support/cli.js';

export const HAVE_RPMBUILD = spawnSync('rpmbuild', ['--version']).status === 0;
const SPEC_DIR = join(ROOT, 'fixtures/rpm');

/** rpmbuild's payload mode for each compressor the payload fixture is built with. */
export const PAYLOADS: readonly (readonly [compressor: string, mode: string])[] = [
  ['gzip', 'w9.gzdio'],
  ['bzip2', 'w9.bzdio'],
  ['xz', 'w6.xzdio'],
  ['lzma', 'w6.lzdio'],
  ['zstd', 'w19.zstdio'],
  ['none', 'w0.ufdio'],
];

/** Builds one spec into `outDir`; returns the path of the binary package. */
export function buildRpm(spec: string, outDir: string, defines: Record<string, string> = {}): string {
  const args = [
    '-bb',
    '--quiet',
    '--define',
    `_topdir ${outDir}/top`,
    '--define',
    `_rpmdir ${outDir}/rpms`,
    '--define',
    '_build_name_fmt %{NAME}.rpm',
  ];
  for (const [key, value] of Object.entries(defines)) args.push('--define', `${key} ${value}`);
  const r = spawnSync('rpmbuild', [...args, join(SPEC_DIR, spec)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rpmbuild ${spec} failed:\n${r.stderr}`);
  const name = /^Name:\s+(\S+)/m
    .exec(readFileSync(join(SPEC_DIR, spec), 'utf8'))![1]!
    .replace('%{compressor}', defines.compressor ?? 'gzip');
  const path = join(outDir, 'rpms', `${name}.rpm`);
  if (!existsSync(path)) throw new Error(`rpmbuild ${spec} made no ${path}`);
  return path;
}

/** Builds the source package of a spec into `outDir`. */
function buildSrpm(spec: string, outDir: string): string {
  const args = ['-bs', '--quiet', '--define', `_topdir ${outDir}/top`, '--define', `_srcrpmdir ${outDir}/srpms`];
  const r = spawnSync('rpmbuild', [...args, join(SPEC_DIR, spec)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rpmbuild -bs ${spec} failed:\n${r.stderr}`);
  const name = readdirSync(join(outDir, 'srpms')).find((f) => f.endsWith('.src.rpm'));
  if (name === undefined) throw new Error(`rpmbuild -bs ${spec} wrote no source package`);
  return join(outDir, 'srpms', name);
}

/** Every fixture: name → built package path. */
export function buildAllFixtures(outDir: string): Map<string, string> {
  const built = new Map<string, string>();
  built.set('basic', buildRpm('basic.spec', outDir));
  for (const [compressor, mode] of PAYLOADS)
    built.set(`payload-${compressor}`, buildRpm('payload.spec', outDir, { compressor, payload: mode }));
  built.set('source', buildSrpm('basic.spec', outDir));
  return built;
}

/** Where the parts of a package lie, from its bytes. */
export function layoutOf(bytes: Buffer): { sigStart: number; headerStart: number; payloadStart: number } {
  const context = { pkg: 'fixture', part: 'layout' };
  const sigLength = headerLength(bytes.subarray(LEAD_BYTES, LEAD_BYTES + HEADER_PREAMBLE_BYTES), context);
  const headerStart = LEAD_BYTES + sigLength + signaturePadding(sigLength);
  const payloadStart =
    headerStart + headerLength(bytes.subarray(headerStart, headerStart + HEADER_PREAMBLE_BYTES), context);
  return { sigStart: LEAD_BYTES, headerStart, payloadStart };
}

/**
 * Recomputes, in place, every digest of a package whose bytes were edited without changing the
 * layout: the payload digests in the main header (only meaningful for uncompressed payloads), then
 * the header's SHA-256 and SHA-1 and the MD5 over header+payload in the signature. The entry
 * positions come from `original`, so edits may even break the structure being re-signed.
 */
export function resign(edited: Buffer, original: Buffer): Buffer {
  const out = Buffer.from(edited);
  const { sigStart, headerStart, payloadStart } = layoutOf(original);
  const sig = decodeHeader(
    original.subarray(sigStart, sigStart + headerLength(original.subarray(sigStart), { pkg: 'fixture', part: 'sig' })),
    { pkg: 'fixture', part: 'sig' },
  );
  const header = decodeHeader(original.subarray(headerStart, payloadStart), { pkg: 'fixture', part: 'header' });
  const storeOf = (h: typeof sig, start: number): number => start + HEADER_PREAMBLE_BYTES + h.tags.length * 16;
  const writeHex = (h: typeof sig, start: number, tag: number, hex: string): void => {
    const entry = h.entry(tag);
    if (entry) out.write(hex, storeOf(h, start) + entry.offset, 'latin1');
  };
  const payload = out.subarray(payloadStart);
  if (header.string(Tag.PayloadCompressor) === undefined) {
    const digest = createHash('sha256').update(payload).digest('hex');
    writeHex(header, headerStart, Tag.PayloadDigest, digest);
    writeHex(header, headerStart, Tag.PayloadDigestAlt, digest);
  }
  const headerBytes = out.subarray(headerStart, payloadStart);
  writeHex(sig, sigStart, SigTag.Sha256, createHash('sha256').update(headerBytes).digest('hex'));
  writeHex(sig, sigStart, SigTag.Sha1, createHash('sha1').update(headerBytes).digest('hex'));
  const md5 = sig.entry(SigTag.Md5);
  if (md5)
    createHash('md5')
      .update(headerBytes)
      .update(payload)
      .digest()
      .copy(out, storeOf(sig, sigStart) + md5.offset);
  return out;
}

/** Absolute offset in a package of the data of a main-header tag. */
export function stringOffset(bytes: Buffer, tag: number): number {
  const { headerStart, payloadStart } = layoutOf(bytes);
  const header = decodeHeader(bytes.subarray(headerStart, payloadStart), { pkg: 'fixture', part: 'header' });
  const entry = header.entry(tag);
  if (!entry) throw new Error(`no tag ${tag} in the fixture`);
  return headerStart + HEADER_PREAMBLE_BYTES + header.tags.length * 16 + entry.offset;
}
