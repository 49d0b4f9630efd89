// Layering's solver against the real dnf for "install X on top of an installed set": one base of
// real RPMs (rpmbuild) is composed and deployed into a sysroot and installed by dnf into an
// installroot; each request is then resolved by `arbor install --dry-run --json` against the
// sysroot and by dnf in a copy of that installroot, and the installed sets (NEVRA) must agree,
// with weak dependencies on and off (the host's dnf.conf install_weak_deps, dnf's --setopt).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { HAVE_DNF, dnfInstall } from '../support/dnf.js';
import { type PackageDef, makeRepo } from '../support/rpmgen.js';
import { HAVE_LAYERING_TOOLS, KERNEL_PACKAGE, SHELL_PACKAGE } from '../support/layering-base.js';
import { TestSysroot } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';

/** The installed set both tools start from. */
const BASE: PackageDef[] = [
  {
    name: 'setup',
    version: '2.14',
    files: {
      '/etc': { dir: true },
      '/etc/passwd': { content: 'root:x:0:0:root:/root:/bin/sh\n', config: true },
      '/etc/group': { content: 'root:x:0:\n', config: true },
    },
  },
  SHELL_PACKAGE,
  KERNEL_PACKAGE,
  { name: 'libbase', version: '1.0', provides: ['libbase.so.1'], files: { '/usr/lib64/libbase.so.1': 'base 1\n' } },
  { name: 'base-mta', provides: ['mta'], files: { '/usr/sbin/base-mta': 'mta\n' } },
  // A path primary.xml leaves out (not under a bin/ or /etc): only the installed header lists it.
  { name: 'base-data', files: { '/usr/share/base-data/table': 'table\n' } },
  { name: 'vim-minimal', version: '9.0', files: { '/usr/bin/vi': { content: '#!/bin/sh\n', mode: 0o755 } } },
  // Its Recommends exists only in the layering repository: the base never had it.
  { name: 'base-rec', recommends: ['late-extra'] },
  { name: 'base-hater', conflicts: ['impl-a'] },
  { name: 'oldbase', version: '1' },
];

/** The repository requests resolve in. */
const EXTRA: PackageDef[] = [
  { name: 'hello', requires: ['libhello'] },
  { name: 'libhello' },
  { name: 'uses-base', requires: ['libbase.so.1'] },
  { name: 'likes-base', requires: ['libbase'] },
  // A newer build of a base package: offered, installed only when a requirement needs it.
  { name: 'libbase', version: '2.0', provides: ['libbase.so.1'], files: { '/usr/lib64/libbase.so.1': 'base 2\n' } },
  { name: 'wants-new', requires: ['libbase >= 2'] },
  { name: 'wants-old', requires: ['libbase < 2'] },
  { name: 'needs-mta', requires: ['mta'] },
  { name: 'aa-mta', provides: ['mta'] },
  { name: 'zed', provides: ['editor'] },
  { name: 'ed-lite', provides: ['editor'] },
  { name: 'pick', requires: ['impl'] },
  { name: 'impl-a', provides: ['impl'] },
  { name: 'impl-b', provides: ['impl'] },
  { name: 'api-one', provides: ['api(foo) = 1'] },
  { name: 'api-two', provides: ['api(foo) = 2'] },
  { name: 'api-user', requires: ['api(foo) >= 2'] },
  { name: 'fuser', requires: ['/usr/share/base-data/table', '/usr/share/fdata/table'] },
  { name: 'fdata', files: { '/usr/share/fdata/table': 'data\n' } },
  { name: 'needs-vi', requires: ['/usr/bin/vi'] },
  { name: 'anti-vim', conflicts: ['vim-minimal'] },
  { name: 'vim-ng', obsoletes: ['vim-minimal'], provides: ['vim-minimal'], files: { '/usr/bin/vim-ng': 'x\n' } },
  // Obsoletes a base package without being asked for: neither tool may swap it in.
  { name: 'newbase', obsoletes: ['oldbase < 2'] },
  { name: 'needs-oldbase', requires: ['oldbase'] },
  { name: 'oldpkg', version: '1' },
  { name: 'newpkg', version: '2', obsoletes: ['oldpkg < 2'], provides: ['oldpkg = 2'] },
  { name: 'weak-app', recommends: ['rec-lib', 'rec-missing', 'rec-bad'], suggests: ['sug-lib'] },
  // Pulls weak-app in by a hard requirement: its weak dependencies follow only with weak deps on.
  { name: 'needs-weak', requires: ['weak-app'] },
  { name: 'rec-lib' },
  { name: 'rec-bad', conflicts: ['weak-app'] },
  { name: 'sug-lib' },
  { name: 'sup-plugin', supplements: ['weak-app'] },
  { name: 'weak-base', recommends: ['libbase', 'mta'] },
  { name: 'late-extra' },
  // Supplements a base package: a layered install of something else must not pull it in.
  { name: 'vim-spell', supplements: ['vim-minimal'] },
  { name: 'tool', version: '1.0' },
  { name: 'tool', version: '2.0' },
  { name: 'tool-user', requires: ['tool < 2'] },
  { name: 'clash', conflicts: ['libhello'] },
  { name: 'broken-top', requires: ['broken-mid'] },
  { name: 'broken-mid', requires: ['missing-lib >= 2'] },
  { name: 'missing-lib', version: '1' },
];

