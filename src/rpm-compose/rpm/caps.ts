// File capabilities: the text rpm keeps in FILECAPS ("cap_net_raw=ep", cap_from_text syntax)
// turned into the `security.capability` xattr the kernel reads (VFS caps, revision 2).
import { ArborError } from '../../common/errors.js';

/** Capability numbers of linux/capability.h, by name without the `cap_` prefix. */
const CAPABILITIES = [
  'chown',
  'dac_override',
  'dac_read_search',
  'fowner',
  'fsetid',
  'kill',
  'setgid',
  'setuid',
  'setpcap',
  'linux_immutable',
  'net_bind_service',
  'net_broadcast',
  'net_admin',
  'net_raw',
  'ipc_lock',
  'ipc_owner',
  'sys_module',
  'sys_rawio',
  'sys_chroot',
  'sys_ptrace',
  'sys_pacct',
  'sys_admin',
  'sys_boot',
  'sys_nice',
  'sys_resource',
  'sys_time',
  'sys_tty_config',
  'mknod',
  'lease',
  'audit_write',
  'audit_control',
  'setfcap',
  'mac_override',
  'mac_admin',
  'syslog',
  'wake_alarm',
  'block_suspend',
  'audit_read',
  'perfmon',
  'bpf',
  'checkpoint_restore',
];

export const CAPABILITY_XATTR = 'security.capability';
const VFS_CAP_REVISION_2 = 0x02000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x1;

/**
 * Encodes cap_from_text syntax ("cap_a,cap_b+ep cap_c=i", "all=ep", "=") as a revision-2 VFS
 * capability: le32 magic|effective flag, then (permitted, inheritable) as two le32 words each for
 * capabilities 0–31 and 32–63. Returns undefined for an empty text (no capabilities).
 */
export function encodeFileCaps(text: string): Buffer | undefined {
  if (text.trim() === '') return undefined;
  const sets = { e: 0n, i: 0n, p: 0n };
  const all = (1n << BigInt(CAPABILITIES.length)) - 1n;
  for (const clause of text.trim().split(/\s+/)) {
    const at = clause.search(/[=+-]/);
    if (at < 0) throw capsError(text, `'${clause}' has no operator (=, + or -)`);
    const names = clause.slice(0, at);
    let mask = 0n;
    if (names === '' || names === 'all') mask = all;
    else {
      for (const name of names.split(',')) {
        const index = CAPABILITIES.indexOf(name.toLowerCase().replace(/^cap_/, ''));
        if (index < 0) throw capsError(text, `unknown capability '${name}'`);
        mask |= 1n << BigInt(index);
      }
    }
    for (const [, op, flags] of clause.slice(at).matchAll(/([=+-])([eip]*)/g)) {
      if (op === '=') for (const set of ['e', 'i', 'p'] as const) sets[set] &= ~mask;
      for (const flag of flags as string) {
        const set = flag as 'e' | 'i' | 'p';
        sets[set] = op === '-' ? sets[set] & ~mask : sets[set] | mask;
      }
    }
  }
  if (sets.p === 0n && sets.i === 0n) return undefined;
  const out = Buffer.alloc(20);
  out.writeUInt32LE(VFS_CAP_REVISION_2 | (sets.e !== 0n ? VFS_CAP_FLAGS_EFFECTIVE : 0), 0);
  out.writeUInt32LE(Number(sets.p & 0xffffffffn), 4);
  out.writeUInt32LE(Number(sets.i & 0xffffffffn), 8);
  out.writeUInt32LE(Number(sets.p >> 32n), 12);
  out.writeUInt32LE(Number(sets.i >> 32n), 16);
  return out;
}

function capsError(text: string, problem: string): ArborError {
  return new ArborError('E_RPM_CAPS', `file capabilities '${text}' cannot be read: ${problem}`);
}
