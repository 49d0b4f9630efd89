// `arbor image build`: a bootable disk image from a commit, the same bytes for the same inputs, without
// root or loop devices (an xfs root needs both, and is not byte-reproducible). Made next to the output
// under temporary names and renamed into place at the end; a failure leaves nothing behind.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError, inStep } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import {
  type ImageStep,
  type LayoutOptions,
  type PreparedLayout,
  type StagedLayout,
  prepareLayout,
  stageLayout,
  writeLayout,
} from './layout.js';
import {
  type DiskPlan,
  type ImageBootloader,
  type ImageRootFs,
  MiB,
  defaultDiskBytes,
  planDisk,
  roundUpMiB,
} from './plan.js';
import { runTool } from './tool.js';
import { assertXfsBuildable } from './xfs.js';

export interface ImageBuildOptions extends LayoutOptions {
  readonly output: string;
  readonly format: 'raw' | 'qcow2';
  readonly force: boolean;
  /**
   * Called with the temporary directory (next to the output) once it exists, so a caller that is
   * interrupted can remove it; it is removed here whenever the build ends.
   */
  readonly onWorkDir?: (dir: string) => void;
}

/** Where a disk's partitions are, as results report them. */
interface PartitionInfo {
  readonly name: string;
  readonly start: number;
  readonly size: number;
  readonly uuid: string;
}

/** An image's summary (its `size` is the raw disk's: a qcow2 file is smaller), where it is, and its digest. */
export interface ImageBuildResult extends DiskSummary {
  readonly output: string;
  readonly format: 'raw' | 'qcow2';
  /** SHA-256 of the output file. */
  readonly sha256: string;
  /** Wall time of each step the build ran, in seconds (to the millisecond), in the order they ran. */
  readonly stepSeconds: Partial<Record<ImageStep, number>>;
}

/** Builds the image (see the file comment). */
export async function buildImage(options: ImageBuildOptions): Promise<ImageBuildResult> {
  const output = resolve(options.output);
  if (!options.force && lstatSync(output, { throwIfNoEntry: false }) !== undefined)
    throw new UsageError('E_IMAGE_OUTPUT_EXISTS', `'${options.output}' exists`, {
      hint: 'pass --force to replace it, or choose another path',
    });
  if (!existsSync(dirname(output)))
    throw new UsageError('E_IMAGE_OUTPUT_DIR', `the directory of '${options.output}' does not exist`);
  if (options.rootFs === 'xfs') assertXfsBuildable();

  const clock = stepClock(options.onProgress);
  options = { ...options, onProgress: clock.onProgress };
  // Checked on the source before anything is copied: the commit and its kernel.
  const prepared = prepareLayout(options);
  // Files the build makes (the repository's directories, boot entries) keep their staged modes:
  // the same umask for every builder, or two users would build two images.
  const umask = process.umask(0o022);
  const work = mkdtempSync(join(dirname(output), `.${basename(output)}.arbor-image-`));
  options.onWorkDir?.(work);
  let removing: Promise<void> | null = null;
  try {
    const layout = await stageLayout(work, options, prepared);
    const need = layout.needBytes;
    if (options.sizeBytes !== null && options.sizeBytes < need)
      throw new UsageError(
        'E_IMAGE_TOO_SMALL',
        `--size ${mib(options.sizeBytes)} is too small: this image needs at least ${mib(need)} (${need} bytes)`,
        { hint: `pass --size ${Math.ceil(need / MiB)}M or more, or leave --size out` },
      );
    const sizeBytes = options.sizeBytes === null ? defaultDiskBytes(need) : roundUpMiB(options.sizeBytes);
    const plan = planDisk(prepared.seed, options.bootloader, sizeBytes, layout.espSizeBytes);
    const raw = join(work, 'disk.raw');
    await writeLayout({ disk: raw, create: true, work }, plan, layout, prepared, options);
    // The staged tree is in the image now: removing its tens of thousands of entries (seconds)
    // runs in another process while the digest is computed.
    removing = removeTreeAside(layout.staging);

    let finished = raw;
    if (options.format === 'qcow2') {
      options.onProgress?.('convert', null);
      finished = join(work, 'disk.qcow2');
      await inStep('converting to qcow2', async () => {
        runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, finished]);
      });
      rmSync(raw);
    }
    options.onProgress?.('digest', null);
    const sha256 = await fileSha256(finished);
    renameSync(finished, output);
    const stepSeconds = clock.stop();
    return {
      output,
      format: options.format,
      ...diskSummary(options, plan, prepared, layout),
      sha256,
      stepSeconds,
    };
  } finally {
    await removing;
    rmSync(work, { recursive: true, force: true });
    process.umask(umask);
  }
}

