// The systemd units Arbor ships (data/systemd) as systemd itself reads them: `systemd-analyze
// verify` in a root that holds systemd's own targets and the programs the units start, so a typo
// in a directive, a missing target or a wrong ExecStart path fails here, not on a booted host.
import { copyFileSync, chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import { spawnSync } from 'node:child_process';
import { hasCommand } from '../support/tool.js';

const UNITS = join(ROOT, 'data/systemd');

const verify = (dir: string, unit: string): { status: number | null; stderr: string } => {
  const r = spawnSync('systemd-analyze', ['verify', `--root=${dir}`, unit], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
};
const HOST_UNITS = '/usr/lib/systemd/system';

/** A root with systemd's targets, the units of data/systemd, and the programs they run. */
function unitRoot(dir: string, edit: (name: string, text: string) => string = (_n, t) => t): string {
  const units = join(dir, 'usr/lib/systemd/system');
  mkdirSync(units, { recursive: true });
  for (const name of readdirSync(HOST_UNITS))
    if (name.endsWith('.target')) cpSync(join(HOST_UNITS, name), join(units, name), { verbatimSymlinks: true });
  for (const name of readdirSync(UNITS))
    writeFileSync(join(units, name), edit(name, readFileSync(join(UNITS, name), 'utf8')));
  mkdirSync(join(dir, 'usr/lib/arbor'), { recursive: true });
  copyFileSync(join(ROOT, 'data/health/arbor-health'), join(dir, 'usr/lib/arbor/arbor-health'));
  chmodSync(join(dir, 'usr/lib/arbor/arbor-health'), 0o755);
  mkdirSync(join(dir, 'usr/bin'), { recursive: true });
  writeFileSync(join(dir, 'usr/bin/arbor'), '#!/bin/sh\n', { mode: 0o755 });
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync('/bin/true', join(dir, 'bin/true'));
  chmodSync(join(dir, 'bin/true'), 0o755);
  return units;
}

describe.skipIf(!hasCommand('systemd-analyze'))('the shipped systemd units', () => {
  const tmp = useTempDir('arbor-units-');

  it.each(readdirSync(UNITS).filter((n) => /\.(service|timer|path)$/.test(n)))(
    'systemd-analyze verify accepts %s',
    (name) => {
      const dir = join(tmp.path, name);
      const units = unitRoot(dir);
      expect(verify(dir, join(units, name))).toEqual({ status: 0, stderr: '' });
    },
  );

  it('runs arbor-health before boot-complete.target, as systemd-bless-boot is ordered', () => {
    const text = readFileSync(join(UNITS, 'arbor-health.service'), 'utf8');
    expect(text).toMatch(/^Before=boot-complete\.target$/m);
    expect(text).toMatch(/^Requires=boot-complete\.target$/m);
    expect(text).toMatch(/^ExecStart=\/usr\/lib\/arbor\/arbor-health$/m);
  });

  it('finalizes a staged deployment through a path unit: the service alone never starts at boot', () => {
    // At boot nothing is staged, so the service's condition fails and its ExecStop would never run.
    const service = readFileSync(join(UNITS, 'arbor-finalize-staged.service'), 'utf8');
    expect(service).toMatch(/^ConditionPathExists=\/sysroot\/arbor\/staged-deployment$/m);
    expect(service).toMatch(/^ExecStop=\/usr\/bin\/arbor admin finalize-staged --sysroot \/sysroot$/m);
    expect(service).not.toMatch(/^WantedBy=/m);
    expect(service).toMatch(/^Also=arbor-finalize-staged\.path$/m);
    const path = readFileSync(join(UNITS, 'arbor-finalize-staged.path'), 'utf8');
    expect(path).toMatch(/^PathExists=\/sysroot\/arbor\/staged-deployment$/m);
    expect(path).toMatch(/^WantedBy=multi-user\.target$/m);
  });

  it('fails on a unit whose program is missing (the check can fail)', () => {
    const dir = join(tmp.path, 'broken');
    const units = unitRoot(dir, (_n, t) =>
      t.replace('ExecStart=/usr/lib/arbor/arbor-health', 'ExecStart=/usr/lib/arbor/arbor-health-typo'),
    );
    const r = verify(dir, join(units, 'arbor-health.service'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('/usr/lib/arbor/arbor-health-typo is not executable');
  });
});
