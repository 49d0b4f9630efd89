// First-boot configuration end to end without booting: `arbor admin firstboot` installs it into a real
// deployment, then the generator and the generated script run under dash and busybox sh against that
// deployment (ARBOR_FIRSTBOOT_ROOT), and `arbor status` reports pending, applied, or the failed step.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { STATEROOT, TestSysroot } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { listTree } from '../support/tree.js';

const HELLO_UNIT =
  '[Unit]\nDescription=hello\n[Service]\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n';
const NO_INSTALL_UNIT = '[Unit]\nDescription=static\n[Service]\nExecStart=/usr/bin/true\n';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@arbor';
const HASH = '$6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ./0123456789abcdefghijk';

const CONFIG = `
hostname: edge-01
groups:
  - name: ops
    gid: 1500
users:
  - name: core
    gecos: Core user
    shell: /bin/sh
    groups: [wheel, ops]
    password_hash: "${HASH}"
    ssh_authorized_keys:
      - ${KEY}
directories:
  - path: /var/lib/app
    mode: "0750"
    owner: core
    group: ops
files:
  - path: /etc/app/app.conf
    mode: 0o640
    owner: root
    group: ops
    contents: "name = 'edge'\\nlevel = 3\\n"
systemd:
  units:
    - name: hello.service
      enabled: true
    - name: extra.service
      enabled: true
      contents: |
        [Service]
        ExecStart=/usr/bin/true
        [Install]
        WantedBy=default.target
    - name: debug-shell.service
      mask: true
kernel_arguments:
  should_exist: [quiet]
`;

