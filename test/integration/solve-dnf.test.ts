// The dependency solver against the real dnf: two yum repositories of small packages built with
// rpmbuild, then for each install request the set dnf installs into a fresh installroot must equal
// the set solve() picks, and a request dnf refuses must make solve() throw E_SOLVE_UNSATISFIABLE.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArborError } from '../../src/common/errors.js';
import { type Universe, loadUniverse } from '../../src/rpm-compose/solve/universe.js';
import { solve } from '../../src/rpm-compose/solve/depsolve.js';
import { HAVE_DNF, dnfInstall, packageKey } from '../support/dnf.js';
import { HAVE_CREATEREPO, HAVE_RPMBUILD, type PackageDef, makeRepo } from '../support/rpmgen.js';
import { useTempDir } from '../support/temp.js';

// Names are grouped by the case that uses them, so no case sees another's packages by accident.
const PACKAGES: readonly PackageDef[] = [
  // plain
  { name: 'hello', requires: ['libhello'] },
  { name: 'libhello' },
  // a chain five levels deep, through a versioned requirement
  { name: 'chain-a', requires: ['chain-b'] },
  { name: 'chain-b', requires: ['chain-c >= 2'] },
  { name: 'chain-c', version: '1' },
  { name: 'chain-c', version: '2', requires: ['chain-d'] },
  { name: 'chain-d', requires: ['chain-e'] },
  { name: 'chain-e' },
  // versions: newest wins unless a request or a requirement says otherwise
  { name: 'tool', version: '1.0', release: '1' },
  { name: 'tool', version: '1.0', release: '2' },
  { name: 'tool', version: '2.0', release: '1' },
  { name: 'tool-user', requires: ['tool < 2'] },
  { name: 'tool-fan', requires: ['tool'] },
  // epoch beats version
  { name: 'ep', version: '9.0' },
  { name: 'ep', version: '1.0', epoch: 1 },
  // arch: x86_64 before i686 of the same name; i686 alone is still installable; noarch mixes in
  { name: 'multi', arch: 'x86_64' },
  { name: 'multi', arch: 'i686' },
  { name: 'only32', arch: 'i686' },
  { name: 'archapp', arch: 'x86_64', requires: ['multi', 'archdata'] },
  { name: 'archdata' },
  // virtual provides: one provider, versioned provides, two providers of different names
  { name: 'mta-lite', provides: ['mta'] },
  { name: 'api-one', provides: ['api(foo) = 1'] },
  { name: 'api-two', provides: ['api(foo) = 2'] },
  { name: 'api-user', requires: ['api(foo) >= 2'] },
  { name: 'zed', provides: ['editor'] },
  { name: 'ed-lite', provides: ['editor'] },
  { name: 'zz-pager', provides: ['pager'] },
  // file dependencies: one path primary.xml lists (…/bin/), one only filelists.xml has
  { name: 'fuser', requires: ['/usr/bin/ftool', '/usr/share/fdata/table'] },
  { name: 'ftool', files: { '/usr/bin/ftool': 'tool\n' } },
  { name: 'fdata', files: { '/usr/share/fdata/table': 'data\n' } },
  // conflicts: one that must fail, one the solver must route around
  { name: 'clash-a', conflicts: ['clash-b'] },
  { name: 'clash-b' },
  { name: 'pick', requires: ['impl'] },
  { name: 'impl-a', provides: ['impl'] },
  { name: 'impl-b', provides: ['impl'] },
  { name: 'hater', conflicts: ['impl-a'] },
  // obsoletes: with and without a matching provide
  { name: 'oldpkg', version: '1' },
  { name: 'newpkg', version: '2', obsoletes: ['oldpkg < 2'], provides: ['oldpkg = 2'] },
  { name: 'needs-old', requires: ['oldpkg'] },
  { name: 'gone', version: '1' },
  { name: 'successor', obsoletes: ['gone < 2'] },
  { name: 'needs-gone', requires: ['gone'] },
  // weak dependencies: Recommends (one missing, one conflicting), Suggests, Supplements
  { name: 'weak-app', recommends: ['rec-lib', 'rec-missing', 'rec-bad'], suggests: ['sug-lib'] },
  { name: 'rec-lib' },
  { name: 'rec-bad', conflicts: ['weak-app'] },
  { name: 'sug-lib' },
  { name: 'sup-plugin', supplements: ['weak-app'] },
  // boolean (rich) dependencies
  { name: 'or-user', requires: ['(or-b or or-a)'] },
  { name: 'or-a' },
  { name: 'or-b' },
  { name: 'if-user', requires: ['(if-then if if-cond)'] },
  { name: 'if-then' },
  { name: 'if-cond' },
  { name: 'ifelse-user', requires: ['(ie-a if ie-cond else ie-b)'] },
  { name: 'ie-a' },
  { name: 'ie-b' },
  { name: 'ie-cond' },
  { name: 'and-user', requires: ['(and-a and and-b)'] },
  { name: 'and-a' },
  { name: 'and-b' },
  { name: 'with-user', requires: ['(withlib >= 2 with withlib < 3)'] },
  { name: 'withlib', version: '1' },
  { name: 'withlib', version: '2' },
  { name: 'withlib', version: '3' },
  // unsatisfiable: only missing-lib 1 exists
  { name: 'broken-top', requires: ['broken-mid'] },
  { name: 'broken-mid', requires: ['missing-lib >= 2'] },
  { name: 'missing-lib', version: '1' },
];

