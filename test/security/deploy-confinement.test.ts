// Deployments are confined to their own root (through the built CLI, as root): trees whose /usr,
// /usr/etc or /etc are links out of the deployment (to the host, by absolute and relative paths,
// or into another deployment), damaged or hostile origin files, newline injection through
// --origin-ref, kernel arguments that would split, and downgrades. Every refusal must keep the
// sysroot as it was, and a canary file outside the sysroot must never be read: its content may
// appear neither in the sysroot nor in any output.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, IS_ROOT, arbor, sh } from '../support/cli.js';
import { expectArborError } from '../support/repo-surgery.js';
import {
  COMMIT_TIMESTAMP,
  type Commit,
  KVER,
  STATEROOT,
  TestSysroot,
  commitRootOwned,
  writeOsTree,
} from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { filledInBeforeAll } from '../support/filled-later.js';

const CANARY = `canary-${randomUUID()}`;

/** What a hostile tree puts where /usr, /usr/etc or /etc belong: a symlink with this target. */
interface Hostile {
  readonly usr?: string;
  readonly usrEtc?: string;
  readonly etc?: string;
}

/** A bootable tree (kernel in /boot, so it needs no /usr) with the links of `hostile`. */
function writeHostileTree(dir: string, hostile: Hostile): void {
  writeOsTree(dir, {
    version: 'evil',
    kernel: null,
    etc: { passwd: 'root:x:0:0::/root:/bin/sh\n' },
    files: { [`boot/vmlinuz-${KVER}`]: 'evil kernel\n', [`boot/initramfs-${KVER}.img`]: 'evil initramfs\n' },
  });
  // A static init, as the attack used: the preflight's init check alone passes it.
  writeFileSync(join(dir, 'usr/sbin/init'), '\x7fELF static init\n', { mode: 0o755 });
  if (hostile.usrEtc !== undefined) {
    rmSync(join(dir, 'usr/etc'), { recursive: true });
    symlinkSync(hostile.usrEtc, join(dir, 'usr/etc'));
  }
  if (hostile.usr !== undefined) {
    rmSync(join(dir, 'usr'), { recursive: true });
    symlinkSync(hostile.usr, join(dir, 'usr'));
  }
  if (hostile.etc !== undefined) symlinkSync(hostile.etc, join(dir, 'etc'));
}

