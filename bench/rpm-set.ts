// bench/rpm-set.ts — the compose benchmark's RPM set: ≈ 300 real RPMs built with rpmbuild out of
// this machine's files, deterministically from a seed, as yum repositories (createrepo_c):
//   v1/      every package, version 1 of each (the first compose)
//   update/  the new release of exactly one package (a few files changed, one added)
//   v2/      v1 with that package replaced (hardlinks to v1's RPMs), for the recompose
//   manifest.json  what was built (written last: its presence with the same seed and format means complete)
// Most packages mirror installed Debian packages (their dpkg file lists; Depends/Recommends/Suggests/
// Provides between the chosen ones become Requires/Recommends/Suggests/Provides); a setup package
// (passwd, group, shells as %config), a filesystem package (owns the root layout, the merged-/usr
// symlinks, and /usr/bin/sh = the host's static busybox, Provides: /bin/sh) and kernel packages
// (/usr/lib/modules/KVER/{vmlinuz,initramfs.img} and modules, pseudo-random as compressed images are)
// complete it. Like make-trees.sh, what it holds depends on what is installed here; the manifest's
// digest tells whether two machines built the same set.
//
// Run directly (as root): node dist/bench/rpm-set.js [--dir DIR] [--seed S] [--rebuild | --plan]
import { createCipheriv, createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt } from './lib/format.js';
import {
  BASE_DIRS,
  BASE_SYMLINKS,
  type Candidate,
  type DebPkg,
  type Entry,
  type Pkg,
  buildPackage,
  hostEntries,
  installedDebianPackages,
  nameMaps,
  nevra,
  parseDeps,
  pool,
  rpmFile,
  rpmVersion,
  run,
  staticShell,
  textFile,
} from './lib/debian-rpm.js';

const RPM_SET_DIR = '/var/tmp/arbor-bench/rpms';
const RPM_SET_SEED = 'arbor-bench-2026';
/** Bump when the set's recipe changes: a cached set of another format is rebuilt. */
const FORMAT = 2;
/** Debian-derived packages to take (the set adds setup, filesystem and three kernel packages). */
const DEBIAN_PACKAGES = 295;
/** Budget of the Debian-derived packages' regular file bytes, and the largest package taken. */
const DEBIAN_BUDGET_BYTES = 720e6;
const DEBIAN_MAX_PACKAGE_BYTES = 110e6;
/** Installed Debian packages that are not OS content (SDKs and runtimes this box happens to carry). */
const EXCLUDED = [/^google-cloud/, /^kubectl$/, /^openjdk-/, /^nodejs$/, /^llvm-14-dev$/];
/** Paths the set's own packages own; Debian's versions are left out. */
const RESERVED = new Set([
  '/usr/bin/sh',
  '/etc/passwd',
  '/etc/group',
  '/etc/shadow',
  '/etc/gshadow',
  '/etc/shells',
  '/etc/hosts',
  '/etc/os-release',
  '/usr/lib/os-release',
]);
/** Names rpm's %files takes literally: no glob characters, quotes, spaces, macros or escapes. */
const KVER_VERSION = '6.1.0';
const KVER_RELEASE = '1.bench';
const KVER = `${KVER_VERSION}-${KVER_RELEASE}.x86_64`;
/** Fedora's payload (zstd level 19); ARBOR_BENCH_RPM_PAYLOAD overrides it (e.g. w9.zstdio for a quicker build). */
const PAYLOAD = process.env.ARBOR_BENCH_RPM_PAYLOAD ?? 'w19.zstdio';

interface PackageInfo {
  name: string;
  nevra: string;
  rpm: string;
  origin: string;
  files: number;
  dirs: number;
  symlinks: number;
  installedBytes: number;
  rpmBytes: number;
  requires: number;
  scripts: string[];
}