interface Case {
  readonly title: string;
  readonly request: readonly string[];
  /** install_weak_deps: dnf's --setopt, Arbor's from the host's /etc/dnf/dnf.conf (default true). */
  readonly weakDeps?: boolean;
  /** The installed set after dnf's transaction, as base + add − drop (NEVRA, epoch 0 left out). */
  readonly dnf: Change | Refusal;
  /**
   * Arbor's result where its policy differs from dnf's on purpose (the comment says why); absent
   * means the same as dnf's.
   */
  readonly arbor?: Change | Refusal;
}
interface Change {
  readonly add?: readonly string[];
  readonly drop?: readonly string[];
}
/** Both tools must refuse, naming these. */
interface Refusal {
  readonly fails: readonly string[];
  /** Arbor's error code (default E_SOLVE_UNSATISFIABLE). */
  readonly code?: string;
}

const n = (name: string, vr = '1-1'): string => `${name}-${vr}.noarch`;

// Arbor's rule, from rpm-ostree: layering adds packages and never changes a base package as a side
// effect (base packages are the composed, tested OS; rpm-ostree calls such a transaction a
// forbidden base package replacement). Where dnf would upgrade, replace or drop a base package,
// Arbor refuses and names it, and `arbor override replace|remove` does it on purpose instead.
const CASES: readonly Case[] = [
  { title: 'installs a package and its dependency', request: ['hello'], dnf: { add: [n('hello'), n('libhello')] } },
  { title: 'satisfies a requirement with a base package', request: ['uses-base'], dnf: { add: [n('uses-base')] } },
  {
    title: 'keeps the base version when the requirement does not need the newer one in the repository',
    request: ['likes-base'],
    dnf: { add: [n('likes-base')] },
  },
  {
    title: 'upgrades a base package a versioned requirement needs (dnf) or refuses naming it (arbor)',
    request: ['wants-new'],
    dnf: { add: [n('wants-new'), n('libbase', '2.0-1')], drop: [n('libbase', '1.0-1')] },
    // Deliberate: the upgrade would change the base's libbase under every base package using it.
    arbor: { fails: ['wants-new', 'libbase >= 2'] },
  },
  {
    title: 'refuses two requests needing conflicting versions of a base package',
    request: ['wants-new', 'wants-old'],
    dnf: { fails: ['libbase'] },
  },
  {
    title: 'uses the base provider of a virtual provide over a repository one',
    request: ['needs-mta'],
    dnf: { add: [n('needs-mta')] },
  },
  { title: 'installs nothing for a capability the base provides', request: ['mta'], dnf: {} },
  {
    title: 'picks one of several providers of a requested capability by name',
    request: ['editor'],
    dnf: { add: [n('ed-lite')] },
  },
  {
    title: 'routes around a provider a base package conflicts with',
    request: ['pick'],
    dnf: { add: [n('pick'), n('impl-b')] },
  },
  {
    title: 'picks the provider whose versioned provide matches',
    request: ['api-user'],
    dnf: { add: [n('api-user'), n('api-two')] },
  },
  {
    title: 'satisfies file dependencies from a base file list and from filelists.xml',
    request: ['fuser'],
    dnf: { add: [n('fuser'), n('fdata')] },
  },
  {
    title: 'satisfies a file dependency on a base binary',
    request: ['needs-vi'],
    dnf: { add: [n('needs-vi')] },
  },
  {
    title: 'refuses a package conflicting with a base package',
    request: ['anti-vim'],
    dnf: { fails: ['anti-vim', 'vim-minimal'] },
  },
  {
    title: 'replaces a base package its requested obsoleter obsoletes (dnf) or refuses naming it (arbor)',
    request: ['vim-ng'],
    dnf: { add: [n('vim-ng')], drop: [n('vim-minimal', '9.0-1')] },
    // Deliberate: dropping a base package is `arbor override remove`, never a side effect.
    arbor: { fails: ["'vim-minimal-9.0-1.noarch'"], code: 'E_LAYER_BASE_CHANGED' },
  },
  {
    title: 'keeps a base package an unrequested repository package obsoletes',
    request: ['needs-oldbase'],
    dnf: { add: [n('needs-oldbase')] },
  },
  {
    title: 'installs the obsoleting package for a request of an obsoleted name',
    request: ['oldpkg'],
    dnf: { add: [n('newpkg', '2-1')] },
  },
  {
    title: 'installs Recommends and Supplements of a new package but never Suggests',
    request: ['weak-app'],
    dnf: { add: [n('weak-app'), n('rec-lib'), n('sup-plugin')] },
  },
  {
    title: 'installs nothing for Recommends the base satisfies',
    request: ['weak-base'],
    dnf: { add: [n('weak-base')] },
  },
  {
    title: 'adds weak dependencies of new packages only, with several requests',
    request: ['hello', 'weak-app'],
    dnf: { add: [n('hello'), n('libhello'), n('weak-app'), n('rec-lib'), n('sup-plugin')] },
  },
  {
    title: 'installs Recommends and Supplements of a package a request requires',
    request: ['needs-weak'],
    dnf: { add: [n('needs-weak'), n('weak-app'), n('rec-lib'), n('sup-plugin')] },
  },
  {
    title: 'installs neither Recommends nor Supplements with weak dependencies off',
    request: ['weak-app'],
    weakDeps: false,
    dnf: { add: [n('weak-app')] },
  },
  {
    title: 'installs hard dependencies but no weak ones of a required package with weak dependencies off',
    request: ['needs-weak'],
    weakDeps: false,
    dnf: { add: [n('needs-weak'), n('weak-app')] },
  },
  {
    title: 'installs a recommended package requested by name with weak dependencies off',
    request: ['weak-app', 'rec-lib'],
    weakDeps: false,
    dnf: { add: [n('weak-app'), n('rec-lib')] },
  },
  {
    title: 'installs hard dependencies of several requests and no weak ones with weak dependencies off',
    request: ['hello', 'weak-app'],
    weakDeps: false,
    dnf: { add: [n('hello'), n('libhello'), n('weak-app')] },
  },
  {
    title: 'refuses a request whose hard dependency is missing with weak dependencies off too',
    request: ['broken-top'],
    weakDeps: false,
    dnf: { fails: ['broken-top', 'missing-lib >= 2'] },
  },
  { title: 'picks the newest version of a requested name', request: ['tool'], dnf: { add: [n('tool', '2.0-1')] } },
  {
    title: 'picks an older version a versioned requirement asks for',
    request: ['tool-user'],
    dnf: { add: [n('tool-user'), n('tool', '1.0-1')] },
  },
  {
    title: 'refuses a request whose dependency two levels down is missing',
    request: ['broken-top'],
    dnf: { fails: ['broken-top', 'missing-lib >= 2'] },
  },
  { title: 'refuses a name nothing provides', request: ['no-such-package'], dnf: { fails: ['no-such-package'] } },
  {
    title: 'refuses two requests that conflict',
    request: ['clash', 'hello'],
    dnf: { fails: ['clash', 'libhello'] },
  },
  {
    title: 'leaves a package already in the base as it is (dnf) or refuses it (arbor)',
    request: ['vim-minimal'],
    dnf: {},
    // Deliberate, as rpm-ostree: a request for a base package would be a no-op kept in the origin
    // forever (and would silently become a real layer if a later base dropped the package).
    arbor: { fails: ["'vim-minimal'"], code: 'E_LAYER_IN_BASE' },
  },
];

