// A deployment's origin file (`CHECKSUM.SERIAL.origin`): where upgrades come from, and transient
// state such as pinning. An ini file like ostree's (`[origin] refspec=REMOTE:REF`). Pure.
import { UsageError } from '../common/errors.js';

export interface Origin {
  /** `REMOTE:REF`, or a local `REF`; null for a deployment of a bare commit (nothing to upgrade). */
  readonly refspec: string | null;
  /** Kept across upgrades (never removed by cleanup). */
  readonly pinned: boolean;
  /** Other keys, kept as they were: group → key → value. */
  readonly extra: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

export const EMPTY_ORIGIN: Origin = { refspec: null, pinned: false, extra: new Map() };

/** Splits `REMOTE:REF` (a ref alone means a local ref). */
export function parseRefspec(refspec: string): { remote: string | null; ref: string } {
  const colon = refspec.indexOf(':');
  if (colon < 0) return { remote: null, ref: refspec };
  const remote = refspec.slice(0, colon);
  const ref = refspec.slice(colon + 1);
  if (remote === '' || ref === '') throw new UsageError('E_REFSPEC_INVALID', `'${refspec}' is not REMOTE:REF`);
  return { remote, ref };
}

export function parseOrigin(text: string, where: string): Origin {
  const groups = new Map<string, Map<string, string>>();
  let group: Map<string, string> | null = null;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1] as string;
      group = groups.get(name) ?? new Map();
      groups.set(name, group);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || group === null) throw new UsageError('E_ORIGIN_INVALID', `${where}:${i + 1}: expected [group] or key=value, got '${line}'`);
    group.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  const origin = groups.get('origin');
  const transient = groups.get('arbor-transient');
  const refspec = origin?.get('refspec') ?? null;
  const pinned = transient?.get('pinned') === 'true';
  origin?.delete('refspec');
  transient?.delete('pinned');
  const extra = new Map([...groups].filter(([, g]) => g.size > 0));
  return { refspec, pinned, extra };
}

export function formatOrigin(origin: Origin): string {
  const groups = new Map<string, Map<string, string>>();
  for (const [name, g] of origin.extra) groups.set(name, new Map(g));
  const set = (group: string, key: string, value: string): void => {
    const g = groups.get(group) ?? new Map<string, string>();
    g.set(key, value);
    groups.set(group, g);
  };
  if (origin.refspec !== null) set('origin', 'refspec', origin.refspec);
  if (origin.pinned) set('arbor-transient', 'pinned', 'true');
  const out: string[] = [];
  const order = [...groups.keys()].sort((a, b) => (a === 'origin' ? -1 : b === 'origin' ? 1 : a < b ? -1 : 1));
  for (const name of order) {
    out.push(`[${name}]`);
    for (const [k, v] of groups.get(name) as Map<string, string>) out.push(`${k}=${v}`);
    out.push('');
  }
  return out.join('\n');
}
