// The steps every disk Arbor writes shares, whether an image file (`image build`) or a device
// (`install to-disk`): check the commit, stage the sysroot and measure it, then write the GPT, the
// root filesystem and the bootloader at the planned offsets of the target.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ArborError, inStep, inStepSync, present } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { findKernel } from '../deploy/index.js';
import { type FirstbootConfig, installFirstboot } from '../firstboot/index.js';
import { type PullProgress, Repo, resolveRev } from '../repo/index.js';
import { makeFat, writeGpt } from './disk.js';
import { buildGrubCore, installGrubBios } from './grub-bios.js';
import {
  type DiskPlan,
  type ImageBootloader,
  type ImageRootFs,
  type RootUsage,
  derivedUuid,
  derivedVolumeId,
  diskNeedBytes,
  espBytes,
  imageKargs,
  imageSeed,
  rootInodeCount,
  rootNeedBytes,
} from './plan.js';
import type { InodeSpec } from './debugfs-script.js';
import { applyInodeSpecs, makeExt4, planRootInodes } from './root-fs.js';
import { espDevice, installEspMount } from './esp-mount.js';
import { ESP_MOUNT, type StagedDeployment, stageSysroot } from './staging.js';
import { makeXfs } from './xfs.js';

const SYSTEMD_BOOT_EFI = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
/** The root filesystem's label: `root=LABEL=sysroot` finds it too. */
const ROOT_LABEL = 'sysroot';

/** The steps of a disk build, in order, as progress reports them. */
const LAYOUT_STEPS = ['pull', 'deploy', 'measure', 'root-fs', 'inodes', 'boot', 'convert', 'digest'] as const;
export type ImageStep = (typeof LAYOUT_STEPS)[number];

/** A remote the installed host upgrades from, with its trusted keys. */
export interface LayoutRemote {
  readonly name: string;
  readonly url: string;
  readonly keys: readonly Buffer[];
}

/** What decides a disk's content: the commit, where it comes from, and how it boots. */
export interface LayoutOptions {
  readonly repo: string;
  readonly rev: string;
  readonly bootloader: ImageBootloader;
  /** The root filesystem (default ext4); xfs needs root and loop devices (xfs.ts). */
  readonly rootFs?: ImageRootFs;
  /** The disk size in bytes (an image's `--size`, a device's size); null: what it needs plus a margin. */
  readonly sizeBytes: number | null;
  /** Kernel arguments, after `root=UUID=<the root filesystem> rw` (imageKargs). */
  readonly kargs: readonly string[];
  readonly stateroot: string;
  readonly remote: LayoutRemote | null;
  /** SOURCE_DATE_EPOCH; null: the commit's timestamp. */
  readonly epoch: number | null;
  /** A first-boot configuration installed into the deployment (docs/firstboot.md); its kernel arguments are the caller's to merge into `kargs`. */
  readonly firstboot?: FirstbootConfig | null;
  readonly onProgress?: (step: ImageStep, detail: PullProgress | null) => void;
}

/** The commit resolved and checked, and every identifier derived from the inputs. */
export interface PreparedLayout {
  readonly commit: Checksum;
  /** The ref REV names in the source repository, or null when REV is a checksum. */
  readonly ref: string | null;
  /** Seconds: every time in the disk. */
  readonly epoch: number;
  readonly seed: Buffer;
  readonly rootFsUuid: string;
  /** The entry's kernel arguments, root= and rw included. */
  readonly kargs: readonly string[];
}

/**
 * Resolves REV in the source repository and checks it has a kernel and initramfs
 * (E_DEPLOY_NO_KERNEL, E_DEPLOY_NO_INITRAMFS) before anything is written; derives the identifiers.
 */
export function prepareLayout(options: LayoutOptions): PreparedLayout {
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
    rootFs: options.rootFs ?? 'ext4',
  });
  const rootFsUuid = derivedUuid(seed, 'root filesystem');
  return { commit, ref, epoch, seed, rootFsUuid, kargs: imageKargs(options.kargs, rootFsUuid) };
}