export interface RpmSetManifest {
  format: number;
  seed: string;
  payload: string;
  builtAt: string;
  buildSeconds: number;
  /** sha256 over every package's name, version and file list: equal digests, equal sets. */
  digest: string;
  packages: number;
  files: number;
  dirs: number;
  symlinks: number;
  installedBytes: number;
  rpmBytes: number;
  largest: { name: string; installedBytes: number }[];
  /** Packages under 1 MB installed. */
  smallPackages: number;
  dependencies: { requires: number; recommends: number; suggests: number; provides: number };
  scriptlets: string[];
  configFiles: number;
  kernel: { kver: string; packages: string[] };
  skippedPaths: number;
  /** The names to install: every package of the set. */
  names: string[];
  list: PackageInfo[];
  update: { name: string; from: string; to: string; rpm: string; changedFiles: string[]; addedFiles: string[] };
}

export interface RpmSet {
  root: string;
  /** The yum repository of the first compose. */
  v1: string;
  /** The yum repository of the recompose: v1 with one package updated. */
  v2: string;
  manifest: RpmSetManifest;
}

// ---------------------------------------------------------------------------------------------
// Determinism helpers

const sha = (...parts: string[]): Buffer => createHash('sha256').update(parts.join('\0')).digest();
/** Uniform in [0, 1) from the seed and a key. */
const unit = (seed: string, key: string): number => sha(seed, key).readUInt32BE(0) / 2 ** 32;

/** n pseudo-random bytes (AES-CTR keystream): what compressed kernel images and modules look like. */
function randomBytes(seed: string, key: string, n: number): Buffer {
  const k = sha(seed, 'bytes', key);
  const cipher = createCipheriv('aes-128-ctr', k.subarray(0, 16), k.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(n)), cipher.final()]);
}

/** Chooses the Debian-derived packages (hash order of the seed, within the byte budget). */
function chooseDebian(
  seed: string,
  debs: DebPkg[],
  ids: ReturnType<typeof nameMaps>,
): { chosen: Candidate[]; skipped: number } {
  const order = debs
    .filter((d) => !EXCLUDED.some((re) => re.test(d.name)))
    .map((d) => ({ d, h: unit(seed, `pick:${d.name}`) }))
    .sort((x, y) => x.h - y.h)
    .map((x) => x.d);
  const claimed = new Set<string>();
  const chosen: Candidate[] = [];
  let total = 0;
  let skipped = 0;
  for (const deb of order) {
    if (chosen.length === DEBIAN_PACKAGES) break;
    const c = hostEntries(deb, claimed, ids, { reserved: RESERVED });
    if (c.bytes > DEBIAN_MAX_PACKAGE_BYTES || total + c.bytes > DEBIAN_BUDGET_BYTES) continue;
    for (const e of c.entries) if (e.type !== 'dir') claimed.add(e.path);
    chosen.push(c);
    total += c.bytes;
    skipped += c.skipped;
  }
  return { chosen, skipped };
}