/** What a written disk holds, as `image build` and `install to-disk` report it. */
export interface DiskSummary {
  readonly bootloader: ImageBootloader;
  readonly rootFs: ImageRootFs;
  /** The disk's size in bytes. */
  readonly size: number;
  readonly partitions: readonly PartitionInfo[];
  readonly rootFsUuid: string;
  readonly commit: Checksum;
  readonly deployment: { stateroot: string; checksum: Checksum; serial: number; path: string };
  readonly kargs: readonly string[];
}

/** The summary of a disk written from PLAN, PREPARED and LAYOUT. */
export function diskSummary(
  options: Pick<LayoutOptions, 'bootloader' | 'rootFs'>,
  plan: DiskPlan,
  prepared: PreparedLayout,
  layout: StagedLayout,
): DiskSummary {
  return {
    bootloader: options.bootloader,
    rootFs: options.rootFs ?? 'ext4',
    size: plan.sizeBytes,
    partitions: plan.partitions.map((p) => ({ name: p.name, start: p.startBytes, size: p.sizeBytes, uuid: p.uuid })),
    rootFsUuid: prepared.rootFsUuid,
    commit: prepared.commit,
    deployment: layout.deployment,
    kargs: prepared.kargs,
  };
}

export const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/**
 * Times the steps progress reports: each lasts until the next one starts (a pull reports many
 * times within its step); `stop()` ends the last and returns seconds per step.
 */
function stepClock(report: LayoutOptions['onProgress']): {
  onProgress: NonNullable<LayoutOptions['onProgress']>;
  stop: () => Partial<Record<ImageStep, number>>;
} {
  const seconds: Partial<Record<ImageStep, number>> = {};
  let current: { step: ImageStep; startNs: bigint } | null = null;
  const end = (): void => {
    if (current === null) return;
    const ms = Number((process.hrtime.bigint() - current.startNs) / 1_000_000n);
    seconds[current.step] = Math.round((seconds[current.step] ?? 0) * 1000 + ms) / 1000;
    current = null;
  };
  return {
    onProgress: (step, detail) => {
      if (current?.step !== step) {
        end();
        current = { step, startNs: process.hrtime.bigint() };
      }
      report?.(step, detail);
    },
    stop: () => {
      end();
      return seconds;
    },
  };
}

/**
 * Removes DIR with `rm -rf` in a child process, so that it runs on another core; resolves when it
 * ends, whatever its outcome (the caller's rmSync removes what is left and reports failures).
 */
function removeTreeAside(dir: string): Promise<void> {
  return new Promise((done) => {
    spawn('rm', ['-rf', '--', dir], { stdio: 'ignore' })
      .on('error', () => done())
      .on('close', () => done());
  });
}

/**
 * SHA-256 of the file at PATH, as hex. Synchronous reads (a stream's reads queue on libuv's
 * threads, and were measured slower), with a turn of the event loop after each so that SIGINT or
 * SIGTERM during the build is handled before the output is renamed into place.
 */
async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(8 * MiB);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) {
      hash.update(buffer.subarray(0, n));
      await new Promise((turn) => setImmediate(turn));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