describe.each(['dash', 'busybox sh'])('first boot under %s', (shell) => {
  const tmp = useTempDir('arbor-firstboot-');
  let s: TestSysroot;
  let root: string;
  const status = () => s.status().firstboot;

  beforeAll(() => {
    s = TestSysroot.create(join(tmp.path, 'sysroot'));
    const { checksum } = s.commit(
      'os/main',
      {
        version: '1',
        etc: {
          passwd: 'root:x:0:0:root:/root:/bin/sh\n',
          group: 'root:x:0:\nwheel:x:10:\n',
          shadow: { file: 'root:*:19000:0:99999:7:::\n', mode: 0o600 },
        },
        files: {
          'usr/lib/systemd/system/hello.service': HELLO_UNIT,
          'usr/lib/systemd/system/static.service': NO_INSTALL_UNIT,
          home: { link: 'var/home' },
        },
      },
      tmp.path,
    );
    s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
    root = s.deploymentDir(checksum);
    mkdirSync(join(root, 'var/home'), { recursive: true });
  });

  const run = (env: NodeJS.ProcessEnv = {}): ReturnType<typeof spawnSync> => {
    const [cmd, ...args] = shell.split(' ');
    return spawnSync(cmd as string, [...args, join(root, 'etc/arbor/firstboot/apply')], {
      encoding: 'utf8',
      env: { ...process.env, ARBOR_FIRSTBOOT_ROOT: root, ...env },
    });
  };

  it('installs the configuration: pending in status, kernel arguments in the entry', () => {
    writeFileSync(join(tmp.path, 'config.yaml'), CONFIG);
    const out = s.ok('admin', 'firstboot', join(tmp.path, 'config.yaml'));
    expect(out).toMatch(/^installed in os [0-9a-f]{64}\.0: 1 users, 1 groups, 1 files, 1 directories, 3 units/);
    expect(status()).toMatchObject({ state: 'pending' });
    expect(s.status().deployments[0]?.kargs).toContain('quiet');
    expect(statSync(join(root, 'etc/arbor/firstboot/apply')).mode & 0o777).toBe(0o700);
  });

  it('the generator adds the service and this boot’s unit links, and masks', () => {
    const dirs = ['normal', 'early', 'late'].map((d) => join(tmp.path, `gen-${shell}-${d}`));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    const [cmd, ...args] = shell.split(' ');
    const r = spawnSync(
      cmd as string,
      [...args, join(root, 'etc/systemd/system-generators/arbor-firstboot-generator'), ...dirs],
      { encoding: 'utf8', env: { ...process.env, ARBOR_FIRSTBOOT_ROOT: root } },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [normal, early] = dirs as [string, string, string];
    expect(readFileSync(join(normal, 'arbor-firstboot.service'), 'utf8')).toContain(
      'ExecStart=/etc/arbor/firstboot/apply',
    );
    expect(readlinkSync(join(normal, 'sysinit.target.wants/arbor-firstboot.service'))).toBe(
      '../arbor-firstboot.service',
    );
    expect(readlinkSync(join(normal, 'multi-user.target.wants/hello.service'))).toBe(
      '/usr/lib/systemd/system/hello.service',
    );
    expect(readlinkSync(join(normal, 'default.target.wants/extra.service'))).toBe(join(normal, 'extra.service'));
    expect(readlinkSync(join(early, 'debug-shell.service'))).toBe('/dev/null');
  });

  it('applies every step, records it, and a second run changes nothing', () => {
    const r = run();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const etc = (p: string): string => readFileSync(join(root, 'etc', p), 'utf8');
    expect(etc('hostname')).toBe('edge-01\n');
    expect(etc('group')).toBe('root:x:0:\nwheel:x:10:core\nops:x:1500:core\ncore:x:1000:\n');
    expect(etc('passwd')).toContain('core:x:1000:1000:Core user:/home/core:/bin/sh\n');
    expect(etc('shadow')).toMatch(new RegExp(`^core:${HASH.replaceAll('$', '\\$')}:\\d+:0:99999:7:::$`, 'm'));
    expect(statSync(join(root, 'etc/shadow')).mode & 0o777).toBe(0o600);
    const keys = join(root, 'var/home/core/.ssh/authorized_keys');
    expect(readFileSync(keys, 'utf8')).toBe(`${KEY}\n`);
    expect(statSync(keys)).toMatchObject({ uid: 1000, gid: 1000 });
    expect(statSync(keys).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, 'var/lib/app'))).toMatchObject({ uid: 1000, gid: 1500 });
    expect(statSync(join(root, 'var/lib/app')).mode & 0o777).toBe(0o750);
    expect(etc('app/app.conf')).toBe("name = 'edge'\nlevel = 3\n");
    expect(statSync(join(root, 'etc/app/app.conf'))).toMatchObject({ uid: 0, gid: 1500 });
    expect(statSync(join(root, 'etc/app/app.conf')).mode & 0o777).toBe(0o640);
    expect(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/hello.service'))).toBe(
      '/usr/lib/systemd/system/hello.service',
    );
    expect(readlinkSync(join(root, 'etc/systemd/system/default.target.wants/extra.service'))).toBe(
      '/etc/systemd/system/extra.service',
    );
    expect(etc('systemd/system/extra.service')).toContain('WantedBy=default.target');
    expect(readlinkSync(join(root, 'etc/systemd/system/debug-shell.service'))).toBe('/dev/null');
    expect(status()).toMatchObject({ state: 'applied', steps: 10, failedStep: null });
    expect(lstatSync(join(root, 'etc/arbor/firstboot/done')).isFile()).toBe(true);

    const before = listTree(join(root, 'etc'));
    const again = run();
    expect(again.status).toBe(0);
    // Only the result's time may differ.
    const strip = (l: typeof before) => l.filter((e) => !e.path.startsWith('arbor/firstboot/result'));
    expect(strip(listTree(join(root, 'etc')))).toEqual(strip(before));
  });

  it('once done, the generator adds nothing', () => {
    const dirs = ['n2', 'e2', 'l2'].map((d) => join(tmp.path, `gen-${shell}-${d}`));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    const [cmd, ...args] = shell.split(' ');
    const r = spawnSync(cmd as string, [
      ...args,
      join(root, 'etc/systemd/system-generators/arbor-firstboot-generator'),
      ...dirs,
    ]);
    expect(r.status).toBe(0);
    for (const d of dirs) expect(readdirSync(d)).toEqual([]);
  });

  it('a failing step is recorded with its output, status shows it, and the rest is not run', () => {
    writeFileSync(
      join(tmp.path, 'bad.yaml'),
      'users:\n  - name: dev\n    groups: [nosuchgroup]\nfiles:\n  - path: /etc/after\n    contents: x\n',
    );
    s.ok('admin', 'firstboot', join(tmp.path, 'bad.yaml'));
    const r = run();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("arbor-firstboot: step 'user dev' failed");
    expect(status()).toMatchObject({
      state: 'failed',
      failedStep: 'user dev',
      exit: 1,
      steps: 0,
      output: "group 'nosuchgroup' does not exist\n",
    });
    expect(() => statSync(join(root, 'etc/after'))).toThrow(/ENOENT/);
    const text = s.ok('status');
    expect(text).toContain("FIRST BOOT FAILED at step 'user dev' (exit 1)");
    expect(text).toContain("    | group 'nosuchgroup' does not exist");
  });
});

describe('arbor admin firstboot refuses', () => {
  const tmp = useTempDir('arbor-firstboot-bad-');
  let s: TestSysroot;

  beforeAll(() => {
    s = TestSysroot.create(join(tmp.path, 'sysroot'));
    s.commit(
      'os/main',
      { version: '1', files: { 'usr/lib/systemd/system/static.service': NO_INSTALL_UNIT } },
      tmp.path,
    );
    s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
  });

  it.each([
    [
      'an unknown key, with its position',
      'users:\n  - name: a\n    sshkeys: []\n',
      /bad\.yaml:3:5: unknown key 'sshkeys' in a user/,
    ],
    [
      'a unit the tree lacks',
      'systemd:\n  units:\n    - name: nope.service\n      enabled: true\n',
      /unit 'nope\.service' is not in the tree/,
    ],
    [
      'a unit without [Install]',
      'systemd:\n  units:\n    - name: static.service\n      enabled: true\n',
      /has no WantedBy= or RequiredBy=/,
    ],
  ])('%s', (_what, yaml, message) => {
    writeFileSync(join(tmp.path, 'bad.yaml'), yaml);
    const before = listTree(s.path);
    const r = s.cli(['admin', 'firstboot', join(tmp.path, 'bad.yaml')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('E_FIRSTBOOT_CONFIG');
    expect(listTree(s.path)).toEqual(before);
  });
});