// A second repository, read after the first: its provider of `pager` comes later in the universe
// but first by name.
const LATER_PACKAGES: readonly PackageDef[] = [{ name: 'aa-pager', provides: ['pager'] }];

interface Case {
  readonly title: string;
  readonly request: readonly string[];
  readonly installWeakDeps?: boolean;
  readonly exclude?: readonly string[];
  /** What dnf installs (`name-epoch:version-release.arch`), or the names its refusal must mention. */
  readonly expected: readonly string[] | { readonly fails: readonly string[] };
}

const n = (name: string, evr = '0:1-1', arch = 'noarch'): string => `${name}-${evr}.${arch}`;

const CASES: readonly Case[] = [
  { title: 'installs a package and what it requires', request: ['hello'], expected: [n('hello'), n('libhello')] },
  {
    title: 'follows a chain of requirements five levels deep',
    request: ['chain-a'],
    expected: [n('chain-a'), n('chain-b'), n('chain-c', '0:2-1'), n('chain-d'), n('chain-e')],
  },
  { title: 'picks the newest of three versions', request: ['tool'], expected: [n('tool', '0:2.0-1')] },
  {
    title: 'picks the newest release of a requested NAME-VERSION',
    request: ['tool-1.0'],
    expected: [n('tool', '0:1.0-2')],
  },
  {
    title: 'picks exactly a requested NAME-VERSION-RELEASE',
    request: ['tool-1.0-1'],
    expected: [n('tool', '0:1.0-1')],
  },
  {
    title: 'picks the newest version a dependency allows',
    request: ['tool-fan'],
    expected: [n('tool-fan'), n('tool', '0:2.0-1')],
  },
  {
    title: 'picks an older version when a versioned requirement excludes the newest',
    request: ['tool-user'],
    expected: [n('tool-user'), n('tool', '0:1.0-2')],
  },
  {
    title: 'settles a plain name request on an older version that another request needs',
    request: ['tool', 'tool-user'],
    expected: [n('tool-user'), n('tool', '0:1.0-2')],
  },
  { title: 'ranks a higher epoch above a higher version', request: ['ep'], expected: [n('ep', '1:1.0-1')] },
  { title: 'prefers x86_64 over i686 of the same name', request: ['multi'], expected: [n('multi', '0:1-1', 'x86_64')] },
  { title: 'installs i686 when asked for NAME.ARCH', request: ['multi.i686'], expected: [n('multi', '0:1-1', 'i686')] },
  {
    title: 'installs an i686 package when no x86_64 one exists',
    request: ['only32'],
    expected: [n('only32', '0:1-1', 'i686')],
  },
  {
    title: 'resolves an x86_64 package to x86_64 and noarch dependencies',
    request: ['archapp'],
    expected: [n('archapp', '0:1-1', 'x86_64'), n('multi', '0:1-1', 'x86_64'), n('archdata')],
  },
  { title: 'installs the only provider of a requested capability', request: ['mta'], expected: [n('mta-lite')] },
  {
    title: 'picks the provider whose versioned provide matches',
    request: ['api-user'],
    expected: [n('api-user'), n('api-two')],
  },
  { title: 'breaks a tie between providers of different names by name', request: ['editor'], expected: [n('ed-lite')] },
  { title: 'breaks a provider tie by name, not by repository order', request: ['pager'], expected: [n('aa-pager')] },
  {
    title: 'satisfies file dependencies from primary.xml and filelists.xml',
    request: ['fuser'],
    expected: [n('fuser'), n('ftool'), n('fdata')],
  },
  { title: 'installs the owner of a requested file path', request: ['/usr/share/fdata/table'], expected: [n('fdata')] },
  {
    title: 'refuses two requested packages that conflict',
    request: ['clash-a', 'clash-b'],
    expected: { fails: ['clash-a', 'clash-b'] },
  },
  {
    title: 'picks the first provider by name when nothing rules it out',
    request: ['pick'],
    expected: [n('pick'), n('impl-a')],
  },
  {
    title: 'routes around a provider another request conflicts with',
    request: ['pick', 'hater'],
    expected: [n('pick'), n('hater'), n('impl-b')],
  },
  {
    title: 'installs the obsoleting package for a request of an obsoleted name',
    request: ['oldpkg'],
    expected: [n('newpkg', '0:2-1')],
  },
  {
    title: 'satisfies a requirement with the obsoleting package that provides it',
    request: ['needs-old'],
    expected: [n('needs-old'), n('newpkg', '0:2-1')],
  },
  {
    title: 'installs the obsoleter for a request of a name it obsoletes without providing',
    request: ['gone'],
    expected: [n('successor')],
  },
  {
    title: 'keeps a required package that is obsoleted but not provided',
    request: ['needs-gone'],
    expected: [n('needs-gone'), n('gone')],
  },
  {
    title: 'installs Recommends and Supplements but never Suggests, skipping ones that cannot be installed',
    request: ['weak-app'],
    expected: [n('weak-app'), n('rec-lib'), n('sup-plugin')],
  },
  {
    title: 'installs no weak dependencies when they are turned off',
    request: ['weak-app'],
    installWeakDeps: false,
    expected: [n('weak-app')],
  },
  {
    title: 'picks the first alternative by name for (a or b)',
    request: ['or-user'],
    expected: [n('or-user'), n('or-a')],
  },
  {
    title: 'takes the (a or b) alternative already being installed',
    request: ['or-user', 'or-b'],
    expected: [n('or-user'), n('or-b')],
  },
  { title: 'leaves out (a if b) when b is not installed', request: ['if-user'], expected: [n('if-user')] },
  {
    title: 'installs a for (a if b) when b is requested',
    request: ['if-user', 'if-cond'],
    expected: [n('if-user'), n('if-cond'), n('if-then')],
  },
  {
    title: 'takes the else branch of (a if b else c)',
    request: ['ifelse-user'],
    expected: [n('ifelse-user'), n('ie-b')],
  },
  {
    title: 'installs both halves of (a and b)',
    request: ['and-user'],
    expected: [n('and-user'), n('and-a'), n('and-b')],
  },
  {
    title: 'picks the one version satisfying (x with y)',
    request: ['with-user'],
    expected: [n('with-user'), n('withlib', '0:2-1')],
  },
  {
    title: 'picks another provider when one is excluded',
    request: ['pick'],
    exclude: ['impl-a'],
    expected: [n('pick'), n('impl-b')],
  },
  {
    title: 'fails when the only provider of a requirement is excluded',
    request: ['hello'],
    exclude: ['libhello'],
    expected: { fails: ['hello', 'libhello'] },
  },
  {
    title: 'fails on a requested package that is excluded',
    request: ['tool'],
    exclude: ['tool'],
    expected: { fails: ['tool'] },
  },
  {
    title: 'fails on a missing dependency two levels down, naming the chain',
    request: ['broken-top'],
    expected: { fails: ['broken-top', 'broken-mid', 'missing-lib >= 2'] },
  },
  {
    title: 'fails on a request nothing provides',
    request: ['no-such-package'],
    expected: { fails: ['no-such-package'] },
  },
];

