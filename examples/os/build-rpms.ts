// examples/os/build-rpms.ts — owns the RPMs of the Arbor reference OS, built from this machine's
// Debian packages (bench/lib/debian-rpm.ts), a Debian kernel, Arbor's own packages
// (scripts/package-rpm.sh) and the OS's files in examples/os/packages/, and one release's yum
// repository and treefile: OUT/RELEASE/{rpms/,treefile.yaml}. RPMs are kept in OUT/pool between
// runs and rebuilt only when their recipe changes.
//
// Run (as root): node dist/examples/os/build-rpms.js --release v1|v2|v3 [--out DIR] [--arbor-rpms DIR]
//   v1  the first release;  v2  hello 2.0 and one Debian package upgraded;  v3  v2 plus hello 3.0,
//   whose extra health check fails (a trial boot of v3 falls back).
import { createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  BASE_DIRS,
  BASE_SYMLINKS,
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
  textFile,
} from '../../bench/lib/debian-rpm.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The checkout: dist/examples/os/ when compiled, examples/os/ when run from source. */
const ROOT = resolve(HERE, existsSync(join(HERE, '../../package.json')) ? '../..' : '../../..');
const EXAMPLE_DIR = join(ROOT, 'examples/os');
const DEFAULT_OUT = '/var/tmp/arbor-os';
export const RELEASES = ['v1', 'v2', 'v3'] as const;
export type Release = (typeof RELEASES)[number];
/** hello's version in each release. */
const HELLO_VERSION: Record<Release, string> = { v1: '1.0', v2: '2.0', v3: '3.0' };
/** The Debian-derived package v2 and v3 ship a new release of (the "one package upgraded"). */
const UPGRADED_PACKAGE = 'hostname';
/** zstd level 3: these RPMs are rebuilt on a developer's machine, not shipped. */
const PAYLOAD = process.env.ARBOR_OS_RPM_PAYLOAD ?? 'w3.zstdio';
/** Paths the generated packages own; Debian's versions are left out. */
const RESERVED = new Set([
  '/etc/passwd',
  '/etc/group',
  '/etc/shadow',
  '/etc/gshadow',
  '/etc/shells',
  '/etc/hosts',
  '/etc/hostname',
  '/etc/nsswitch.conf',
  '/etc/os-release',
  '/usr/lib/os-release',
]);
/** Documentation, manuals and translations: not needed to boot, a third of the bytes. */
const EXCLUDE = /^\/usr\/share\/(doc|man|info|locale|lintian|bug|doc-base)\//;
/**
 * The kernel's modules the OS takes: a QEMU machine's virtio devices, ext4 and xfs (root filesystems
 * `image build --root-fs` makes; dracut --no-hostonly puts every filesystem module present into the
 * initramfs), FAT (an ESP), crypto, and overlayfs, which the sandbox that runs layered packages'
 * scriptlets mounts.
 */
const KERNEL_MEMBERS = [
  './boot/vmlinuz-*',
  './lib/modules/*/modules.builtin',
  './lib/modules/*/modules.builtin.modinfo',
  './lib/modules/*/modules.order',
  './lib/modules/*/kernel/fs/ext4/*',
  './lib/modules/*/kernel/fs/jbd2/*',
  './lib/modules/*/kernel/fs/mbcache.ko',
  './lib/modules/*/kernel/fs/xfs/*',
  './lib/modules/*/kernel/fs/fat/*',
  './lib/modules/*/kernel/fs/nls/*',
  './lib/modules/*/kernel/fs/efivarfs/*',
  './lib/modules/*/kernel/fs/overlayfs/*',
  './lib/modules/*/kernel/lib/*',
  './lib/modules/*/kernel/crypto/*',
  './lib/modules/*/kernel/arch/x86/crypto/*',
  './lib/modules/*/kernel/drivers/virtio/*',
  './lib/modules/*/kernel/drivers/block/virtio_blk.ko',
  './lib/modules/*/kernel/drivers/net/virtio_net.ko',
  './lib/modules/*/kernel/drivers/net/net_failover.ko',
  './lib/modules/*/kernel/net/core/*',
  './lib/modules/*/kernel/drivers/char/virtio_console.ko',
  './lib/modules/*/kernel/drivers/char/hw_random/virtio-rng.ko',
];

