// The boot-time form of a first-boot configuration: the `apply` script (the shell library followed by
// one quoted `step` line per change) and the `units` list the generator reads. Pure: text in, text out.
import { parseInstallSection } from '../common/unit-install.js';
import type { FirstbootConfig } from './config.js';

/** What enabling, masking or shipping one unit takes: computed from the tree by install.ts. */
export interface UnitPlan {
  readonly name: string;
  /** The unit file the configuration ships, or null. */
  readonly contents: string | null;
  /** `DIR/NAME -> target` links under /etc/systemd/system, DIR such as `multi-user.target.wants`. */
  readonly links: readonly { readonly dir: string; readonly target: string }[];
  readonly mask: boolean;
}

/** The targets a unit's [Install] section names in WantedBy= and RequiredBy=. */
export function installTargets(unitText: string): { wantedBy: string[]; requiredBy: string[] } {
  const install = parseInstallSection(unitText);
  return { wantedBy: install.get('WantedBy') ?? [], requiredBy: install.get('RequiredBy') ?? [] };
}

/** `s` as one single-quoted shell word. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

/** The `apply` script: `lib` (data/firstboot/lib.sh), then the steps in a fixed order, then `finish`. */
export function renderApplyScript(config: FirstbootConfig, plans: readonly UnitPlan[], lib: string): string {
  const steps: string[] = [];
  const step = (name: string, ...words: string[]): void => {
    steps.push(['step', shellQuote(name), ...words.map(shellQuote)].join(' '));
  };
  if (config.hostname !== null) step(`hostname ${config.hostname}`, 'set_hostname', config.hostname);
  for (const g of config.groups) step(`group ${g.name}`, 'ensure_group', g.name, g.gid === null ? '' : String(g.gid));
  for (const u of config.users) {
    step(
      `user ${u.name}`,
      'ensure_user',
      u.name,
      u.uid === null ? '' : String(u.uid),
      u.gecos,
      u.home,
      u.shell,
      u.groups.join(','),
      u.passwordHash ?? '',
    );
    if (u.sshAuthorizedKeys.length > 0)
      step(`ssh keys of ${u.name}`, 'authorized_keys', u.name, ...u.sshAuthorizedKeys);
  }
  for (const d of config.directories) step(`directory ${d.path}`, 'make_dir', d.path, octal(d.mode), d.owner, d.group);
  for (const f of config.files)
    step(`file ${f.path}`, 'write_file', f.path, octal(f.mode), f.owner, f.group, f.contents);
  for (const p of plans) {
    if (p.contents !== null) step(`unit file ${p.name}`, 'unit_file', p.name);
    for (const l of p.links) step(`enable ${p.name} (${l.dir})`, 'link_unit', l.dir, p.name, l.target);
    if (p.mask) step(`mask ${p.name}`, 'mask_unit', p.name);
  }
  return [
    '#!/bin/sh',
    '# Written by arbor from a first-boot configuration; run once by arbor-firstboot.service.',
    lib.trimEnd(),
    '',
    '# The configuration, one step per change.',
    ...steps,
    'finish',
    '',
  ].join('\n');
}

/** The generator's `units` list: `unit NAME`, `link DIR NAME TARGET`, `mask NAME`, one per line. */
export function renderUnitList(plans: readonly UnitPlan[]): string {
  const lines: string[] = [];
  for (const p of plans) {
    if (p.contents !== null) lines.push(`unit ${p.name}`);
    for (const l of p.links) lines.push(`link ${l.dir} ${p.name} ${l.target}`);
    if (p.mask) lines.push(`mask ${p.name}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}
