// The sysroot an image holds, made in a staging directory by the building user with the host code
// itself (init-fs, os-init, pull-local, remote add, deploy), so it is laid out exactly as
// `arbor admin` makes one. Its repository is bare-user (no root needed); the root filesystem step
// turns it into the bare repository a booted host uses.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatGrubenv, staticGrubCfg } from '../bootloader/index.js';
import type { Checksum } from '../common/hash.js';
import { deploy, initStateroot, initSysroot } from '../deploy/index.js';
import { type PullProgress, Repo, addRemote, pullFromRemote, writeRefs } from '../repo/index.js';
import { canImportFrom, importCommit } from './import.js';
import type { ImageBootloader } from './plan.js';

/** Where systemd-boot's ESP is mounted on the booted host (`[sysroot] esp`); empty in the root filesystem. */
export const ESP_MOUNT = '/efi';

export interface StageOptions {
  readonly sourceRepo: string;
  /** A ref of the source repository, or null to pull the commit by its checksum. */
  readonly ref: string | null;
  readonly commit: Checksum;
  readonly stateroot: string;
  readonly kargs: readonly string[];
  readonly bootloader: ImageBootloader;
  readonly remote: { readonly name: string; readonly url: string; readonly keys: readonly Buffer[] } | null;
  /** The image's time (seconds): written as every ref's update time in repo.db. */
  readonly epoch: number;
  readonly onPull?: (p: PullProgress) => void;
  readonly onDeploy?: () => void;
  /** The repository's mode: bare-user (default) for an image staged without root, bare for a host's own filesystem. */
  readonly repoMode?: 'bare' | 'bare-user';
  /** Where the booted host mounts the ESP (`[sysroot] esp`, default ESP_MOUNT); it may exist already (a mounted ESP). */
  readonly espMount?: string;
}

export interface StagedDeployment {
  readonly stateroot: string;
  readonly checksum: Checksum;
  readonly serial: number;
}

/**
 * Builds the sysroot at DIR (absent, or an empty directory): repository with the commit (and the remote and its keys),
 * stateroot, deployment, boot entries (on the ESP mirror at DIR/efi for systemd-boot; in
 * boot/loader with GRUB's static grub.cfg for grub-bios). Leaves repo.db compacted and free of
 * this machine's caches, and the repository's config saying `bare`.
 */
export async function stageSysroot(dir: string, options: StageOptions): Promise<StagedDeployment> {
  const sysroot = initSysroot(dir, options.repoMode ?? 'bare-user');
  const espMount = options.espMount ?? ESP_MOUNT;
  try {
    if (options.bootloader === 'grub-bios') {
      // What a GRUB installation writes once: its grub.cfg runs the boot set's, which deploy then generates.
      mkdirSync(join(dir, 'boot/grub'), { mode: 0o755 });
      writeFileSync(join(dir, 'boot/grub/grub.cfg'), staticGrubCfg('/boot'));
      writeFileSync(join(dir, 'boot/grub/grubenv'), formatGrubenv());
    } else {
      mkdirSync(join(dir, espMount), { mode: 0o755, recursive: true });
      const config = new Map(sysroot.repo.config);
      config.set('sysroot', new Map([['esp', espMount]]));
      sysroot.repo.writeConfig(config);
    }
    initStateroot(sysroot, options.stateroot);
    const refPrefix = options.remote === null ? '' : `${options.remote.name}:`;
    await copyCommit(sysroot.repo, options, refPrefix);
    if (options.remote !== null)
      addRemote(sysroot.repo, { ...options.remote, signVerify: options.remote.keys.length > 0 });
    options.onDeploy?.();
    const result = await deploy(sysroot, {
      rev: options.ref === null ? options.commit : `${refPrefix}${options.ref}`,
      stateroot: options.stateroot,
      kargs: options.kargs,
    });
    const { stateroot, checksum, serial } = result.deployment;
    finishRepo(sysroot.repo, options.epoch);
    return { stateroot, checksum, serial };
  } finally {
    sysroot.close();
  }
}

/**
 * The commit (and its ref, as REFPREFIX + ref) into REPO: hardlinked from a bare-user source
 * (import.ts), else pulled like `pull-local`, every object verified.
 */
async function copyCommit(repo: Repo, options: StageOptions, refPrefix: string): Promise<void> {
  const source = Repo.open(options.sourceRepo);
  try {
    if (canImportFrom(source, repo.mode)) {
      importCommit(source, repo, options.commit);
      if (options.ref !== null)
        writeRefs(repo, [{ name: `${refPrefix}${options.ref}`, checksum: options.commit }], options.epoch);
      return;
    }
  } finally {
    source.close();
  }
  await pullFromRemote(
    repo,
    { name: options.sourceRepo, url: options.sourceRepo, keys: [], signVerify: false },
    { refs: [options.ref ?? options.commit], refPrefix, ...(options.onPull ? { onProgress: options.onPull } : {}) },
  );
}

/** repo.db as an image ships it (IndexDb.writeImageCopy), and `mode=bare` in config. */
function finishRepo(repo: Repo, epoch: number): void {
  const copy = join(repo.path, 'repo.db.image');
  rmSync(copy, { force: true });
  repo.db.writeImageCopy(copy, epoch);
  const config = new Map(repo.config);
  config.set('core', new Map(config.get('core')).set('mode', 'bare'));
  repo.writeConfig(config);
  repo.close();
  for (const suffix of ['-wal', '-shm']) rmSync(join(repo.path, `repo.db${suffix}`), { force: true });
  renameSync(copy, join(repo.path, 'repo.db'));
}
