import { describe, expect, it } from 'vitest';
import { parseFirstbootConfig } from './config.js';
import { installTargets, renderApplyScript, shellQuote } from './render.js';

const parse = (yaml: string) => parseFirstbootConfig('/c.yaml', Buffer.from(yaml));
const refusal = (yaml: string): string => {
  try {
    parse(yaml);
  } catch (error) {
    expect((error as { code: string }).code).toBe('E_FIRSTBOOT_CONFIG');
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe('parseFirstbootConfig', () => {
  it('reads every key with its defaults', () => {
    const c = parse(
      'hostname: a.example\nusers:\n  - name: core\nfiles:\n  - path: /etc/x\n    mode: "0600"\ndirectories:\n  - path: /var/d\n    owner: 1001\nsystemd:\n  units:\n    - name: x.service\n      mask: true\nkernel_arguments:\n  should_exist: [quiet]\n  should_not_exist: [rhgb]\n',
    );
    expect(c).toMatchObject({
      hostname: 'a.example',
      users: [{ name: 'core', uid: null, home: '/home/core', shell: '/bin/sh', groups: [], passwordHash: null }],
      files: [{ path: '/etc/x', contents: '', mode: 0o600, owner: 'root', group: 'root' }],
      directories: [{ path: '/var/d', mode: 0o755, owner: '1001', group: 'root' }],
      units: [{ name: 'x.service', enabled: false, mask: true, contents: null }],
      kargsAdd: ['quiet'],
      kargsRemove: ['rhgb'],
    });
    expect(refusal('')).toContain('/c.yaml: the configuration must be a mapping of keys');
  });

  it.each([
    ['user: []\n', "/c.yaml:1:1: unknown key 'user' in the configuration (did you mean 'users'?)"],
    ['users:\n  - name: Core\n', '/c.yaml:2:11: a user name is not an account name'],
    [
      'files:\n  - path: /etc/x\n    mode: 0644\n',
      "/c.yaml:3:11: 'mode' must be an octal mode written '0644' (quoted) or 0o644",
    ],
    ['files:\n  - path: /usr/bin/x\n', '/c.yaml:2:11: a file path is under /usr, which first boot must not write'],
    ['files:\n  - path: /etc/../shadow\n', '/c.yaml:2:11: a file path must be a normal path'],
    ['directories:\n  - path: etc/x\n', '/c.yaml:2:11: a directory path must be an absolute path'],
    [
      'systemd:\n  units:\n    - name: a.service\n      enabled: true\n      mask: true\n',
      "/c.yaml:3:7: unit 'a.service' cannot be both enabled and masked",
    ],
    [
      'systemd:\n  units:\n    - name: a@.service\n      enabled: true\n',
      '/c.yaml:3:13: a unit name is not a unit file name',
    ],
    ['systemd:\n  units:\n    - name: a.service\n', "/c.yaml:3:7: unit 'a.service' says nothing to do"],
    ['users:\n  - name: a\n    password_hash: "x:y"\n', "/c.yaml:3:20: 'password_hash' is not a crypt(3) hash"],
    ['users:\n  - name: a\n    ssh_authorized_keys: ["k\\nk"]\n', '/c.yaml:3:27: an ssh key must be one line'],
    ['users:\n  - name: a\n  - name: a\n', 'user "a" is configured twice'],
    ['hostname: -bad\n', "/c.yaml:1:11: 'hostname' is not a valid host name"],
    ['kernel_arguments:\n  should_exist: ["a b"]\n', '/c.yaml:2:18: a kernel argument is not one word'],
    ['users: {name: a}\n', "/c.yaml:1:8: 'users' must be a list"],
    ['a: [\n', '/c.yaml:2:1:'],
  ])('refuses %j', (yaml, message) => {
    expect(refusal(yaml)).toContain(message);
  });
});

describe('render', () => {
  it('reads [Install] targets as systemd does, an empty assignment resetting the list', () => {
    expect(
      installTargets(
        '[Unit]\nWantedBy=no.target\n[Install]\nWantedBy=a.target b.target\nWantedBy=\nWantedBy=c.target\nRequiredBy=d.target\n',
      ),
    ).toEqual({ wantedBy: ['c.target'], requiredBy: ['d.target'] });
  });

  it('quotes every word, so values with quotes and newlines reach the functions unchanged', () => {
    expect(shellQuote("it's\n$x")).toBe("'it'\\''s\n$x'");
    const script = renderApplyScript(parse('files:\n  - path: /etc/q\n    contents: "a\'b\\n$(x)"\n'), [], '# lib');
    expect(script).toContain("step 'file /etc/q' 'write_file' '/etc/q' '0644' 'root' 'root' 'a'\\''b\n$(x)'\nfinish\n");
  });
});