const stderrLog = (message: string): void => void process.stderr.write(`[arbor-os] ${message}\n`);

// ---------------------------------------------------------------------------------------------
// Debian packages: the closure of the treefile's names and Debian's Essential set

/** The names the treefile asks for (examples/os/treefile.yaml). */
function treefilePackages(): string[] {
  const treefile = parseYaml(readFileSync(join(EXAMPLE_DIR, 'treefile.yaml'), 'utf8')) as { packages: string[] };
  return treefile.packages;
}

/** Depends and Pre-Depends of ROOTS, transitively, among the installed packages. */
function debianClosure(debs: readonly DebPkg[], roots: readonly string[]): Map<string, DebPkg> {
  const byName = new Map(debs.map((d) => [d.name, d]));
  const providers = new Map<string, string>();
  for (const d of debs) for (const [p] of parseDeps(d.provides)) if (p && !providers.has(p)) providers.set(p, d.name);
  const resolveName = (name: string): string | undefined => (byName.has(name) ? name : providers.get(name));
  const chosen = new Map<string, DebPkg>();
  const todo = [...roots];
  for (let name = todo.pop(); name !== undefined; name = todo.pop()) {
    const found = resolveName(name);
    if (found === undefined) throw new Error(`Debian package '${name}' is not installed (scripts/setup.sh installs it)`);
    if (chosen.has(found)) continue;
    const deb = byName.get(found) as DebPkg;
    chosen.set(found, deb);
    for (const alternatives of parseDeps(deb.depends)) {
      const hit = alternatives.map(resolveName).find((n) => n !== undefined);
      if (hit !== undefined) todo.push(hit);
    }
  }
  return chosen;
}

/** Essential: yes packages, which no Debian package declares a dependency on. */
async function essentialPackages(): Promise<string[]> {
  const out = await run(['dpkg-query', '-W', '-f', '${Package}\t${Essential}\t${db:Status-Abbrev}\n']);
  return out
    .split('\n')
    .map((l) => l.split('\t'))
    .filter((f) => f[1] === 'yes' && f[2]?.startsWith('ii'))
    .map((f) => f[0] as string)
    .sort();
}

