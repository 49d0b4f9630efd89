// The reference OS (examples/os) for boot tests: its RPMs built and a release composed into a
// sysroot's repository once per inputs, kept under TEST_CACHE_DIR/reference-os/KEY, where KEY
// hashes everything the result depends on (this checkout's sources, the installed Debian packages,
// the kernel package), so a change to any of them composes again and an unchanged tree is reused.
// Releases are chained as a compose server makes them: v2 is composed into a copy of v1's
// repository (so its parent is v1, and only what changed is imported), v3 into a copy of v2's.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Release, buildOsRelease } from '../../examples/os/build-rpms.js';
import { ROOT, arbor } from './cli.js';
import { TEST_CACHE_DIR } from './kernel.js';
import { runTool } from './tool.js';

/** The ref examples/os/treefile.yaml commits to, and the stateroot the sysroot gets. */
export const REFERENCE_OS_REF = 'arbor-os/x86_64/stable';
export const REFERENCE_OS_STATEROOT = 'os';
const CACHE_DIR = join(TEST_CACHE_DIR, 'reference-os');
/** What the composed tree is made of, relative to the checkout (the native addon's source too: it is packaged). */
const INPUTS = [
  'examples/os',
  'bench/lib/debian-rpm.ts',
  'scripts/package-rpm.sh',
  'data',
  'src',
  'native',
  'binding.gyp',
  'package-lock.json',
];

/** Every regular file under PATH (a file or a directory), sorted. */
function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => filesUnder(join(path, name)));
}

/** The release each one is composed on top of. */
const PREVIOUS: Record<Release, Release | null> = { v1: null, v2: 'v1', v3: 'v2' };

/** sha256 (16 hex digits) over the inputs' bytes, the installed Debian packages and the kernel package's name. */
function inputKey(release: Release): string {
  const h = createHash('sha256').update(`reference-os ${release}\n`);
  for (const input of INPUTS)
    for (const file of filesUnder(join(ROOT, input))) {
      if (file.endsWith('.test.ts') || file.endsWith('.md')) continue; // neither is in the tree
      h.update(`${file.slice(ROOT.length)}\n`).update(readFileSync(file));
    }
  h.update(runTool('dpkg-query', ['-W', '-f', '${Package} ${Version}\n']));
  h.update(runTool('apt-cache', ['depends', 'linux-image-amd64']));
  return h.digest('hex').slice(0, 16);
}

export interface ComposedReferenceOs {
  /**
   * A sysroot with stateroot `os` whose repository holds the release on REFERENCE_OS_REF, its
   * parent the previous release (also in the repository): copy it before deploying.
   */
  sysroot: string;
  checksum: string;
  /** Seconds the RPM build and the compose took, or null when the cache had them. */
  buildSeconds: number | null;
  composeSeconds: number | null;
}

/**
 * RELEASE of the reference OS composed with `arbor compose tree` into the repository of a fresh
 * sysroot, from the cache when its inputs are unchanged. Needs root (rpmbuild of root-owned
 * files, the compose sandbox) and the Debian packages scripts/setup.sh installs.
 */
export async function composedReferenceOs(release: Release = 'v1'): Promise<ComposedReferenceOs> {
  const key = inputKey(release);
  const dir = join(CACHE_DIR, `${release}-${key}`);
  const sysroot = join(dir, 'sysroot');
  const checksumFile = join(dir, 'checksum');
  if (existsSync(checksumFile))
    return { sysroot, checksum: readFileSync(checksumFile, 'utf8').trim(), buildSeconds: null, composeSeconds: null };

  mkdirSync(CACHE_DIR, { recursive: true });
  // Older composes of this release are stale now; the RPM pool (CACHE_DIR/build) is kept.
  for (const name of readdirSync(CACHE_DIR))
    if (name.startsWith(`${release}-`)) rmSync(join(CACHE_DIR, name), { recursive: true, force: true });
  const work = join(CACHE_DIR, `.work-${release}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'tmp'), { recursive: true });
  try {
    let started = performance.now();
    const built = await buildOsRelease({ release, out: join(CACHE_DIR, 'build'), log: () => {} });
    const buildSeconds = (performance.now() - started) / 1000;
    const staged = join(work, 'sysroot');
    const previous = PREVIOUS[release];
    if (previous === null) {
      arbor('admin', 'init-fs', staged);
      arbor('admin', 'os-init', '--sysroot', staged, REFERENCE_OS_STATEROOT);
    } else runTool('cp', ['-a', (await composedReferenceOs(previous)).sysroot, staged]);
    started = performance.now();
    const report = JSON.parse(
      arbor(
        'compose',
        'tree',
        '--repo',
        join(staged, 'arbor/repo'),
        '--tmpdir',
        join(work, 'tmp'),
        '--json',
        built.treefile,
      ),
    ) as { commit: string };
    const composeSeconds = (performance.now() - started) / 1000;
    // Another process (a test file in another worker) may have composed it meanwhile: keep theirs.
    if (existsSync(checksumFile))
      return { sysroot, checksum: readFileSync(checksumFile, 'utf8').trim(), buildSeconds, composeSeconds };
    mkdirSync(dir, { recursive: true });
    renameSync(staged, sysroot);
    writeFileSync(checksumFile, `${report.commit}\n`);
    return { sysroot, checksum: report.commit, buildSeconds, composeSeconds };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