const isRefusal = (x: Change | Refusal): x is Refusal => 'fails' in x;
/** rpm's `%{NAME}-%{EPOCHNUM}:…` key as Arbor prints NEVRAs: epoch 0 left out. */
const nevraOf = (key: string): string => key.replace(/-0:/, '-');

describe.skipIf(!HAVE_LAYERING_TOOLS || !HAVE_DNF)('layering against dnf on an installed set', () => {
  const tmp = useTempDir('arbor-layering-dnf-');
  const dir = (name: string): string => join(tmp.path, name);
  let sysroot: TestSysroot;
  /** The same sysroot whose deployment's /etc/dnf/dnf.conf says install_weak_deps=False. */
  let noWeakSysroot: TestSysroot;
  let baseSet: string[];
  let copies = 0;

  beforeAll(() => {
    makeRepo(dir('base'), BASE);
    makeRepo(dir('extra'), EXTRA);
    sysroot = TestSysroot.create(dir('sysroot'));
    writeFileSync(
      dir('os.json'),
      JSON.stringify({ ref: 'os/base', repos: [dir('base')], packages: BASE.map((p) => p.name) }),
    );
    const composed = runCli(['compose', 'tree', '--repo', sysroot.repo, dir('os.json')]);
    expect(composed.exitCode, composed.stderr).toBe(0);
    sysroot.ok('admin', 'deploy', '--stateroot', 'os', 'os/base');
    // dnf's base: the same packages from the same repository, weak dependencies off (compose found
    // base-rec's only in the other repository, so its base lacks it too).
    mkdirSync(dir('dnf-base'));
    const installed = dnfInstall(
      dir('dnf-base'),
      [dir('base')],
      BASE.map((p) => p.name),
      { installWeakDeps: false },
    );
    expect(installed.ok, installed.output).toBe(true);
    baseSet = installed.installed.map(nevraOf);
    expect(baseSet).toHaveLength(BASE.length);
    const arborBase = JSON.parse(sysroot.repoCli('db', 'list', '--json', 'os/base')) as { nevra: string }[];
    expect(arborBase.map((p) => p.nevra).sort()).toEqual(baseSet);
    noWeakSysroot = sysroot.copyTo(dir('sysroot-no-weak'));
    const deployed = noWeakSysroot.status().deployments[0] as { checksum: string; serial: number };
    const dnfConf = join(noWeakSysroot.deploymentDir(deployed.checksum, deployed.serial), 'etc/dnf/dnf.conf');
    mkdirSync(join(dnfConf, '..'), { recursive: true });
    writeFileSync(dnfConf, '[main]\ngpgcheck=1\ninstall_weak_deps=False\n');
  }, 120_000);

  const apply = (change: Change): string[] => {
    const drop = new Set(change.drop ?? []);
    return [...baseSet.filter((p) => !drop.has(p)), ...(change.add ?? [])].sort();
  };

  it('has at least 20 requests, some with weak dependencies off', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
    expect(CASES.filter((c) => c.weakDeps === false).length).toBeGreaterThanOrEqual(5);
  });

  it.each(CASES)('$title', ({ request, weakDeps = true, dnf: expected, arbor: arborExpected = expected }) => {
    const root = dir(`dnf-${copies++}`);
    const copied = spawnSync('cp', ['-a', dir('dnf-base'), root], { encoding: 'utf8' });
    expect(copied.status, copied.stderr).toBe(0);
    const dnf = dnfInstall(root, [dir('extra')], request, { installWeakDeps: weakDeps });
    const host = weakDeps ? sysroot : noWeakSysroot;
    const ours = host.cli(['install', '--dry-run', '--json', '--repo-dir', dir('extra'), ...request]);

    if (isRefusal(expected)) {
      expect(dnf.ok, `dnf installed ${dnf.installed.join(' ')}`).toBe(false);
      for (const name of expected.fails) expect(dnf.output).toContain(name);
    } else {
      expect({ dnf: dnf.ok ? dnf.installed.map(nevraOf) : dnf.output }).toEqual({ dnf: apply(expected) });
    }
    if (isRefusal(arborExpected)) {
      expect(ours.exitCode, ours.stdout).toBe(1);
      expect(ours.stderr).toMatch(new RegExp(`^error\\[${arborExpected.code ?? 'E_SOLVE_UNSATISFIABLE'}\\]`));
      for (const name of arborExpected.fails) expect(ours.stderr).toContain(name);
    } else {
      expect(ours.exitCode, ours.stderr).toBe(0);
      const plan = JSON.parse(ours.stdout) as { added: { nevra: string }[]; removed: unknown[]; replaced: unknown[] };
      expect(plan.removed).toEqual([]);
      expect(plan.replaced).toEqual([]);
      expect({ arbor: [...baseSet, ...plan.added.map((p) => p.nevra)].sort() }).toEqual({
        arbor: apply(arborExpected),
      });
    }
  });
});
