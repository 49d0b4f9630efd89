// The xattr bytes we derive from capability text equal what the real setcap(8) writes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '../../common/native.js';
import { CAPABILITY_XATTR, encodeFileCaps } from './caps.js';

const haveSetcap = process.getuid?.() === 0 && spawnSync('setcap', ['-h']).error === undefined;

describe('encodeFileCaps', () => {
  it
    .skipIf(!haveSetcap)
    .each([
      'cap_net_raw=ep',
      'cap_net_raw+p',
      'cap_net_admin,cap_net_raw+ep',
      'cap_sys_admin=eip',
      'cap_setuid,cap_setgid=ip',
      'cap_bpf,cap_checkpoint_restore=ep',
      'cap_chown+ep cap_kill+ep',
      'all=ep',
      'all=ep cap_sys_admin-ep',
    ])('writes the bytes setcap writes for %s', (text) => {
    const dir = mkdtempSync('/var/tmp/arbor-caps-');
    try {
      const file = join(dir, 'f');
      writeFileSync(file, '');
      const r = spawnSync('setcap', [text, file], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const written = native.lgetxattrs(file).find(([name]) => name === CAPABILITY_XATTR)?.[1];
      expect(encodeFileCaps(text)?.toString('hex')).toBe(written?.toString('hex'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives no xattr for empty text or empty sets', () => {
    expect(encodeFileCaps('')).toBeUndefined();
    expect(encodeFileCaps('cap_chown=')).toBeUndefined();
  });

  it.each(['cap_nonsense=ep', 'cap_chown'])('refuses %s with E_RPM_CAPS', (text) => {
    expect(() => encodeFileCaps(text)).toThrow(expect.objectContaining({ code: 'E_RPM_CAPS' }));
  });
});