describe.skipIf(!IS_ROOT)('deployments confined to their own root', () => {
  const tmp = useTempDir('arbor-confine-');
  /** Outside every sysroot: etc/ with a canary file, and a "secret" whose first line is the canary. */
  let outside: string;
  let template: TestSysroot;
  const c = filledInBeforeAll<{ v1: Commit; v2: Commit; old: Commit }>();
  const hostile = new Map<string, Hostile>();
  let copies = 0;
  /** A copy of the template: v1 deployed (os/main), the other commits ready. */
  const fresh = (): TestSysroot => template.copyTo(join(tmp.path, `sysroot-${copies++}`));
  const short = (commit: Commit, serial = 0): string => `${commit.checksum}.${serial}`;

  /** The canary's content appears in no file of the sysroot (grep -r follows no link) and in no output. */
  function expectNoCanary(s: TestSysroot, ...outputs: CliResult[]): void {
    const grep = spawnSync('grep', ['-rlF', '--binary-files=text', CANARY, s.path], { encoding: 'utf8' });
    expect(grep.stdout).toBe('');
    for (const o of outputs) expect(`${o.stdout}${o.stderr}`).not.toContain(CANARY);
  }

  beforeAll(() => {
    outside = join(tmp.path, 'outside');
    mkdirSync(join(outside, 'etc/ssh'), { recursive: true });
    writeFileSync(join(outside, 'etc/shadow'), `root:${CANARY}:19000:0:99999:7:::\n`, { mode: 0o600 });
    writeFileSync(join(outside, 'etc/ssh/ssh_host_ed25519_key'), `${CANARY}\n`, { mode: 0o600 });
    writeFileSync(join(outside, 'secret'), `${CANARY}:first line\nsecond line\n`);

    template = TestSysroot.create(join(tmp.path, 'template'));
    const trees = join(tmp.path, 'trees');
    c.v1 = template.commit('os/main', { version: '1', etc: { hostname: 'host\n' } }, trees);
    c.v2 = template.commit(
      'os/next',
      { version: '2', etc: { hostname: 'host\n' }, timestamp: COMMIT_TIMESTAMP + 3600 },
      trees,
    );
    c.old = template.commit(
      'os/old',
      { version: '0.9', etc: { hostname: 'host\n' }, timestamp: COMMIT_TIMESTAMP - 100_000_000 },
      trees,
    );
    template.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
    // Up to / from any depth, then down to the canary: a relative way out.
    const up = '../'.repeat(40);
    const cases: [string, Hostile][] = [
      ['usr-root', { usr: '/' }],
      ['usr-outside', { usr: outside }],
      ['usr-up', { usr: '../../..' }],
      ['usr-up-outside', { usr: `${up}${outside.slice(1)}` }],
      ['usr-other-deployment', { usr: `../${short(c.v1)}/usr` }],
      ['usretc-etc', { usrEtc: '/etc' }],
      ['usretc-outside', { usrEtc: join(outside, 'etc') }],
      ['usretc-up-outside', { usrEtc: `${up}${outside.slice(1)}/etc` }],
      ['etc-dangling', { etc: '/nonexistent/etc' }],
      ['etc-outside', { etc: join(outside, 'etc') }],
    ];
    for (const [name, h] of cases) {
      const dir = join(trees, `hostile-${name}`);
      writeHostileTree(dir, h);
      template.commitDir(`os/evil-${name}`, dir, 'evil');
      hostile.set(name, h);
    }
  });

  describe('trees whose /usr, /usr/etc or /etc leave the deployment', () => {
    it.each<[string, string, string[]]>([
      ['usr-root', '/usr', ['admin', 'deploy']],
      ['usr-outside', '/usr', ['admin', 'deploy']],
      ['usr-up', '/usr', ['admin', 'deploy']],
      ['usr-up-outside', '/usr', ['admin', 'deploy', '--stage']],
      ['usr-other-deployment', '/usr', ['admin', 'deploy']],
      ['usretc-etc', '/usr/etc', ['admin', 'deploy']],
      ['usretc-outside', '/usr/etc', ['admin', 'deploy']],
      ['usretc-up-outside', '/usr/etc', ['admin', 'deploy', '--no-preflight']],
      ['etc-dangling', '/etc', ['admin', 'deploy']],
      ['etc-outside', '/etc', ['rebase']],
    ])('refuses %s before anything is written (E_DEPLOY_TREE_INVALID at %s)', (name, at, command) => {
      const s = fresh();
      const before = s.listing();
      const names = s.deployNames();
      const target = (hostile.get(name) as Hostile)[at === '/usr' ? 'usr' : at === '/etc' ? 'etc' : 'usrEtc'] as string;
      const r = s.cli([...command, `os/evil-${name}`]);
      expectArborError(r, 1, 'E_DEPLOY_TREE_INVALID', `${at} is a symlink to '${target}'`, 'must be real directories');
      expect(s.listing()).toEqual(before);
      expect(s.deployNames()).toEqual(names);
      expect(s.bootOrder()).toEqual([short(c.v1)]);
      expectNoCanary(s, r);
    });

    it('refuses to merge from a deployment whose /etc was replaced on disk by a link out of it', () => {
      const s = fresh();
      const dir = s.deploymentDir(c.v1.checksum);
      renameSync(join(dir, 'etc'), join(dir, 'etc.real'));
      symlinkSync(join(outside, 'etc'), join(dir, 'etc'));
      const before = s.listing();
      const r = s.cli(['admin', 'deploy', 'os/next']);
      expectArborError(
        r,
        1,
        'E_DEPLOY_TREE_INVALID',
        `deployment os ${short(c.v1)}: /etc is a symlink to '${join(outside, 'etc')}'`,
      );
      expect(s.listing()).toEqual(before);
      expect(s.deployNames()).toEqual([short(c.v1), `${short(c.v1)}.origin`]);
      expectNoCanary(s, r);
    });

    it('refuses config-diff of a deployment whose /usr was replaced on disk by a link to the host', () => {
      const s = fresh();
      const dir = s.deploymentDir(c.v1.checksum);
      renameSync(join(dir, 'usr'), join(dir, 'usr.real'));
      symlinkSync(outside, join(dir, 'usr'));
      const r = s.cli(['admin', 'config-diff']);
      expectArborError(r, 1, 'E_DEPLOY_TREE_INVALID', `/usr is a symlink to '${outside}'`);
      expectNoCanary(s, r);
    });
  });

  describe('origin files and the other state beside deployments', () => {
    const originOf = (s: TestSysroot): string => join(s.deployDir, `${short(c.v1)}.origin`);

    it.each<[string, (path: string) => void, string]>([
      ['a directory', (p) => (rmSync(p), mkdirSync(p)), 'is a directory'],
      ['a symlink to a secret', (p) => (rmSync(p), symlinkSync(join(outside, 'secret'), p)), 'is a symlink'],
      [
        'a symlink to the canary shadow file',
        (p) => (rmSync(p), symlinkSync(join(outside, 'etc/shadow'), p)),
        'is a symlink',
      ],
    ])('status, deploy and pin refuse an origin that is %s (E_ORIGIN_INVALID, exit 3)', (_, make, what) => {
      const s = fresh();
      make(originOf(s));
      const before = s.listing();
      for (const command of [['status'], ['status', '--json'], ['admin', 'deploy', 'os/next'], ['admin', 'pin', '0']]) {
        const r = s.cli(command);
        expectArborError(r, 3, 'E_ORIGIN_INVALID', `origin file '${originOf(s)}' ${what}`);
        expectNoCanary(s, r);
      }
      expect(s.listing()).toEqual(before);
    });

    it('refuses an origin with control characters, naming the line and not the content', () => {
      const s = fresh();
      writeFileSync(originOf(s), `[origin]\nrefspec=os/main\n${CANARY}=\u001b]0;pwned\u0007\n`);
      const before = s.listing();
      const r = s.cli(['status']);
      expectArborError(
        r,
        3,
        'E_ORIGIN_INVALID',
        `origin file '${originOf(s)}' line 3: it contains a control character`,
      );
      expect(r.stderr).not.toContain('pwned');
      expect(r.stderr).not.toContain(CANARY);
      expect(s.listing()).toEqual(before);
    });

    it.each<[string, (s: TestSysroot) => string]>([
      [
        'an /etc conflict list linked to a secret',
        (s) => {
          const path = join(s.deployDir, `${short(c.v1)}.etc-conflicts`);
          symlinkSync(join(outside, 'secret'), path);
          return `/etc conflict list '${path}' is a symlink`;
        },
      ],
      [
        'a staged deployment file holding a secret',
        (s) => {
          writeFileSync(join(s.path, 'arbor/staged-deployment'), `{"deployment": ${CANARY}}`);
          return `staged deployment file '${join(s.path, 'arbor/staged-deployment')}' is not valid JSON`;
        },
      ],
    ])('status refuses %s (E_DEPLOY_STATE_INVALID, exit 3) without quoting it', (_, make) => {
      const s = fresh();
      const expected = make(s);
      const r = s.cli(['status']);
      expectArborError(r, 3, 'E_DEPLOY_STATE_INVALID', expected);
      expect(`${r.stdout}${r.stderr}`).not.toContain(CANARY);
    });

    it('refuses a newline in --origin-ref before anything is written: no line is injected', () => {
      const s = fresh();
      const before = s.listing();
      const r = s.cli(['admin', 'deploy', '--origin-ref', 'os/main\n[arbor-transient]\npinned=true', 'os/next']);
      expectArborError(
        r,
        2,
        'E_REFSPEC_INVALID',
        "'os/main\\n[arbor-transient]\\npinned=true' is not a valid refspec: it contains a control character",
      );
      expect(s.listing()).toEqual(before);
      expect(s.deployNames()).toEqual([short(c.v1), `${short(c.v1)}.origin`]);
      expect(s.status().deployments.map((d) => d.pinned)).toEqual([false]);
      expect(s.ok('status')).not.toContain('Pinned');
    });
  });

  describe('kernel arguments', () => {
    it.each([['a b'], ['opt="a b'], ['x=1\narbor=/evil'], ['"a b"']])(
      'refuses --karg %j (E_KARG_INVALID, exit 2) before anything is written',
      (karg) => {
        const s = fresh();
        const before = s.listing();
        const r = s.cli(['admin', 'deploy', '--karg', karg, 'os/next']);
        expectArborError(r, 2, 'E_KARG_INVALID', 'cannot be used');
        expect(s.listing()).toEqual(before);
        expect(s.bootOrder()).toEqual([short(c.v1)]);
      },
    );

    it('keeps KEY="A B" one argument in the entry and in status', () => {
      const s = fresh();
      const r = s.cli(['admin', 'deploy', '--karg', 'opt="a b"', '--karg', 'quiet', 'os/next']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(s.readBootSet().entries[0]?.entry.options).toMatch(/^opt="a b" quiet arbor=/);
      expect(s.status().deployments[0]?.kargs).toEqual(['opt="a b"', 'quiet']);
      expect(s.bootSetProblems()).toEqual([]);
    });
  });

  describe('downgrades', () => {
    it('refuses to deploy an older commit without --allow-downgrade, naming both versions', () => {
      const s = fresh();
      const before = s.listing();
      const r = s.cli(['admin', 'deploy', 'os/old']);
      expectArborError(
        r,
        1,
        'E_DEPLOY_DOWNGRADE',
        '0.9 (2020-09-13T12:26:40Z) is older than the current deployment',
        '1 (2023-11-14T22:13:20Z)',
        'hint: pass --allow-downgrade',
      );
      expect(s.listing()).toEqual(before);
      expect(s.deployNames()).toEqual([short(c.v1), `${short(c.v1)}.origin`]);
    });

    it('deploys it with --allow-downgrade: said in text and JSON, recorded in the origin and shown by status', () => {
      const s = fresh();
      const r = s.cli(['admin', 'deploy', '--allow-downgrade', 'os/old']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toBe(
        `deployed os ${short(c.old)} (version 0.9)\ndowngrade: 1 (2023-11-14T22:13:20Z) → 0.9 (2020-09-13T12:26:40Z); allowed by --allow-downgrade\n`,
      );
      expect(readFileSync(join(s.deployDir, `${short(c.old)}.origin`), 'utf8')).toBe(
        '[origin]\nrefspec=os/old\nallow-downgrade=true\n',
      );
      expect(s.ok('status')).toContain('      Downgrade: deployed with --allow-downgrade');
      expect(
        s.status().deployments.map((d) => (d as unknown as { allowDowngrade?: boolean }).allowDowngrade ?? false),
      ).toEqual([true, false]);
      // Rollback goes back to the newer deployment and forth again: never a downgrade.
      expect(s.cli(['rollback']).exitCode).toBe(0);
      expect(s.cli(['rollback']).exitCode).toBe(0);
      expect(s.bootOrder()).toEqual([short(c.old), short(c.v1)]);

      const json = s.cli(['admin', 'deploy', '--allow-downgrade', '--json', 'os/main']);
      expect(json.exitCode, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({ downgrade: null });
    });

    it('upgrade --check reports an older origin commit as a downgrade; upgrade refuses it until --allow-downgrade', () => {
      const s = fresh();
      s.repoCli('reset', 'os/main', c.old.checksum);
      const before = s.listing();
      const check = s.cli(['upgrade', '--check']);
      expect(check).toMatchObject({ exitCode: 0, stderr: '' });
      expect(check.stdout).toBe(
        `downgrade: 1 (2023-11-14T22:13:20Z) → 0.9 (2020-09-13T12:26:40Z); os/main is at an older commit ${c.old.checksum}; \`arbor upgrade\` deploys it only with --allow-downgrade\n`,
      );
      const checkJson = JSON.parse(s.cli(['upgrade', '--check', '--json']).stdout) as {
        downgrade: { from: { version: string }; to: { version: string } };
      };
      expect([checkJson.downgrade.from.version, checkJson.downgrade.to.version]).toEqual(['1', '0.9']);
      expectArborError(s.cli(['upgrade']), 1, 'E_DEPLOY_DOWNGRADE', '--allow-downgrade');
      expect(s.listing()).toEqual(before);
      const r = s.cli(['upgrade', '--allow-downgrade']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toBe(
        `deployed ${short(c.old)} (version 0.9); reboot to use it\ndowngrade: 1 (2023-11-14T22:13:20Z) → 0.9 (2020-09-13T12:26:40Z); allowed by --allow-downgrade\n`,
      );
    });

    it('upgrade --check takes a remote commit time from the summary and reports an older one as a downgrade', () => {
      const s = fresh();
      const server = join(tmp.path, `server-${copies}`);
      arbor('init', '--repo', server, '--mode', 'archive');
      const serve = (version: string, timestamp: number): string => {
        const dir = join(tmp.path, `server-tree-${copies}-${version}`);
        writeOsTree(dir, { version, etc: { hostname: 'host\n' } });
        const { checksum } = commitRootOwned(server, 'os/stable', dir, version, timestamp);
        arbor('summary', '--repo', server, '--update');
        return checksum;
      };
      serve('3', COMMIT_TIMESTAMP + 7200);
      s.repoCli('remote', 'add', 'srv', server, '--no-sign-verify');
      expect(s.cli(['rebase', 'srv:os/stable']).exitCode).toBe(0);
      // The server's ref moves on to a commit made earlier (a stale build published late).
      const older = serve('2.5', COMMIT_TIMESTAMP + 60);
      const before = s.listing();
      const check = s.cli(['upgrade', '--check']);
      expect(check).toMatchObject({ exitCode: 0, stderr: '' });
      expect(check.stdout).toMatch(
        new RegExp(
          `^downgrade: 3 \\(2023-11-15T00:13:20Z\\) → 2\\.5 \\(2023-11-14T22:14:20Z\\); srv:os/stable is at an older commit ${older}; \`arbor upgrade\` deploys it only with --allow-downgrade\n {2}download: [\\d.]+ (B|KiB|MiB)\n$`,
        ),
      );
      expect(s.listing()).toEqual(before);
    });

    it('an upgrade to a newer commit is not a downgrade', () => {
      const s = fresh();
      s.repoCli('reset', 'os/main', c.v2.checksum);
      const r = s.cli(['upgrade', '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ downgrade: null, deployed: { downgrade: null } });
      expect(sh(`cat '${join(s.deployDir, `${short(c.v2)}.origin`)}'`)).toBe('[origin]\nrefspec=os/main\n');
    });
  });
});