function debianPackages(chosen: Map<string, DebPkg>, release: Release): Pkg[] {
  const ids = nameMaps();
  const claimed = new Set<string>();
  const names = new Set(chosen.keys());
  const provided = new Set<string>();
  for (const d of chosen.values()) for (const [p] of parseDeps(d.provides)) if (p) provided.add(p);
  const pkgs: Pkg[] = [];
  for (const deb of [...chosen.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const { entries } = hostEntries(deb, claimed, ids, { reserved: RESERVED, exclude: EXCLUDE });
    for (const e of entries) if (e.type !== 'dir') claimed.add(e.path);
    const requires = new Set<string>(['filesystem']);
    for (const group of parseDeps(deb.depends)) {
      const hit = group.find((n) => names.has(n) || provided.has(n));
      if (hit !== undefined && hit !== deb.name) requires.add(hit);
    }
    // Merged /usr: what other RPMs require as /bin/sh or /bin/bash is /usr/bin/sh here.
    const paths = entries
      .filter((e) => e.type !== 'dir' && /^\/usr\/s?bin\/[^/]+$/.test(e.path))
      .map((e) => e.path.slice('/usr'.length));
    const revision = /-([^-]+)$/.exec(deb.version.replace(/^\d+:/, ''))?.[1] ?? '1';
    const upgraded = deb.name === UPGRADED_PACKAGE && release !== 'v1';
    pkgs.push({
      name: deb.name,
      version: rpmVersion(deb.version),
      release: `${revision.replace(/[^A-Za-z0-9._+~^]/g, '.')}${upgraded ? '.1' : ''}`,
      arch: deb.arch === 'all' ? 'noarch' : 'x86_64',
      summary: `${deb.name} (files of the Debian package ${deb.name} ${deb.version})`,
      origin: `debian:${deb.name}=${deb.version}`,
      requires: [...requires].sort(),
      requiresPre: [],
      provides: [
        ...parseDeps(deb.provides)
          .map(([p]) => p as string)
          .filter((p) => !names.has(p)),
        ...paths,
        // Fedora's glibc declares it by hand too: binaries linked with --hash-style=gnu require it.
        ...(deb.name === 'libc6' ? ['rtld(GNU_HASH)'] : []),
      ].sort(),
      recommends: [],
      suggests: [],
      entries: upgraded
        ? [...entries, textFile(`/usr/lib/arbor-os/upgraded/${deb.name}`, `${deb.name}: the release v2 upgraded\n`)]
        : entries,
      scripts: {},
      installExtra: [],
    });
  }
  return pkgs;
}

// ---------------------------------------------------------------------------------------------
// Generated packages

const meta = (name: string, summary: string, requires: string[]): Pkg => ({
  name,
  version: '1',
  release: '1',
  arch: 'noarch',
  summary,
  origin: 'generated',
  requires,
  requiresPre: [],
  provides: [],
  recommends: [],
  suggests: [],
  entries: [],
  scripts: {},
  installExtra: [],
});

function filesystemPackage(): Pkg {
  const osRelease = [
    'NAME="Arbor reference OS"',
    'ID=arbor-os',
    'ID_LIKE=debian',
    'PRETTY_NAME="Arbor reference OS"',
    'HOME_URL="https://example.invalid/arbor"',
    '',
  ].join('\n');
  return {
    ...meta('filesystem', 'The merged-/usr directory layout and os-release', []),
    arch: 'x86_64',
    requiresPre: ['setup'],
    entries: [
      ...Object.entries(BASE_DIRS).map(([path, mode]): Entry => ({ kind: 'gen', path, type: 'dir', mode })),
      ...Object.entries(BASE_SYMLINKS).map(([path, target]): Entry => ({ kind: 'gen', path, type: 'symlink', target })),
      { kind: 'gen', path: '/sysroot', type: 'dir', mode: 0o755 },
      // As ostree's /ostree: commands defaulting to --repo /arbor/repo find the sysroot's repository.
      { kind: 'gen', path: '/arbor', type: 'symlink', target: 'sysroot/arbor' },
      textFile('/usr/lib/os-release', osRelease),
      { kind: 'gen', path: '/etc/os-release', type: 'symlink', target: '../usr/lib/os-release' },
    ],
  };
}

/** Users and groups: Debian's base set (base-passwd's masters), locked passwords. */
function setupPackage(): Pkg {
  const passwd = readFileSync('/usr/share/base-passwd/passwd.master', 'utf8');
  const group = readFileSync('/usr/share/base-passwd/group.master', 'utf8');
  const names = (text: string): string[] =>
    text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split(':')[0] as string);
  const shadow = names(passwd)
    .map((n) => `${n}:*:20454:0:99999:7:::\n`)
    .join('');
  const gshadow = names(group)
    .map((n) => `${n}:*::\n`)
    .join('');
  return {
    ...meta('setup', 'Users, groups and the basic /etc files', []),
    entries: [
      textFile('/etc/passwd', passwd, 0o644, true),
      textFile('/etc/group', group, 0o644, true),
      textFile('/etc/shadow', shadow, 0o640, true),
      textFile('/etc/gshadow', gshadow, 0o640, true),
      textFile('/etc/shells', '/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n', 0o644, true),
      textFile('/etc/hosts', '127.0.0.1 localhost\n::1 localhost\n', 0o644, true),
      textFile('/etc/hostname', 'arbor-os\n', 0o644, true),
      textFile('/etc/nsswitch.conf', readFileSync('/usr/share/libc-bin/nsswitch.conf', 'utf8'), 0o644, true),
      // What Debian's pam-auth-update writes from the installed PAM profiles: pam_unix alone.
      ...Object.entries(PAM_COMMON).map(([name, text]) => textFile(`/etc/pam.d/common-${name}`, text, 0o644, true)),
    ],
  };
}