/** The staged sysroot of a disk, measured: what its filesystems will hold and how much room they need. */
export interface StagedLayout {
  readonly staging: string;
  /** The ESP's content (systemd-boot), moved out of the staged root; null for grub-bios. */
  readonly espDir: string | null;
  readonly deployment: StagedDeployment & { readonly path: string };
  readonly specs: InodeSpec[];
  readonly usage: RootUsage;
  readonly espSizeBytes: number;
  readonly rootNeedBytes: number;
  /** The smallest disk that holds it all. */
  readonly needBytes: number;
}

/**
 * Stages the sysroot in WORK/sysroot with the host code (staging.ts), installs the first-boot
 * configuration, moves the ESP's content (with systemd-boot) to WORK/esp, and measures every inode.
 */
export async function stageLayout(
  work: string,
  options: LayoutOptions,
  prepared: PreparedLayout,
): Promise<StagedLayout> {
  const staging = join(work, 'sysroot');
  const deployment = await stageDeployment(staging, options, prepared, { kargs: prepared.kargs });
  if (options.bootloader === 'systemd-boot')
    inStepSync('installing the ESP mount', () =>
      installEspMount(join(staging, deployment.path), espDevice(derivedVolumeId(prepared.seed)), ESP_MOUNT),
    );
  options.onProgress?.('measure', null);
  // The ESP's content leaves the root filesystem: /efi stays as its (empty) mount point.
  let espDir: string | null = null;
  let espContent = 0;
  if (options.bootloader === 'systemd-boot') {
    espDir = join(work, 'esp');
    renameSync(join(staging, ESP_MOUNT), espDir);
    mkdirSync(join(staging, ESP_MOUNT), { mode: 0o755 });
    installSystemdBoot(espDir);
    espContent = treeBytes(espDir);
  }
  const stagedRepo = Repo.open(join(staging, 'arbor/repo'));
  let planned: ReturnType<typeof planRootInodes>;
  try {
    planned = planRootInodes(
      staging,
      stagedRepo,
      [{ path: deployment.path, commit: deployment.checksum }],
      prepared.epoch,
    );
  } finally {
    stagedRepo.close();
  }
  const espSizeBytes = espBytes(espContent);
  const rootNeed = rootNeedBytes(planned.usage, options.rootFs ?? 'ext4');
  return {
    staging,
    espDir,
    deployment,
    specs: planned.specs,
    usage: planned.usage,
    espSizeBytes,
    rootNeedBytes: rootNeed,
    needBytes: diskNeedBytes(options.bootloader, espSizeBytes, rootNeed),
  };
}

/** How a sysroot is staged: the entry's kernel arguments, and staging.ts's repository mode and ESP mount point. */
export interface StageHow {
  readonly kargs: readonly string[];
  readonly repoMode?: 'bare' | 'bare-user';
  readonly espMount?: string;
}

/**
 * Stages the sysroot at DIR with the host code (staging.ts) and installs the first-boot
 * configuration into its deployment; returns the deployment and its directory in the sysroot.
 */
export async function stageDeployment(
  dir: string,
  options: LayoutOptions,
  prepared: PreparedLayout,
  how: StageHow,
): Promise<StagedDeployment & { readonly path: string }> {
  options.onProgress?.('pull', null);
  const staged = await inStep('staging the sysroot', () =>
    stageSysroot(dir, {
      sourceRepo: resolve(options.repo),
      ref: prepared.ref,
      commit: prepared.commit,
      stateroot: options.stateroot,
      bootloader: options.bootloader,
      remote: options.remote,
      epoch: prepared.epoch,
      ...how,
      onPull: (p) => options.onProgress?.('pull', p),
      onDeploy: () => options.onProgress?.('deploy', null),
    }),
  );
  const path = `/arbor/deploy/${staged.stateroot}/deploy/${staged.checksum}.${staged.serial}`;
  const firstboot = options.firstboot;
  if (firstboot)
    inStepSync('installing the first-boot configuration', () => installFirstboot(join(dir, path), firstboot));
  return { ...staged, path };
}

/**
 * systemd-boot onto the ESP at ESPDIR as the removable-media default (`/EFI/BOOT/BOOTX64.EFI`,
 * which firmware boots without an NVRAM entry) with `timeout 0` in loader.conf.
 */
