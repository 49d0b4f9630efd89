// The boot set on disk: read back from the current boot entries (the entries are the truth, as in
// ostree), and written as a complete new `arbor/boot.N` + `boot/loader.N` switched in by one
// atomic rename (src/bootloader/swap.ts). Deployments no longer listed are then removed.
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CorruptionError } from '../common/errors.js';
import { readdirOrEmpty } from '../common/readdir-or-empty.js';
import { fsyncDir, writeFileAtomic } from '../common/fs-atomic.js';
import { type Checksum, isChecksum } from '../common/hash.js';
import {
  type BootEntry,
  type Bootloader,
  bootPathPrefix,
  currentBootversion,
  detectBootloader,
  formatGrubenv,
  readBootEntries,
  staticGrubCfg,
  writeBootSet,
} from '../bootloader/index.js';
import { type Deployment, deploymentName, sameDeployment } from './deployments.js';
import { syncEsp, sysrootEsp } from './esp.js';
import { readFileInRoot } from './in-root.js';
import { EMPTY_ORIGIN, type Origin, parseOrigin } from './origin.js';
import { ORIGIN_FILE, readStateFile } from './state-file.js';
import { type Sysroot, parseCmdline } from './sysroot.js';

const DEPLOYMENT_DIR = /\/arbor\/deploy\/([^/]+)\/deploy\/([0-9a-f]{64})\.(\d+)$/;

export interface BootState {
  readonly bootversion: number | null;
  readonly deployments: Deployment[];
  readonly booted: Deployment | null;
}

/** A deployment's origin (EMPTY_ORIGIN when it has no file); E_ORIGIN_INVALID (exit 3) when the file is not a valid origin. */
export function readOrigin(sysroot: Sysroot, d: { stateroot: string; checksum: string; serial: number }): Origin {
  const path = sysroot.originPath(d);
  const text = readStateFile(path, ORIGIN_FILE);
  return text === null ? EMPTY_ORIGIN : parseOrigin(text, path);
}

/**
 * The deployment a new one of `stateroot` merges /etc from (and whose /etc holds the host's
 * configuration): the booted one when it is of that stateroot, else the stateroot's default; null
 * when it has none.
 */
export function mergeDeploymentOf(state: BootState, stateroot: string): Deployment | null {
  return (
    (state.booted?.stateroot === stateroot ? state.booted : null) ??
    state.deployments.find((d) => d.stateroot === stateroot) ??
    null
  );
}

/** The deployments of the current boot set, default first, and the booted one. */
export function readBootState(sysroot: Sysroot): BootState {
  const bootversion = currentBootversion(sysroot.bootDir);
  const deployments: Deployment[] = [];
  if (bootversion !== null) {
    for (const entry of readBootEntries(sysroot.bootDir)) {
      const args = parseCmdline(entry.options);
      const arg = args.find((a) => a.startsWith('arbor='))?.slice('arbor='.length);
      if (arg === undefined) continue; // not ours (another OS's entry)
      const link = join(sysroot.path, arg);
      let target: string;
      try {
        target = join(link, '..', readlinkSync(link));
      } catch (error) {
        throw new CorruptionError(
          'E_BOOT_SET_BROKEN',
          `boot entry '${entry.title}' names ${arg}, which is not a link to a deployment`,
          { cause: error },
        );
      }
      const [, stateroot, checksum, serial] = DEPLOYMENT_DIR.exec(target) ?? [];
      if (stateroot === undefined || checksum === undefined || !isChecksum(checksum))
        throw new CorruptionError(
          'E_BOOT_SET_BROKEN',
          `boot entry '${entry.title}': ${arg} points at ${target}, which is not a deployment directory`,
        );
      const ref = { stateroot, checksum, serial: Number(serial) };
      const bootcsum = /\/([^/]+)\/[^/]+$/.exec(arg)?.[1] ?? '';
      deployments.push({
        ...ref,
        bootcsum,
        kargs: args.filter((a) => !a.startsWith('arbor=')),
        origin: readOrigin(sysroot, ref),
        version: commitVersion(sysroot, ref.checksum),
        trial: entry.tries,
      });
    }
  }
  const bootedPath = sysroot.bootedDeploymentPath();
  const booted =
    bootedPath === null ? null : (deployments.find((d) => sysroot.deploymentPath(d) === bootedPath) ?? null);
  return { bootversion, deployments, booted };
}

