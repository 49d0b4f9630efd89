// `arbor image build`: a bootable disk image from a commit, without root or loop devices, the same
// bytes for the same commit and options. Everything is made next to the output under temporary
// names and renamed into place at the end; a failure leaves nothing behind.
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ArborError, UsageError, inStep, inStepSync } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { findKernel } from '../deploy/index.js';
import { type FirstbootConfig, installFirstboot } from '../firstboot/index.js';
import { type PullProgress, Repo, resolveRev } from '../repo/index.js';
import { buildGrubCore, installGrubBios } from './grub-bios.js';
import { makeFat } from './disk.js';
import { writeGpt } from './disk.js';
import {
  type DiskPlan,
  type ImageBootloader,
  MiB,
  defaultDiskBytes,
  derivedUuid,
  derivedVolumeId,
  diskNeedBytes,
  espBytes,
  imageKargs,
  imageSeed,
  planDisk,
  rootInodeCount,
  rootNeedBytes,
  roundUpMiB,
} from './plan.js';
import { applyInodeSpecs, makeExt4, planRootInodes } from './root-fs.js';
import { ESP_MOUNT, stageSysroot } from './staging.js';
import { runTool } from './tool.js';

const SYSTEMD_BOOT_EFI = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
/** The root filesystem's label: `root=LABEL=sysroot` finds it too. */
const ROOT_LABEL = 'sysroot';

/** The steps of a build, in order, as progress reports them. */
const IMAGE_STEPS = ['pull', 'deploy', 'measure', 'root-fs', 'boot', 'convert', 'digest'] as const;
export type ImageStep = (typeof IMAGE_STEPS)[number];

export interface ImageBuildOptions {
  readonly repo: string;
  readonly rev: string;
  readonly output: string;
  readonly format: 'raw' | 'qcow2';
  readonly bootloader: ImageBootloader;
  /** The disk size in bytes; null: what it needs plus a margin (defaultDiskBytes). */
  readonly sizeBytes: number | null;
  /** Kernel arguments, after `root=UUID=<the root filesystem> rw` (imageKargs). */
  readonly kargs: readonly string[];
  readonly stateroot: string;
  readonly remote: { readonly name: string; readonly url: string; readonly keys: readonly Buffer[] } | null;
  /** SOURCE_DATE_EPOCH; null: the commit's timestamp. */
  readonly epoch: number | null;
  /** A first-boot configuration installed into the deployment (docs/firstboot.md); its kernel arguments are the caller's to merge into `kargs`. */
  readonly firstboot?: FirstbootConfig | null;
  readonly force: boolean;
  readonly onProgress?: (step: ImageStep, detail: PullProgress | null) => void;
  /**
   * Called with the temporary directory (next to the output) once it exists, so a caller that is
   * interrupted can remove it; it is removed here whenever the build ends.
   */
  readonly onWorkDir?: (dir: string) => void;
}

export interface ImageBuildResult {
  readonly output: string;
  readonly format: 'raw' | 'qcow2';
  readonly bootloader: ImageBootloader;
  /** The raw disk's size in bytes (a qcow2 file is smaller). */
  readonly size: number;
  readonly partitions: readonly { name: string; start: number; size: number; uuid: string }[];
  readonly rootFsUuid: string;
  readonly commit: Checksum;
  readonly deployment: { stateroot: string; checksum: Checksum; serial: number; path: string };
  readonly kargs: readonly string[];
  /** SHA-256 of the output file. */
  readonly sha256: string;
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

  // Checked on the source before anything is copied: the commit and its kernel.
  const source = Repo.open(options.repo);
  let commit: Checksum;
  let ref: string | null;
  let epoch: number;
  try {
    commit = resolveRev(source, options.rev);
    ref = source.db.getRef(options.rev) !== undefined ? options.rev : null;
    findKernel(source, commit);
    epoch = options.epoch ?? source.readCommit(commit).timestamp;
  } finally {
    source.close();
  }
  const seed = imageSeed({
    commit,
    bootloader: options.bootloader,
    sizeBytes: options.sizeBytes,
    kargs: options.kargs,
    remote:
      options.remote === null
        ? null
        : { ...options.remote, keys: options.remote.keys.map((k) => k.toString('base64')) },
    epoch,
    // The configuration's content (not its path): the same settings give the same image.
    firstboot: options.firstboot ? JSON.stringify({ ...options.firstboot, path: null }) : null,
  });
  const rootFsUuid = derivedUuid(seed, 'root filesystem');
  const kargs = imageKargs(options.kargs, rootFsUuid);