export function installSystemdBoot(espDir: string): void {
  if (!existsSync(SYSTEMD_BOOT_EFI))
    throw new ArborError('E_IMAGE_TOOL_MISSING', `'${SYSTEMD_BOOT_EFI}' is missing: systemd-boot is not installed`, {
      hint: 'install systemd-boot-efi',
    });
  mkdirSync(join(espDir, 'EFI/BOOT'), { recursive: true });
  copyFileSync(SYSTEMD_BOOT_EFI, join(espDir, 'EFI/BOOT/BOOTX64.EFI'));
  mkdirSync(join(espDir, 'loader'), { recursive: true });
  writeFileSync(join(espDir, 'loader/loader.conf'), 'timeout 0\n');
}

/** Where and how the layout is written: DISK (an image file or a device) and whether its GPT file must be made. */
export interface WriteTarget {
  readonly disk: string;
  /** True: DISK does not exist yet and is created sparse (an image); false: it exists (a device). */
  readonly create: boolean;
  /** A directory for the tools' scratch files. */
  readonly work: string;
}

/** Writes PLAN's GPT, the root filesystem and the bootloader onto the target (see the file comment). */
export async function writeLayout(
  target: WriteTarget,
  plan: DiskPlan,
  layout: StagedLayout,
  prepared: PreparedLayout,
  options: Pick<LayoutOptions, 'bootloader' | 'rootFs' | 'onProgress'>,
): Promise<void> {
  const { disk, work } = target;
  const root = partition(plan, 'root');
  const rootFs = options.rootFs ?? 'ext4';
  options.onProgress?.('root-fs', null);
  await inStep('writing the root filesystem', async () => {
    writeGpt(disk, plan, target.create);
    const where = {
      disk,
      offsetBytes: root.startBytes,
      sizeBytes: root.sizeBytes,
      source: layout.staging,
      label: ROOT_LABEL,
      uuid: prepared.rootFsUuid,
    };
    if (rootFs === 'xfs') {
      makeXfs({
        ...where,
        specs: layout.specs,
        mountPoint: join(work, 'root-mount'),
        onInodes: () => options.onProgress?.('inodes', null),
      });
      return;
    }
    makeExt4({
      ...where,
      hashSeed: derivedUuid(prepared.seed, 'root filesystem hash seed'),
      inodes: rootInodeCount(root.sizeBytes, layout.usage),
      epoch: prepared.epoch,
      workDir: work,
    });
    options.onProgress?.('inodes', null);
    applyInodeSpecs(disk, root.startBytes, layout.specs, prepared.epoch, work);
  });

  options.onProgress?.('boot', null);
  await inStep('installing the bootloader', async () => {
    if (options.bootloader === 'systemd-boot') {
      const esp = partition(plan, 'esp');
      makeFat({
        disk,
        offsetBytes: esp.startBytes,
        sizeBytes: esp.sizeBytes,
        label: 'ESP',
        volumeId: derivedVolumeId(prepared.seed),
        epoch: prepared.epoch,
        source: present(layout.espDir ?? undefined, 'the staged ESP'),
      });
    } else {
      const bios = partition(plan, 'bios-boot');
      const core = buildGrubCore(
        work,
        { search: { fsUuid: prepared.rootFsUuid.toLowerCase() }, grubCfgPath: '/boot/grub/grub.cfg', rootFs },
        bios.sizeBytes,
      );
      installGrubBios(disk, core, bios.startBytes);
    }
  });
}

/** The named partition of PLAN (planDisk always makes the ones its bootloader needs). */
function partition(plan: DiskPlan, name: 'esp' | 'bios-boot' | 'root'): DiskPlan['partitions'][number] {
  return present(
    plan.partitions.find((x) => x.name === name),
    `the ${name} partition of the disk plan`,
  );
}

/** Bytes of the regular files under DIR. */
function treeBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const st = lstatSync(join(dir, name));
    total += st.isDirectory() ? treeBytes(join(dir, name)) : st.size;
  }
  return total;
}