/** /etc/pam.d/common-*, which Debian generates at install time rather than ships. */
const PAM_COMMON: Record<string, string> = {
  auth: 'auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n',
  account:
    'account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so\naccount requisite pam_deny.so\naccount required pam_permit.so\n',
  password:
    'password [success=1 default=ignore] pam_unix.so obscure yescrypt\npassword requisite pam_deny.so\npassword required pam_permit.so\n',
  session: 'session required pam_permit.so\nsession required pam_unix.so\n',
  'session-noninteractive': 'session required pam_permit.so\nsession required pam_unix.so\n',
};

/** Generated entries for every file, link and directory under DIR (a package's tree in examples/os/packages). */
function treeEntries(dir: string, substitute: Record<string, string> = {}): Entry[] {
  const entries: Entry[] = [];
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const host = join(at, name);
      const path = `/${relative(dir, host)}`;
      const st = statSync(host);
      if (st.isDirectory()) {
        // Only directories no base package owns are this package's.
        if (!(path in BASE_DIRS)) entries.push({ kind: 'gen', path, type: 'dir', mode: 0o755 });
        walk(host);
      } else {
        let text = readFileSync(host, 'utf8');
        for (const [key, value] of Object.entries(substitute)) text = text.replaceAll(`@${key}@`, value);
        entries.push(textFile(path, text, st.mode & 0o111 ? 0o755 : 0o644));
      }
    }
  };
  walk(dir);
  return entries;
}

function helloPackage(release: Release): Pkg {
  const version = HELLO_VERSION[release];
  const packages = join(EXAMPLE_DIR, 'packages');
  const entries = treeEntries(join(packages, 'hello'), { VERSION: version });
  if (release === 'v3') entries.push(...treeEntries(join(packages, 'hello-failing-check'), { VERSION: version }));
  return {
    ...meta('hello', "The reference OS's example service", ['/bin/sh', 'systemd']),
    version,
    entries: dedupeDirs(entries),
  };
}

function configPackage(): Pkg {
  return {
    ...meta('arbor-os-config', "The reference OS's console, network and report units", [
      '/bin/sh',
      'systemd',
      'arbor',
    ]),
    entries: treeEntries(join(EXAMPLE_DIR, 'packages/arbor-os-config')),
  };
}

/** Directories listed twice (two trees merged) once. */
function dedupeDirs(entries: Entry[]): Entry[] {
  const seen = new Set<string>();
  return entries.filter((e) => (e.type !== 'dir' ? true : seen.has(e.path) ? false : (seen.add(e.path), true)));
}

/** The Debian kernel package linux-image-amd64 depends on, downloaded once into OUT/debs. */
async function kernelDeb(out: string, log: (message: string) => void): Promise<string> {
  const depends = await run(['apt-cache', 'depends', 'linux-image-amd64']);
  const name = /Depends: (linux-image-[0-9][^\s<>]*)/.exec(depends)?.[1];
  if (name === undefined) throw new Error('apt-cache names no kernel for linux-image-amd64 (run apt-get update)');
  const dir = join(out, 'debs');
  mkdirSync(dir, { recursive: true });
  const existing = readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (existing !== undefined) return join(dir, existing);
  log(`downloading ${name}`);
  // As root, apt drops to _apt for downloads, which cannot write here.
  const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
  await run(['sh', '-c', 'cd "$1" && shift && exec apt-get download -q "$@"', 'sh', dir, ...sandbox, name]);
  const deb = readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (deb === undefined) throw new Error(`apt-get download ${name} left no .deb in ${dir}`);
  return join(dir, deb);
}

/**
 * The kernel as one package: /usr/lib/modules/KVER/vmlinuz, the modules of KERNEL_MEMBERS and
 * their modules.dep (depmod, so the tree needs no scriptlet to load them).
 */