describe.skipIf(!HAVE_RPMBUILD || !HAVE_CREATEREPO || !HAVE_DNF)('solve() against dnf', () => {
  const tmp = useTempDir('solve-dnf');
  let repoDirs: string[] = [];
  let universe: Universe;
  beforeAll(async () => {
    repoDirs = [join(tmp.path, 'repo'), join(tmp.path, 'later')];
    makeRepo(repoDirs[0] as string, PACKAGES);
    makeRepo(repoDirs[1] as string, LATER_PACKAGES);
    universe = await loadUniverse(repoDirs);
  });

  it.each(CASES)('$title', ({ request, installWeakDeps = true, exclude = [], expected }) => {
    const root = mkdtempSync(join(tmp.path, 'root-'));
    const dnf = dnfInstall(root, repoDirs, request, { installWeakDeps, exclude });
    let ours: unknown;
    try {
      ours = solve(universe, { packages: request, exclude, installWeakDeps, arch: 'x86_64' })
        .packages.map((c) => packageKey(c.pkg))
        .sort();
    } catch (error) {
      ours = error;
    }

    if (Array.isArray(expected)) {
      // One comparison so a failure shows dnf's set and ours side by side.
      expect({ dnf: dnf.ok ? dnf.installed : dnf.output, ours: ours instanceof Error ? ours.message : ours }).toEqual({
        dnf: [...expected].sort(),
        ours: [...expected].sort(),
      });
      return;
    }
    const { fails } = expected as { readonly fails: readonly string[] };
    expect(dnf.ok, `dnf installed ${dnf.installed.join(' ')}`).toBe(false);
    for (const name of fails) expect(dnf.output).toContain(name);
    expect(ours, `solve() picked ${String(ours)}`).toBeInstanceOf(ArborError);
    const error = ours as ArborError;
    expect(error.code).toBe('E_SOLVE_UNSATISFIABLE');
    for (const name of fails) expect(error.message).toContain(name);
  });
});