function commitVersion(sysroot: Sysroot, checksum: Checksum): string | null {
  if (!sysroot.repo.hasObject(checksum, 'commit')) return null;
  const v = sysroot.repo.readCommit(checksum).metadata.get('version');
  return v?.type === 'string' ? v.value : null;
}

/** Bound on an os-release file (a few hundred bytes in practice). */
const MAX_OS_RELEASE_BYTES = 64 * 1024;

/** The OS name for entry titles: os-release's PRETTY_NAME, else NAME, read inside the deployment (a link there never reaches a host file). */
function osName(deploymentDir: string): string {
  for (const file of ['/usr/lib/os-release', '/usr/etc/os-release', '/etc/os-release']) {
    const text = readFileInRoot(deploymentDir, file, MAX_OS_RELEASE_BYTES)?.toString('utf8');
    if (text === undefined) continue;
    const field = (key: string): string | undefined => {
      const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
      return m?.[1]?.replace(/^["']|["']$/g, '');
    };
    const name = field('PRETTY_NAME') ?? field('NAME');
    // A title is one line: a control character would break the entry (E_BOOT_ENTRY_INVALID at write).
    if (name && !/[\u0000-\u001f\u007f]/.test(name)) return name;
  }
  return 'Arbor OS';
}

/** The sysroot's bootloader backend: `[sysroot] bootloader` in the repository config, else detected from boot/. */
export function sysrootBootloader(sysroot: Sysroot): Bootloader {
  return detectBootloader(sysroot.bootDir, sysroot.repo.config.get('sysroot')?.get('bootloader'));
}

/**
 * Writes the boot set for `deployments` (default first): the deployment links in a fresh
 * `arbor/boot.N` (N the unused bootversion), then the entries and bootloader configuration in
 * `boot/loader.N`, then the swap, then (with `[sysroot] esp`) the same entries on the ESP
 * (esp.ts). Returns the new bootversion.
 */
export function writeDeployments(sysroot: Sysroot, deployments: readonly Deployment[]): number {
  // First: a bad `[sysroot] bootloader` or `esp` setting must fail before anything is written.
  const bootloader = sysrootBootloader(sysroot);
  const esp = sysrootEsp(sysroot);
  const current = currentBootversion(sysroot.bootDir);
  const next = current === 0 ? 1 : 0;
  const linksDir = sysroot.bootLinksDir(next);
  const tmp = `${linksDir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const entries: BootEntry[] = [];
  for (const [i, d] of deployments.entries()) {
    const linkDir = join(tmp, d.stateroot, d.bootcsum);
    mkdirSync(linkDir, { recursive: true });
    const link = join(linkDir, String(i));
    symlinkSync(relative(linkDir, sysroot.deploymentPath(d)), link);
    const deploymentDir = sysroot.deploymentPath(d);
    const label = d.version ?? deploymentName(d).slice(0, 12);
    const os = osName(deploymentDir);
    entries.push({
      title: `${os.endsWith(` ${label}`) ? os : `${os} ${label}`} (arbor:${i})`,
      // systemd-boot with sort-key on every entry orders by `version`, newest first: it must follow
      // the boot order (as ostree does), so the commit's own version goes into the title only.
      version: String(deployments.length - i),
      sortKey: `arbor-${d.stateroot}`,
      linux: `/arbor/${d.stateroot}-${d.bootcsum}/vmlinuz`,
      initrd: `/arbor/${d.stateroot}-${d.bootcsum}/initramfs.img`,
      options: [...d.kargs, `arbor=/arbor/boot.${next}/${d.stateroot}/${d.bootcsum}/${i}`].join(' '),
      ...(d.trial ? { tries: d.trial } : {}),
      deployment: `${d.stateroot}/${deploymentName(d)}`,
    });
  }
  mkdirSync(tmp, { recursive: true });
  fsyncTree(tmp);
  rmSync(linksDir, { recursive: true, force: true });
  renameSync(tmp, linksDir);
  fsyncDir(join(sysroot.path, 'arbor'));
  if (bootloader.name === 'grub2') installGrubStatics(sysroot.bootDir);
  const bootversion = writeBootSet(sysroot.bootDir, entries, bootloader, next);
  // Before the caller removes deployments the old set named: the ESP still shows it until now.
  if (esp !== null) syncEsp(sysroot, esp, entries);
  return bootversion;
}

/**
 * What GRUB reads before any boot set: boot/grub/grub.cfg, which only runs the boot set's own
 * grub.cfg through `loader`, and the 1024-byte grubenv the trial counter saves into (save_env
 * cannot create it). Written once, when missing.
 */
function installGrubStatics(bootDir: string): void {
  const dir = join(bootDir, 'grub');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'grub.cfg')))
    writeFileAtomic(join(dir, 'grub.cfg'), staticGrubCfg(bootPathPrefix(bootDir)));
  if (!existsSync(join(dir, 'grubenv'))) writeFileAtomic(join(dir, 'grubenv'), formatGrubenv());
}

function fsyncTree(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (lstatSync(path).isDirectory()) fsyncTree(path);
  }
  fsyncDir(dir);
}

/**
 * Removes what no boot set references: deployment directories (and origins) of every stateroot
 * that are neither listed nor staged, the other bootversion's link tree, half-made `.tmp` leftovers
 * of a killed command, and kernel directories no listed deployment uses. Returns what it removed.
 */
export function removeUnreferenced(
  sysroot: Sysroot,
  deployments: readonly Deployment[],
  staged: readonly Deployment[] = [],
): string[] {
  const removed: string[] = [];
  const keep = [...deployments, ...staged];
  const deployRoot = join(sysroot.path, 'arbor', 'deploy');
  for (const stateroot of readdirOrEmpty(deployRoot)) {
    const dir = sysroot.deployDir(stateroot);
    if (!existsSync(dir)) continue; // a stateroot without deployments, or a stray file: nothing to remove
    for (const name of readdirSync(dir)) {
      const [, checksum, serial] = /^([0-9a-f]{64})\.(\d+)(\.origin|\.etc-conflicts)?$/.exec(name) ?? [];
      const listed =
        checksum !== undefined &&
        isChecksum(checksum) &&
        keep.some((d) => sameDeployment(d, { stateroot, checksum, serial: Number(serial) }));
      if (listed) continue;
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(join(dir, name));
    }
  }
  const current = currentBootversion(sysroot.bootDir);
  for (const name of readdirSync(join(sysroot.path, 'arbor'))) {
    const m = /^boot\.(\d+)(\.tmp)?$/.exec(name);
    if (m && (m[2] !== undefined || Number(m[1]) !== current)) {
      // The previous bootversion's tree is still what loader.(1-N) names; keep it unless tmp.
      if (m[2] === undefined && existsSync(join(sysroot.bootDir, `loader.${m[1]}`))) continue;
      rmSync(join(sysroot.path, 'arbor', name), { recursive: true, force: true });
      removed.push(join(sysroot.path, 'arbor', name));
    }
  }
  // A killed writeBootSet's staging (`loader.M.tmp`, `loader.tmp`): never what `loader` names, and
  // otherwise left on a small /boot until the next switch.
  for (const name of readdirOrEmpty(sysroot.bootDir)) {
    if (!/^loader(\.[01])?\.tmp$/.test(name)) continue;
    rmSync(join(sysroot.bootDir, name), { recursive: true, force: true });
    removed.push(join(sysroot.bootDir, name));
  }
  const kernels = new Set(keep.map((d) => `${d.stateroot}-${d.bootcsum}`));
  for (const name of readdirOrEmpty(sysroot.kernelsDir)) {
    if (kernels.has(name)) continue;
    rmSync(join(sysroot.kernelsDir, name), { recursive: true, force: true });
    removed.push(join(sysroot.kernelsDir, name));
  }
  return removed;
}