async function kernelPackage(deb: string, work: string): Promise<Pkg> {
  const x = join(work, 'kernel-x');
  rmSync(x, { recursive: true, force: true });
  mkdirSync(x, { recursive: true });
  await run([
    'bash',
    '-c',
    'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "${@:3}"',
    'bash',
    deb,
    x,
    ...KERNEL_MEMBERS,
  ]);
  const vmlinuz = readdirSync(join(x, 'boot')).find((f) => f.startsWith('vmlinuz-')) as string;
  const kver = vmlinuz.slice('vmlinuz-'.length);
  renameSync(join(x, 'boot', vmlinuz), join(x, 'lib/modules', kver, 'vmlinuz'));
  await run(['depmod', '-b', x, kver]);
  const debVersion = (await run(['dpkg-deb', '-f', deb, 'Version'])).trim();
  const modules = join(x, 'lib/modules', kver);
  const entries = treeEntriesBinary(modules, `/usr/lib/modules/${kver}`);
  return {
    ...meta('kernel', `The Linux kernel ${kver} (Debian's ${basename(deb)}, QEMU modules only)`, ['filesystem']),
    version: rpmVersion(debVersion),
    release: /-([^-]+)$/.exec(debVersion)?.[1] ?? '1',
    arch: 'x86_64',
    origin: `debian:${basename(deb)}`,
    provides: [`kernel-uname-r(${kver})`],
    entries: [{ kind: 'gen', path: `/usr/lib/modules/${kver}`, type: 'dir', mode: 0o755 }, ...entries],
  };
}

/** Like treeEntries for binary files, placed under PREFIX. */
function treeEntriesBinary(dir: string, prefix: string): Entry[] {
  const entries: Entry[] = [];
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const host = join(at, name);
      const path = `${prefix}/${relative(dir, host)}`;
      const st = statSync(host);
      if (st.isDirectory()) {
        entries.push({ kind: 'gen', path, type: 'dir', mode: 0o755 });
        walk(host);
      } else {
        entries.push({
          kind: 'gen',
          path,
          type: 'file',
          bytes: st.size,
          mode: 0o644,
          config: false,
          make: () => readFileSync(host),
        });
      }
    }
  };
  walk(dir);
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Building, with a pool of RPMs reused while their recipe is the same

/** sha256 over what a package is made of: NEVRA, dependencies and every entry's content or host file. */
function recipeDigest(p: Pkg): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([nevra(p), p.requires, p.requiresPre, p.provides, PAYLOAD]));
  for (const e of p.entries) {
    h.update(`\n${e.kind} ${e.type} ${e.path}`);
    if (e.kind === 'host') {
      const st = statSync(e.path, { throwIfNoEntry: false });
      h.update(` ${e.bytes} ${st?.mtimeMs ?? 0} ${e.config} ${e.owner}:${e.group}`);
    } else if (e.type === 'file') h.update(` ${e.mode} `).update(e.make());
    else if (e.type === 'symlink') h.update(` ${e.target}`);
    else h.update(` ${e.mode}`);
  }
  return h.digest('hex');
}

