import { describe, expect, it } from 'vitest';
import { ArborError } from '../../common/errors.js';
import { REPO_DEFAULTS, parseDnfMain, parseRepoFile, substituteVariables, urlRepoConfig } from './repo-file.js';

const VARS = { basearch: 'x86_64', releasever: '40' };

describe('parseRepoFile', () => {
  it('reads every key Arbor acts on, with variables substituted and continuation lines joined', () => {
    const text = [
      '# comment',
      '[fedora]',
      'name=Fedora $releasever - $basearch',
      'baseurl=http://a.example/$releasever/${basearch}/',
      '        http://b.example/$releasever/$arch/',
      'metalink=https://mirrors.example/metalink?repo=fedora-$releasever&arch=$basearch',
      'enabled=yes',
      'priority=10',
      'cost=500',
      'excludepkgs=kernel* foo',
      'exclude=bar',
      'includepkgs=a,b',
      'gpgcheck=True',
      'repo_gpgcheck=on',
      'gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-$releasever-$basearch',
      'metadata_expire=6h',
      'skip_if_unavailable=True',
      'sslverify=0',
      'minrate=10k',
      'timeout=5',
      '',
      '[updates]',
      'mirrorlist=http://m.example/list',
      'enabled=0',
      'metadata_expire=never',
    ].join('\n');
    const { repos, ignoredKeys } = parseRepoFile(text, 'f.repo', VARS);
    expect(repos).toEqual([
      {
        id: 'fedora',
        source: 'f.repo:2',
        baseurls: ['http://a.example/40/x86_64/', 'http://b.example/40/x86_64/'],
        metalink: 'https://mirrors.example/metalink?repo=fedora-40&arch=x86_64',
        mirrorlist: null,
        enabled: true,
        priority: 10,
        cost: 500,
        excludepkgs: ['kernel*', 'foo', 'bar'],
        includepkgs: ['a', 'b'],
        gpgcheck: true,
        repoGpgcheck: true,
        gpgkeys: ['file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-40-x86_64'],
        metadataExpireSeconds: 6 * 3600,
        minrateBytesPerSecond: 10 * 1024,
        timeoutSeconds: 5,
        skipIfUnavailable: true,
      },
      {
        id: 'updates',
        source: 'f.repo:22',
        baseurls: [],
        metalink: null,
        mirrorlist: 'http://m.example/list',
        enabled: false,
        priority: REPO_DEFAULTS.priority,
        cost: REPO_DEFAULTS.cost,
        excludepkgs: [],
        includepkgs: [],
        gpgcheck: false,
        repoGpgcheck: false,
        gpgkeys: [],
        metadataExpireSeconds: Infinity,
        minrateBytesPerSecond: 1000,
        timeoutSeconds: 30,
        // dnf 4's documented default.
        skipIfUnavailable: false,
      },
    ]);
    // Ignored like dnf ignores them, and reported.
    expect(ignoredKeys).toEqual(['fedora.sslverify']);
  });

  it("takes skip_if_unavailable's default from dnf.conf's [main], a repository's own value first", () => {
    const text = '[a]\nbaseurl=http://a/\n[b]\nbaseurl=http://b/\nskip_if_unavailable=0\n';
    const main = { installWeakDeps: true, skipIfUnavailable: true, gpgcheck: false, repoGpgcheck: false };
    expect(parseRepoFile(text, 'f.repo', VARS, main).repos.map((r) => [r.id, r.skipIfUnavailable])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it.each([
    ['[r]\nname=x\n', /^f\.repo:1: repository 'r' has no baseurl, metalink or mirrorlist$/],
    ['[r]\nbaseurl=ftp://x/\n', /^f\.repo:2: baseurl 'ftp:\/\/x\/' is not a/],
    ['[r]\nbaseurl=http://x/\nenabled=maybe\n', /^f\.repo:3: enabled must be 1 or 0/],
    ['[r]\nbaseurl=http://x/\npriority=0\n', /^f\.repo:3: priority must be an integer from 1 to 99$/],
    ['[r]\nbaseurl=http://x/\nmetadata_expire=soon\n', /^f\.repo:3: metadata_expire must be/],
    ['[r]\nbaseurl=http://x/\nminrate=fast\n', /^f\.repo:3: minrate must be bytes per second/],
    ['[r]\nbaseurl=http://x/\ntimeout=0\n', /^f\.repo:3: timeout must be an integer from 1 to 86400$/],
    ['[r]\nbaseurl=http://x/\nskip_if_unavailable=sometimes\n', /^f\.repo:3: skip_if_unavailable must be 1 or 0/],
    ['[r]\nbaseurl=http://x/\nbaseurl=http://y/\n', /^f\.repo:3: key 'baseurl' appears twice/],
    ['baseurl=http://x/\n', /^f\.repo:1: expected \[repository\] or key=value$/],
    ['[r/s]\nbaseurl=http://x/\n', /^f\.repo:1: a repository id holds only/],
  ])('refuses %j with E_YUM_REPO_INVALID naming the line', (text, message) => {
    let error: unknown;
    try {
      parseRepoFile(text, 'f.repo', VARS);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArborError);
    expect(error).toMatchObject({ code: 'E_YUM_REPO_INVALID', exit: 2 });
    expect((error as Error).message).toMatch(message);
  });
});

describe('parseDnfMain', () => {
  const defaults = { installWeakDeps: true, skipIfUnavailable: false, gpgcheck: false, repoGpgcheck: false };

  it("gives dnf's defaults (install_weak_deps True, the others False) for a [main] without them", () => {
    expect(parseDnfMain('[main]\nbest=False\ninstallonly_limit=3\n', 'dnf.conf')).toEqual(defaults);
    expect(parseDnfMain('', 'dnf.conf')).toEqual(defaults);
  });

  it("reads the keys from [main] only, in any of dnf's boolean spellings", () => {
    const text =
      '# a comment\n[main]\ninstall_weak_deps=False\nskip_if_unavailable=on\ngpgcheck=True\nrepo_gpgcheck=1\n[repo]\nbaseurl=http://x/\ninstall_weak_deps=1\n';
    expect(parseDnfMain(text, 'dnf.conf')).toEqual({
      installWeakDeps: false,
      skipIfUnavailable: true,
      gpgcheck: true,
      repoGpgcheck: true,
    });
  });

  it("makes [main]'s gpgcheck and repo_gpgcheck the repositories' defaults, their own values first", () => {
    const main = { ...defaults, gpgcheck: true, repoGpgcheck: true };
    const text = '[a]\nbaseurl=http://a/\n[b]\nbaseurl=http://b/\ngpgcheck=0\nrepo_gpgcheck=no\n';
    expect(parseRepoFile(text, 'f.repo', VARS, main).repos.map((r) => [r.id, r.gpgcheck, r.repoGpgcheck])).toEqual([
      ['a', true, true],
      ['b', false, false],
    ]);
  });

  it.each([
    ['[main]\ninstall_weak_deps=maybe\n', /^dnf\.conf:2: install_weak_deps must be 1 or 0/],
    ['install_weak_deps=0\n', /^dnf\.conf:1: expected \[repository\] or key=value$/],
  ])('refuses %j with E_YUM_REPO_INVALID naming the line', (text, message) => {
    expect(() => parseDnfMain(text, 'dnf.conf')).toThrow(expect.objectContaining({ code: 'E_YUM_REPO_INVALID' }));
    expect(() => parseDnfMain(text, 'dnf.conf')).toThrow(message);
  });
});

describe('substituteVariables', () => {
  it.each([
    ['$basearch/$releasever', 'x86_64/40'],
    ['${basearch}-${releasever}', 'x86_64-40'],
    ['$arch', 'x86_64'],
    ['$unknown/${other}', '$unknown/${other}'],
  ])('%s → %s', (text, expected) => {
    expect(substituteVariables(text, VARS)).toBe(expected);
  });

  it('leaves $releasever as written when none is known', () => {
    expect(substituteVariables('$releasever', { basearch: 'x86_64', releasever: null })).toBe('$releasever');
  });
});

describe('urlRepoConfig', () => {
  it("gives a repository named by URL dnf's defaults, with variables substituted", () => {
    expect(urlRepoConfig('http://h/$releasever/$basearch/', 'os.yaml', VARS)).toMatchObject({
      id: 'http://h/$releasever/$basearch/',
      baseurls: ['http://h/40/x86_64/'],
      enabled: true,
      priority: 99,
      cost: 1000,
      gpgcheck: false,
      repoGpgcheck: false,
      metadataExpireSeconds: 48 * 3600,
      skipIfUnavailable: false,
    });
  });
});