  // Files the build makes (the repository's directories, boot entries) keep their staged modes:
  // the same umask for every builder, or two users would build two images.
  const umask = process.umask(0o022);
  const work = mkdtempSync(join(dirname(output), `.${basename(output)}.arbor-image-`));
  options.onWorkDir?.(work);
  try {
    const staging = join(work, 'sysroot');
    options.onProgress?.('pull', null);
    const staged = await inStep('staging the sysroot', () =>
      stageSysroot(staging, {
        sourceRepo: resolve(options.repo),
        ref,
        commit,
        stateroot: options.stateroot,
        kargs,
        bootloader: options.bootloader,
        remote: options.remote,
        epoch,
        onPull: (p) => options.onProgress?.('pull', p),
        onDeploy: () => options.onProgress?.('deploy', null),
      }),
    );
    const deploymentPath = `/arbor/deploy/${staged.stateroot}/deploy/${staged.checksum}.${staged.serial}`;
    const firstboot = options.firstboot;
    if (firstboot)
      inStepSync('installing the first-boot configuration', () =>
        installFirstboot(join(staging, deploymentPath), firstboot),
      );
    options.onProgress?.('measure', null);
    // The ESP's content leaves the root filesystem: /efi stays as its (empty) mount point.
    const espDir = join(work, 'esp');
    let espContent = 0;
    if (options.bootloader === 'systemd-boot') {
      renameSync(join(staging, ESP_MOUNT), espDir);
      mkdirSync(join(staging, ESP_MOUNT), { mode: 0o755 });
      mkdirSync(join(espDir, 'EFI/BOOT'), { recursive: true });
      if (!existsSync(SYSTEMD_BOOT_EFI))
        throw new ArborError(
          'E_IMAGE_TOOL_MISSING',
          `'${SYSTEMD_BOOT_EFI}' is missing: systemd-boot is not installed`,
          {
            hint: 'install systemd-boot-efi',
          },
        );
      copyFileSync(SYSTEMD_BOOT_EFI, join(espDir, 'EFI/BOOT/BOOTX64.EFI'));
      writeFileSync(join(espDir, 'loader/loader.conf'), 'timeout 0\n');
      espContent = treeBytes(espDir);
    }
    const stagedRepo = Repo.open(join(staging, 'arbor/repo'));
    let planned: ReturnType<typeof planRootInodes>;
    try {
      planned = planRootInodes(staging, stagedRepo, [{ path: deploymentPath, commit: staged.checksum }], epoch);
    } finally {
      stagedRepo.close();
    }
    const espSize = espBytes(espContent);
    const rootNeed = rootNeedBytes(planned.usage);
    const need = diskNeedBytes(options.bootloader, espSize, rootNeed);
    if (options.sizeBytes !== null && options.sizeBytes < need)
      throw new UsageError(
        'E_IMAGE_TOO_SMALL',
        `--size ${mib(options.sizeBytes)} is too small: this image needs at least ${mib(need)} (${need} bytes)`,
        { hint: `pass --size ${Math.ceil(need / MiB)}M or more, or leave --size out` },
      );
    const sizeBytes = options.sizeBytes === null ? defaultDiskBytes(need) : roundUpMiB(options.sizeBytes);
    const plan = planDisk(seed, options.bootloader, sizeBytes, espSize);
    const raw = join(work, 'disk.raw');
    const root = partition(plan, 'root');

    options.onProgress?.('root-fs', null);
    await inStep('writing the root filesystem', async () => {
      writeGpt(raw, plan);
      makeExt4({
        disk: raw,
        offsetBytes: root.startBytes,
        sizeBytes: root.sizeBytes,
        source: staging,
        label: ROOT_LABEL,
        uuid: rootFsUuid,
        hashSeed: derivedUuid(seed, 'root filesystem hash seed'),
        inodes: rootInodeCount(root.sizeBytes, planned.usage),
        epoch,
        workDir: work,
      });
      applyInodeSpecs(raw, root.startBytes, planned.specs, epoch, work);
    });

    options.onProgress?.('boot', null);
    await inStep('installing the bootloader', async () => {
      if (options.bootloader === 'systemd-boot') {
        const esp = partition(plan, 'esp');
        makeFat({
          disk: raw,
          offsetBytes: esp.startBytes,
          sizeBytes: esp.sizeBytes,
          label: 'ESP',
          volumeId: derivedVolumeId(seed),
          epoch,
          source: espDir,
        });
      } else {
        const bios = partition(plan, 'bios-boot');
        const core = buildGrubCore(
          work,
          { search: { fsUuid: rootFsUuid.toLowerCase() }, grubCfgPath: '/boot/grub/grub.cfg' },
          bios.sizeBytes,
        );
        installGrubBios(raw, core, bios.startBytes);
      }
    });

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
    return {
      output,
      format: options.format,
      bootloader: options.bootloader,
      size: sizeBytes,
      partitions: plan.partitions.map((p) => ({ name: p.name, start: p.startBytes, size: p.sizeBytes, uuid: p.uuid })),
      rootFsUuid,
      commit,
      deployment: { ...staged, path: deploymentPath },
      kargs,
      sha256,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    process.umask(umask);
  }
}

function partition(plan: DiskPlan, name: 'esp' | 'bios-boot' | 'root'): DiskPlan['partitions'][number] {
  const p = plan.partitions.find((x) => x.name === name);
  if (p === undefined) throw new Error(`internal error: the disk plan has no ${name} partition`);
  return p;
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/** Bytes of the regular files under DIR. */
function treeBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const st = lstatSync(join(dir, name));
    total += st.isDirectory() ? treeBytes(join(dir, name)) : st.size;
  }
  return total;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