async function buildIntoPool(
  pkgs: Pkg[],
  poolDir: string,
  work: string,
  log: (message: string) => void,
): Promise<string[]> {
  let built = 0;
  const width = Math.max(1, Number(process.env.ARBOR_OS_RPM_JOBS ?? (await run(['nproc'])).trim()));
  const paths = await pool(
    width,
    pkgs.map((p, slot) => async () => {
      const rpm = join(poolDir, rpmFile(p));
      const stamp = `${rpm}.recipe`;
      const digest = recipeDigest(p);
      if (existsSync(rpm) && existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return rpm;
      rmSync(stamp, { force: true });
      await buildPackage(p, poolDir, join(work, `w${slot}`), { payload: PAYLOAD, autoProvides: true });
      writeFileSync(stamp, digest);
      built++;
      return rpm;
    }),
  );
  log(`${built} of ${pkgs.length} packages built, ${pkgs.length - built} reused from ${poolDir}`);
  return paths;
}

export interface OsRelease {
  release: Release;
  /** The release's yum repository. */
  rpms: string;
  /** The treefile to compose: includes examples/os/treefile.yaml, adds the repository and version. */
  treefile: string;
  /** NEVRA of every package in the repository. */
  packages: string[];
}

export interface BuildOsOptions {
  release: Release;
  out?: string;
  /** A directory holding arbor-*.rpm and nodejs-*.rpm already built (default: run scripts/package-rpm.sh). */
  arborRpms?: string;
  log?: (message: string) => void;
}

/** Builds (or reuses) the RPMs of RELEASE and writes its repository and treefile under OUT/RELEASE. */
export async function buildOsRelease(options: BuildOsOptions): Promise<OsRelease> {
  const out = resolve(options.out ?? DEFAULT_OUT);
  const { release } = options;
  const log = options.log ?? stderrLog;
  const poolDir = join(out, 'pool');
  const work = join(out, '.work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(poolDir, { recursive: true });
  mkdirSync(work, { recursive: true });

  const wanted = treefilePackages();
  const debs = await installedDebianPackages();
  const installed = new Set(debs.map((d) => d.name));
  const roots = [...(await essentialPackages()), ...wanted.filter((n) => installed.has(n))];
  const closure = debianClosure(debs, roots);
  const debian = debianPackages(closure, release);
  log(`${release}: ${debian.length} Debian packages (the closure of ${roots.length} names)`);
  const pkgs = [
    filesystemPackage(),
    setupPackage(),
    meta('essential', "Debian's Essential packages", (await essentialPackages()).filter((n) => closure.has(n))),
    await kernelPackage(await kernelDeb(out, log), work),
    helloPackage(release),
    configPackage(),
    ...debian,
  ];
  const paths = await buildIntoPool(pkgs, poolDir, work, log);

  let arborDir = options.arborRpms;
  if (arborDir === undefined) {
    arborDir = join(work, 'arbor');
    log('building the arbor and nodejs RPMs (scripts/package-rpm.sh)');
    await run(['env', `ARBOR_RPM_PAYLOAD=${PAYLOAD}`, 'bash', join(ROOT, 'scripts/package-rpm.sh'), '--out', arborDir]);
  }
  const arborRpms = readdirSync(arborDir).filter((f) => /^(arbor|nodejs)-.*\.rpm$/.test(f));
  if (!arborRpms.some((f) => f.startsWith('arbor-')) || !arborRpms.some((f) => f.startsWith('nodejs-')))
    throw new Error(`${arborDir} lacks arbor-*.rpm or nodejs-*.rpm (npm run package:rpm -- --out ${arborDir})`);

  const dir = join(out, release);
  const rpms = join(dir, 'rpms');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(rpms, { recursive: true });
  for (const p of paths) linkSync(p, join(rpms, basename(p)));
  for (const f of arborRpms) linkSync(join(arborDir, f), join(rpms, f));
  await run(['createrepo_c', '--quiet', rpms]);
  const treefile = join(dir, 'treefile.yaml');
  writeFileSync(
    treefile,
    [
      `# The reference OS, release ${release} (written by examples/os/build-rpms.ts)`,
      `include: ${JSON.stringify(join(EXAMPLE_DIR, 'treefile.yaml'))}`,
      'repos: [rpms]',
      `version: ${release}`,
      '',
    ].join('\n'),
  );
  rmSync(work, { recursive: true, force: true });
  return { release, rpms, treefile, packages: [...pkgs.map(nevra), ...arborRpms.map((f) => f.replace(/\.rpm$/, ''))] };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      release: { type: 'string' },
      out: { type: 'string' },
      'arbor-rpms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || values.release === undefined) {
    process.stdout.write(
      `usage: node dist/examples/os/build-rpms.js --release v1|v2|v3 [--out DIR] [--arbor-rpms DIR]   (as root)\n` +
        `Builds the reference OS's RPMs and writes DIR/RELEASE/rpms (a yum repository) and\n` +
        `DIR/RELEASE/treefile.yaml (default DIR ${DEFAULT_OUT}); prints the treefile's path.\n`,
    );
    if (values.release === undefined && !values.help) process.exitCode = 2;
    return;
  }
  if (!(RELEASES as readonly string[]).includes(values.release))
    throw new Error(`--release must be one of ${RELEASES.join(', ')}, got '${values.release}'`);
  const built = await buildOsRelease({
    release: values.release as Release,
    out: values.out,
    arborRpms: values['arbor-rpms'],
  });
  process.stdout.write(`${built.treefile}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().catch((e: unknown) => {
    process.stderr.write(`build-rpms: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
