// Putting a first-boot configuration into a deployment: the generated `apply` script, the unit list and
// unit files under /etc/arbor/firstboot, and the generator in /etc/systemd/system-generators. What the
// configuration enables is resolved against the deployment's own unit files here, at build time, so a
// unit that does not exist or cannot be enabled is an error now rather than at the machine's first boot.
import { lstatSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, UsageError, errnoCode, ioError } from '../common/errors.js';
import { dataFile } from '../common/data-file.js';
import { writeFileAtomic } from '../common/fs-atomic.js';
import { readFileInRoot, realDirInRoot } from '../deploy/index.js';
import type { FirstbootConfig } from './config.js';
import { type UnitPlan, installTargets, renderApplyScript, renderUnitList } from './render.js';

/** Where the configuration lives in a deployment, relative to its root. */
export const FIRSTBOOT_DIR = 'etc/arbor/firstboot';
const GENERATOR_DIR = 'etc/systemd/system-generators';
const GENERATOR = 'arbor-firstboot-generator';
/** Where systemd looks for unit files a tree ships, in its order (the first found wins). */
const UNIT_DIRS = ['/etc/systemd/system', '/usr/lib/systemd/system'];
const MAX_UNIT_BYTES = 1024 * 1024;
const TARGET_NAME = /^[A-Za-z0-9:_.\\-]+\.(target|service|socket|timer|path|slice)$/;

/**
 * Installs `config` into the deployment checked out at `root` (its /etc must be a real directory),
 * replacing any earlier configuration, and returns the unit plans it resolved. Kernel arguments are
 * the caller's: they belong to the boot entry, not to /etc.
 */
export function installFirstboot(root: string, config: FirstbootConfig): UnitPlan[] {
  const plans = config.units.map((u) => planUnit(root, config, u));
  const dir = ensureDir(root, FIRSTBOOT_DIR, 0o700);
  // A new configuration is pending again: an earlier one's outcome no longer applies.
  for (const name of ['done', 'result', 'failed-step.log', 'apply']) rmSync(join(dir, name), { force: true });
  const unitsDir = ensureDir(root, `${FIRSTBOOT_DIR}/units.d`, 0o755);
  for (const p of plans) if (p.contents !== null) writeFileAtomic(join(unitsDir, p.name), p.contents, 0o644);
  writeFileAtomic(join(dir, 'units'), renderUnitList(plans), 0o644);
  const lib = readFileSync(dataFile('firstboot/lib.sh'), 'utf8');
  // Written last: the generator acts only when `apply` exists, so a failure above leaves nothing active.
  const generators = ensureDir(root, GENERATOR_DIR, 0o755);
  writeFileAtomic(join(generators, GENERATOR), readFileSync(dataFile(`firstboot/${GENERATOR}`)), 0o755);
  // Holds password hashes: root only.
  writeFileAtomic(join(dir, 'apply'), renderApplyScript(config, plans, lib), 0o700);
  return plans;
}

function planUnit(root: string, config: FirstbootConfig, unit: FirstbootConfig['units'][number]): UnitPlan {
  if (!unit.enabled) return { name: unit.name, contents: unit.contents, links: [], mask: unit.mask };
  let text = unit.contents;
  let target = `/etc/systemd/system/${unit.name}`;
  if (text === null) {
    for (const dir of UNIT_DIRS) {
      const bytes = readFileInRoot(root, `${dir}/${unit.name}`, MAX_UNIT_BYTES);
      if (bytes !== null) {
        text = bytes.toString('utf8');
        target = `${dir}/${unit.name}`;
        break;
      }
    }
  }
  if (text === null)
    throw new UsageError(
      'E_FIRSTBOOT_CONFIG',
      `${config.path}: unit '${unit.name}' is not in the tree (${UNIT_DIRS.join(', ')}) and the configuration gives no contents`,
    );
  const { wantedBy, requiredBy } = installTargets(text);
  const links = [
    ...wantedBy.map((t) => ({ dir: `${t}.wants`, target })),
    ...requiredBy.map((t) => ({ dir: `${t}.requires`, target })),
  ];
  const bad = [...wantedBy, ...requiredBy].find((t) => !TARGET_NAME.test(t));
  if (bad !== undefined)
    throw new UsageError(
      'E_FIRSTBOOT_CONFIG',
      `${config.path}: unit '${unit.name}' names a unit this cannot link to in its [Install] section: ${JSON.stringify(bad)}`,
    );
  if (links.length === 0)
    throw new UsageError(
      'E_FIRSTBOOT_CONFIG',
      `${config.path}: unit '${unit.name}' cannot be enabled: its [Install] section has no WantedBy= or RequiredBy=`,
    );
  return { name: unit.name, contents: unit.contents, links, mask: false };
}

/** `rel` below `root` as a real directory (created with `mode` where missing); a link or file on the way is an error. */
function ensureDir(root: string, rel: string, mode: number): string {
  const parts = rel.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const found = realDirInRoot(root, sub);
    if (found.kind === 'dir') continue;
    if (found.kind === 'not-dir')
      throw new ArborError(
        'E_FIRSTBOOT_TREE',
        `cannot install the first-boot configuration: ${found.at} in the deployment is ${found.what}, not a directory`,
      );
    try {
      mkdirSync(join(root, sub), { mode: i === parts.length ? mode : 0o755 });
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST' || !lstatSync(join(root, sub)).isDirectory())
        throw ioError('create', join(root, sub), error);
    }
  }
  return join(root, rel);
}