function debianPackages(seed: string, chosen: Candidate[]): Pkg[] {
  const names = new Set(chosen.map((c) => c.deb.name));
  const provided = new Map<string, string>(); // virtual name → first provider in the set
  for (const c of chosen)
    for (const [p] of parseDeps(c.deb.provides))
      if (p && !names.has(p) && !provided.has(p)) provided.set(p, c.deb.name);
  const resolvable = (alts: string[]): string | undefined => alts.find((a) => names.has(a) || provided.has(a));
  const deps = (field: string, self: string): string[] => {
    const out = new Set<string>();
    for (const group of parseDeps(field)) {
      const hit = resolvable(group);
      if (hit !== undefined && hit !== self) out.add(hit);
    }
    return [...out].sort();
  };
  return chosen.map((c) => {
    const name = c.deb.name;
    const requires = deps(c.deb.depends, name);
    const h = unit(seed, `scripts:${name}`);
    const log = `echo "%s ${name} $1" >> /etc/arbor-bench-scriptlets.log`;
    const scripts: Pkg['scripts'] = {};
    // A few scriptlets, shell builtins only (rpm adds Requires(post): /bin/sh etc. by itself).
    if (h < 0.03) scripts.post = log.replace('%s', 'post');
    else if (h < 0.04) scripts.pre = log.replace('%s', 'pre');
    else if (h < 0.045) scripts.posttrans = log.replace('%s', 'posttrans');
    return {
      name,
      version: rpmVersion(c.deb.version),
      release: '1',
      arch: c.deb.arch === 'all' ? 'noarch' : 'x86_64',
      summary: `${name} (files of the Debian package ${c.deb.name} ${c.deb.version})`,
      origin: `debian:${c.deb.name}=${c.deb.version}`,
      requires: requires.length > 0 ? requires : ['filesystem'],
      requiresPre: [],
      provides: parseDeps(c.deb.provides)
        .map(([p]) => p!)
        .filter((p) => !names.has(p))
        .sort(),
      recommends: deps(c.deb.recommends, name),
      suggests: deps(c.deb.suggests, name),
      entries: c.entries,
      scripts,
      installExtra: [],
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Generated packages: setup, filesystem, kernel

function setupPackage(): Pkg {
  const passwd = readFileSync('/etc/passwd', 'utf8');
  const group = readFileSync('/etc/group', 'utf8');
  return {
    name: 'setup',
    version: '2.14.4',
    release: '1',
    arch: 'noarch',
    origin: 'generated',
    summary: 'A set of system configuration and setup files',
    requires: [],
    requiresPre: [],
    provides: [],
    recommends: [],
    suggests: [],
    entries: [
      textFile('/etc/passwd', passwd, 0o644, true),
      textFile('/etc/group', group, 0o644, true),
      textFile('/etc/shells', '/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n', 0o644, true),
      textFile('/etc/hosts', '127.0.0.1   localhost\n::1         localhost\n', 0o644, true),
      textFile('/etc/profile.d/arbor-bench.sh', 'export ARBOR_BENCH=1\n', 0o644, true),
    ],
    scripts: {},
    installExtra: [],
  };
}

function filesystemPackage(): Pkg {
  const dirs: Entry[] = Object.entries(BASE_DIRS).map(([path, mode]) => ({ kind: 'gen', path, type: 'dir', mode }));
  const links: Entry[] = Object.entries(BASE_SYMLINKS).map(([path, target]) => ({
    kind: 'gen',
    path,
    type: 'symlink',
    target,
  }));
  const sh = readFileSync(staticShell());
  const osRelease = 'NAME="Arbor Bench"\nID=arbor-bench\nVERSION_ID=1\nPRETTY_NAME="Arbor Bench 1"\n';
  return {
    name: 'filesystem',
    version: '3.18',
    release: '1',
    arch: 'x86_64',
    origin: "generated (/usr/bin/sh: the host's static busybox)",
    summary: 'The basic directory layout, /bin/sh and os-release',
    requires: [],
    requiresPre: ['setup'],
    provides: ['/bin/sh'],
    recommends: [],
    suggests: [],
    entries: [
      ...dirs,
      ...links,
      { kind: 'gen', path: '/usr/bin/sh', type: 'file', bytes: sh.length, mode: 0o755, config: false, make: () => sh },
      textFile('/usr/lib/os-release', osRelease),
      { kind: 'gen', path: '/etc/os-release', type: 'symlink', target: '../usr/lib/os-release' },
    ],
    scripts: {},
    installExtra: [],
  };
}

/** Module sizes: exponential around 40 kB, as compressed .ko.xz files are. */
function modules(seed: string, prefix: string, count: number): Entry[] {
  const subsystems = [
    'drivers/net/ethernet',
    'drivers/net/wireless',
    'drivers/gpu/drm',
    'drivers/scsi',
    'drivers/usb',
    'drivers/media',
    'drivers/hid',
    'drivers/input',
    'drivers/md',
    'drivers/block',
    'fs',
    'net/netfilter',
    'net/ipv6',
    'sound/pci',
    'crypto',
    'lib',
  ];
  return Array.from({ length: count }, (_, i): Entry => {
    const key = `${prefix}${i}`;
    const sub = subsystems[Math.floor(unit(seed, `sub:${key}`) * subsystems.length)]!;
    const bytes = 2048 + Math.floor(-Math.log(1 - unit(seed, `size:${key}`)) * 40_000);
    const path = `/usr/lib/modules/${KVER}/kernel/${sub}/${prefix}${i}.ko.xz`;
    return {
      kind: 'gen',
      path,
      type: 'file',
      bytes,
      mode: 0o644,
      config: false,
      make: () => randomBytes(seed, path, bytes),
    };
  });
}

function kernelPackages(seed: string): Pkg[] {
  const dir = `/usr/lib/modules/${KVER}`;
  const big = (path: string, bytes: number, mode = 0o644): Entry => ({
    kind: 'gen',
    path,
    type: 'file',
    bytes,
    mode,
    config: false,
    make: () => randomBytes(seed, path, bytes),
  });
  const systemMap = (): Buffer => {
    const lines: string[] = [];
    for (let i = 0; i < 120_000; i++)
      lines.push(
        `${(0xffffffff81000000n + BigInt(i) * 0x40n).toString(16)} ${'tTdDbBrR'[i % 8]} sym_${sha(seed, `sym${i}`).toString('hex').slice(0, 10)}`,
      );
    return Buffer.from(`${lines.join('\n')}\n`);
  };
  const mapBuf = systemMap();
  const config = Array.from({ length: 9000 }, (_, i) => `CONFIG_BENCH_OPTION_${i}=${['y', 'm', 'n'][i % 3]}`).join(
    '\n',
  );
  const coreModules = modules(seed, 'core_mod', 300);
  const extraModules = modules(seed, 'mod', 1200);
  const moduleDirs: Entry[] = [
    ...new Set(
      [...coreModules, ...extraModules].flatMap((e) => {
        const parts = e.path
          .slice(dir.length + 1)
          .split('/')
          .slice(0, -1);
        return parts.map((_, i) => `${dir}/${parts.slice(0, i + 1).join('/')}`);
      }),
    ),
  ]
    .sort()
    .map((path) => ({ kind: 'gen', path, type: 'dir', mode: 0o755 }));
  const moduleList = [...coreModules, ...extraModules].map((e) => e.path.slice(dir.length + 1)).join('\n');
  const common = {
    version: KVER_VERSION,
    release: KVER_RELEASE,
    arch: 'x86_64' as const,
    origin: 'generated (pseudo-random images and modules)',
    recommends: [],
    suggests: [],
    installExtra: [],
  };
  return [
    {
      ...common,
      name: 'kernel-core',
      summary: 'The kernel image, its initramfs and core modules',
      requires: ['filesystem'],
      requiresPre: [],
      provides: [`kernel-uname-r = ${KVER}`],
      scripts: {},
      entries: [
        { kind: 'gen', path: dir, type: 'dir', mode: 0o755 },
        big(`${dir}/vmlinuz`, 13_500_000, 0o755),
        big(`${dir}/initramfs.img`, 42_000_000, 0o644),
        {
          kind: 'gen',
          path: `${dir}/System.map`,
          type: 'file',
          bytes: mapBuf.length,
          mode: 0o644,
          config: false,
          make: () => mapBuf,
        },
        textFile(`${dir}/config`, `${config}\n`),
        textFile(`${dir}/modules.order`, `${moduleList}\n`),
        textFile(`${dir}/modules.builtin`, 'kernel/fs/ext4/ext4.ko\n'),
        ...moduleDirs,
        ...coreModules,
      ],
    },
    {
      ...common,
      name: 'kernel-modules',
      summary: 'Kernel modules for the bench kernel',
      requires: [`kernel-core = ${KVER_VERSION}-${KVER_RELEASE}`],
      requiresPre: [],
      provides: [],
      scripts: {},
      entries: extraModules,
    },
    {
      ...common,
      name: 'kernel',
      summary: 'The Linux kernel (meta package)',
      requires: [`kernel-core = ${KVER_VERSION}-${KVER_RELEASE}`, `kernel-modules = ${KVER_VERSION}-${KVER_RELEASE}`],
      requiresPre: [],
      provides: [],
      recommends: ['linux-firmware'],
      scripts: {},
      entries: [],
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// The update: one package's next release

/** A mid-size Debian-derived package with several regular files, chosen by the seed. */
function chooseUpdate(seed: string, pkgs: Pkg[]): Pkg {
  const fit = pkgs
    .filter((p) => p.origin.startsWith('debian:'))
    .filter((p) => {
      const files = p.entries.filter((e) => e.type === 'file' && e.kind === 'host');
      const bytes = files.reduce((n, e) => n + (e.type === 'file' ? e.bytes : 0), 0);
      return files.length >= 8 && bytes >= 2e6 && bytes <= 20e6;
    })
    .sort((a, b) => unit(seed, `update:${a.name}`) - unit(seed, `update:${b.name}`));
  if (fit[0] === undefined) throw new Error('no package fits the update (8+ files, 2–20 MB)');
  return fit[0];
}

function updatedPackage(seed: string, p: Pkg): { pkg: Pkg; changed: string[]; added: string[] } {
  const files = p.entries
    .filter((e) => e.type === 'file' && e.kind === 'host' && !e.config)
    .sort((a, b) => unit(seed, `change:${a.path}`) - unit(seed, `change:${b.path}`))
    .slice(0, 3)
    .map((e) => e.path)
    .sort();
  const notes = `/usr/share/doc/${p.name}/ARBOR-BENCH-UPDATE`;
  const extra = files.map((f) => `echo 'arbor-bench update: release 2' >> '%{buildroot}${f}'`);
  return {
    pkg: {
      ...p,
      release: '2',
      installExtra: extra,
      entries: [...p.entries, textFile(notes, `release 2 of ${p.name}: ${files.length} files changed\n`)],
    },
    changed: files,
    added: [notes],
  };
}

// ---------------------------------------------------------------------------------------------

function describe(p: Pkg, rpmPath: string): PackageInfo {
  const count = (t: Entry['type']): number => p.entries.filter((e) => e.type === t).length;
  return {
    name: p.name,
    nevra: nevra(p),
    rpm: basename(rpmPath),
    origin: p.origin,
    files: count('file'),
    dirs: count('dir'),
    symlinks: count('symlink'),
    installedBytes: p.entries.reduce((n, e) => n + (e.type === 'file' ? e.bytes : 0), 0),
    rpmBytes: statSync(rpmPath).size,
    requires: p.requires.length + p.requiresPre.length,
    scripts: Object.keys(p.scripts),
  };
}

function digestOf(pkgs: Pkg[]): string {
  const h = createHash('sha256');
  for (const p of pkgs) {
    h.update(`${nevra(p)}\n`);
    for (const e of p.entries) h.update(`${e.type} ${e.path} ${e.type === 'file' ? e.bytes : ''}\n`);
  }
  return h.digest('hex');
}

export interface RpmSetOptions {
  root?: string;
  seed?: string;
  rebuild?: boolean;
  log?: (message: string) => void;
}

function completeManifest(root: string, seed: string): RpmSetManifest | null {
  const path = join(root, 'manifest.json');
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as RpmSetManifest;
    if (m.format !== FORMAT || m.seed !== seed || m.payload !== PAYLOAD) return null;
    const v1 = join(root, 'v1');
    const v2 = join(root, 'v2');
    const ok =
      m.list.every((p) => existsSync(join(v1, p.rpm))) &&
      existsSync(join(v2, m.update.rpm)) &&
      existsSync(join(root, 'update', m.update.rpm)) &&
      existsSync(join(v1, 'repodata/repomd.xml')) &&
      existsSync(join(v2, 'repodata/repomd.xml')) &&
      readdirSync(v2).filter((f) => f.endsWith('.rpm')).length === m.list.length;
    return ok ? m : null;
  } catch {
    return null;
  }
}

/** What the set will hold: the packages, the update, the paths left out for their names. */
async function plan(seed: string): Promise<{ pkgs: Pkg[]; upd: ReturnType<typeof updatedPackage>; skipped: number }> {
  const { chosen, skipped } = chooseDebian(seed, await installedDebianPackages(), nameMaps());
  const pkgs = [setupPackage(), filesystemPackage(), ...kernelPackages(seed), ...debianPackages(seed, chosen)];
  return { pkgs, upd: updatedPackage(seed, chooseUpdate(seed, pkgs)), skipped };
}

/** The plan as text (--plan): one line per package, largest first. */
async function planText(seed: string): Promise<string> {
  const { pkgs, upd, skipped } = await plan(seed);
  const size = (p: Pkg): number => p.entries.reduce((n, e) => n + (e.type === 'file' ? e.bytes : 0), 0);
  const lines = [...pkgs]
    .sort((a, b) => size(b) - size(a))
    .map(
      (p) =>
        `${nevra(p).padEnd(60)} ${(size(p) / 1e6).toFixed(2).padStart(8)} MB ${String(p.entries.length).padStart(6)} entries  R:${p.requires.length + p.requiresPre.length} Rec:${p.recommends.length} Sug:${p.suggests.length} P:${p.provides.length} ${Object.keys(p.scripts).join(',')}`,
    );
  const total = pkgs.reduce((n, p) => n + size(p), 0);
  const entries = pkgs.reduce((n, p) => n + p.entries.length, 0);
  return `${lines.join('\n')}\n${pkgs.length} packages, ${fmt.mb(total)}, ${entries} entries, ${skipped} paths skipped; update ${upd.pkg.name}: ${upd.changed.join(' ')}\n`;
}

/** The RPM set under root, built first when missing, incomplete or of another seed/format/payload. */
export async function ensureRpmSet(options: RpmSetOptions = {}): Promise<RpmSet> {
  const root = options.root ?? RPM_SET_DIR;
  const seed = options.seed ?? RPM_SET_SEED;
  const log = options.log ?? ((m: string) => process.stderr.write(`[rpm-set] ${m}\n`));
  const existing = options.rebuild ? null : completeManifest(root, seed);
  if (existing) {
    log(
      `reusing ${root} (${existing.packages} packages, digest ${existing.digest.slice(0, 12)}; --rebuild to rebuild)`,
    );
    return { root, v1: join(root, 'v1'), v2: join(root, 'v2'), manifest: existing };
  }
  if (process.getuid?.() !== 0)
    throw new Error(`the RPM set ${root} is missing: build it as root (node dist/bench/rpm-set.js)`);
  const started = performance.now();
  log(`building the RPM set in ${root} (seed ${seed}, payload ${PAYLOAD})`);
  rmSync(root, { recursive: true, force: true });
  const [v1, v2, update, build] = ['v1', 'v2', 'update', '.build'].map((d) => join(root, d)) as [
    string,
    string,
    string,
    string,
  ];
  for (const d of [v1, v2, update, build]) mkdirSync(d, { recursive: true });

  const { pkgs, upd, skipped } = await plan(seed);
  log(
    `${pkgs.length} packages, ${fmt.mb(pkgs.reduce((n, p) => n + p.entries.reduce((m, e) => m + (e.type === 'file' ? e.bytes : 0), 0), 0))} of files; update: ${upd.pkg.name}`,
  );

  // Largest first, so the long zstd runs overlap the many small ones.
  const size = (p: Pkg): number => p.entries.reduce((n, e) => n + (e.type === 'file' ? e.bytes : 0), 0);
  const order = [...pkgs.keys()].sort((a, b) => size(pkgs[b]!) - size(pkgs[a]!));
  let done = 0;
  const width = Math.max(1, Number(process.env.ARBOR_BENCH_RPM_JOBS ?? (await run(['nproc'])).trim()));
  const paths: string[] = [];
  await pool(
    width,
    order.map((i, slot) => async () => {
      paths[i] = await buildPackage(pkgs[i]!, v1, join(build, `w${slot}`), { payload: PAYLOAD });
      if (++done % 25 === 0 || done === pkgs.length)
        log(`built ${done}/${pkgs.length} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }),
  );
  const updatePath = await buildPackage(upd.pkg, update, join(build, 'update'), { payload: PAYLOAD });

  // v2: hardlinks to v1's RPMs, the updated package instead of its first release.
  const old = pkgs.find((p) => p.name === upd.pkg.name)!;
  for (const f of readdirSync(v1)) if (f.endsWith('.rpm') && f !== rpmFile(old)) linkSync(join(v1, f), join(v2, f));
  linkSync(updatePath, join(v2, basename(updatePath)));
  log('createrepo_c v1 and v2');
  await run(['createrepo_c', '--quiet', v1]);
  await run(['createrepo_c', '--quiet', v2]);
  rmSync(build, { recursive: true, force: true });

  const list = pkgs.map((p, i) => describe(p, paths[i]!));
  const sum = (k: 'files' | 'dirs' | 'symlinks' | 'installedBytes' | 'rpmBytes'): number =>
    list.reduce((n, p) => n + p[k], 0);
  const manifest: RpmSetManifest = {
    format: FORMAT,
    seed,
    payload: PAYLOAD,
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round((performance.now() - started) / 1000),
    digest: digestOf(pkgs),
    packages: pkgs.length,
    files: sum('files'),
    dirs: sum('dirs'),
    symlinks: sum('symlinks'),
    installedBytes: sum('installedBytes'),
    rpmBytes: sum('rpmBytes'),
    largest: [...list]
      .sort((a, b) => b.installedBytes - a.installedBytes)
      .slice(0, 5)
      .map((p) => ({ name: p.name, installedBytes: p.installedBytes })),
    smallPackages: list.filter((p) => p.installedBytes < 1e6).length,
    dependencies: {
      requires: pkgs.reduce((n, p) => n + p.requires.length + p.requiresPre.length, 0),
      recommends: pkgs.reduce((n, p) => n + p.recommends.length, 0),
      suggests: pkgs.reduce((n, p) => n + p.suggests.length, 0),
      provides: pkgs.reduce((n, p) => n + p.provides.length, 0),
    },
    scriptlets: pkgs.flatMap((p) => Object.keys(p.scripts).map((k) => `${p.name} %${k}`)),
    configFiles: pkgs.reduce((n, p) => n + p.entries.filter((e) => e.type === 'file' && e.config).length, 0),
    kernel: { kver: KVER, packages: ['kernel', 'kernel-core', 'kernel-modules'] },
    skippedPaths: skipped,
    names: pkgs.map((p) => p.name),
    list,
    update: {
      name: upd.pkg.name,
      from: nevra(old),
      to: nevra(upd.pkg),
      rpm: basename(updatePath),
      changedFiles: upd.changed,
      addedFiles: upd.added,
    },
  };
  writeFileSync(join(root, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`done in ${manifest.buildSeconds} s: ${describeRpmSet(manifest)}`);
  return { root, v1, v2, manifest };
}

/** One line: counts and sizes of the set. */
export function describeRpmSet(m: RpmSetManifest): string {
  return (
    `${m.packages} packages (${m.smallPackages} under 1 MB; largest ${m.largest
      .slice(0, 3)
      .map((p) => `${p.name} ${fmt.mb(p.installedBytes)}`)
      .join(', ')}), ` +
    `${fmt.int(m.files)} files, ${fmt.int(m.symlinks)} symlinks, ${fmt.int(m.dirs)} owned dirs, ` +
    `${fmt.mb(m.installedBytes)} installed, ${fmt.mb(m.rpmBytes)} of RPMs (${m.payload}); ` +
    `${m.dependencies.requires} Requires, ${m.dependencies.recommends} Recommends, ${m.dependencies.suggests} Suggests, ${m.dependencies.provides} Provides, ` +
    `${m.scriptlets.length} scriptlets, ${m.configFiles} %config files; update: ${m.update.from} → ${m.update.to}`
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      seed: { type: 'string' },
      rebuild: { type: 'boolean' },
      plan: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(
      `usage: node dist/bench/rpm-set.js [--dir DIR] [--seed S] [--rebuild | --plan]   (as root)\n` +
        `Builds (or reuses) the compose benchmark's RPM set in DIR (default ${RPM_SET_DIR}).\n` +
        `env: ARBOR_BENCH_RPM_PAYLOAD (default w19.zstdio), ARBOR_BENCH_RPM_JOBS (default nproc)\n`,
    );
    return;
  }
  if (values.plan) return void process.stdout.write(await planText(values.seed ?? RPM_SET_SEED));
  const set = await ensureRpmSet({ root: values.dir, seed: values.seed, rebuild: values.rebuild });
  process.stdout.write(`${set.root}: ${describeRpmSet(set.manifest)}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  main().catch((e: unknown) => {
    process.stderr.write(`rpm-set: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
