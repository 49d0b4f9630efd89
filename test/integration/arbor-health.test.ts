// data/health/arbor-health on the host under busybox sh (seconds, no QEMU): its decisions for
// systemd-boot and GRUB trials, and that every write it needs is checked: on a full or read-only
// ESP, /boot or /var it leaves each file as it was, never claims a bless it could not write, and
// exits 1. The same script in QEMU boots is trial-boot.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { grubTrialToken, parseGrubenv } from '../../src/bootloader/grub2.js';
import { parseBlsEntry } from '../../src/bootloader/bls.js';
import { hasBootTreeTooling } from '../support/boot-tree.js';
import { IS_ROOT } from '../support/cli.js';
import {
  HEALTH_STATEROOT,
  type HealthCase,
  entryText,
  fileNames as names,
  putFile as put,
  useHealthHost,
} from '../support/health-host.js';
import { ARBOR_HEALTH_SCRIPT, FAILING_CHECK_OUTPUT } from '../support/trial-tree.js';

describe.skipIf(!hasBootTreeTooling())('arbor-health on the host (busybox sh)', () => {
  const host = useHealthHost();
  const { setup, check, record } = host;
  const runHealth = host.run;

  it('computes the same GRUB trial token as grub.cfg (quotes in the options included)', () => {
    const c = setup(['B']);
    const text = entryText('B', c.s.args.get('B') as string, ' foo="a b" x=\\y');
    put(c.copies, 'e.conf', text);
    const token = grubTrialToken({
      ...parseBlsEntry(text, 'e.conf'),
      deployment: `${HEALTH_STATEROOT}/${c.s.deployments.get('B')}`,
    });
    const r = spawnSync(join(host.bin, 'sh'), [ARBOR_HEALTH_SCRIPT, '--grub-token', join(c.copies, 'e.conf')], {
      encoding: 'utf8',
      env: { PATH: host.bin, ARBOR_SYSROOT: c.s.root },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(token);
    // Without a deployment behind its arbor= argument an entry has no token: it is nobody's trial.
    put(c.copies, 'f.conf', text.replace(c.s.args.get('B') as string, '/arbor/boot.1/os/bootcsum/9'));
    const none = spawnSync(join(host.bin, 'sh'), [ARBOR_HEALTH_SCRIPT, '--grub-token', join(c.copies, 'f.conf')], {
      encoding: 'utf8',
      env: { PATH: host.bin, ARBOR_SYSROOT: c.s.root },
    });
    expect(none.stdout).toBe('');
  });

  it('systemd-boot: a passing trial is blessed on the ESP and in the sysroot copy', () => {
    const c = setup(['A', 'B']);
    put(c.esp, 'arbor-os-1+1-1.conf', entryText('B', c.s.args.get('B') as string));
    put(c.esp, 'arbor-os-0.conf', entryText('A', c.s.args.get('A') as string));
    put(c.copies, 'arbor-os-1+2.conf', entryText('B', c.s.args.get('B') as string));
    put(c.copies, 'arbor-os-0.conf', entryText('A', c.s.args.get('A') as string));
    // Left by an earlier attempt whose exhaustion a power cut stopped: void once B passes.
    mkdirSync(c.s.failures, { recursive: true });
    put(c.s.failures, c.s.deployments.get('B') as string, 'when=1\nreason=health-check\ncheck=/x\ntries-used=1\n');
    put(c.s.failures, `${c.s.deployments.get('B')}.output`, 'flaky\n');
    check(c, true);
    const r = runHealth(c, 'B', [c.esp, c.copies]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`ARBOR-HEALTH blessed ${c.s.deployments.get('B')}`);
    expect(readdirSync(c.s.failures)).toEqual([]);
    expect(r.rebooted).toBe(false);
    expect(names(c.esp)).toEqual(['arbor-os-0.conf', 'arbor-os-1.conf']);
    expect(names(c.copies)).toEqual(['arbor-os-0.conf', 'arbor-os-1.conf']);
    // The next boot: not on trial, nothing changes.
    const again = runHealth(c, 'B', [c.esp, c.copies]);
    expect(again.stdout).toContain('ARBOR-HEALTH not-on-trial');
    expect(names(c.esp)).toEqual(['arbor-os-0.conf', 'arbor-os-1.conf']);
  });

  it('systemd-boot: a failing check is recorded, the trial exhausted everywhere, and the machine rebooted', () => {
    const c = setup(['B', 'C']);
    put(c.esp, 'arbor-os-1+1-1.conf', entryText('C', c.s.args.get('C') as string));
    put(c.esp, 'arbor-os-0.conf', entryText('B', c.s.args.get('B') as string));
    put(c.copies, 'arbor-os-1+2.conf', entryText('C', c.s.args.get('C') as string));
    check(c, false);
    const r = runHealth(c, 'C', [c.esp, c.copies]);
    expect(r.stdout).toContain(`ARBOR-HEALTH failed ${c.s.deployments.get('C')} check=10-check tries-used=1`);
    expect(r.rebooted).toBe(true);
    expect(names(c.esp)).toEqual(['arbor-os-0.conf', 'arbor-os-1+0-1.conf']);
    expect(names(c.copies)).toEqual(['arbor-os-1+0-1.conf']);
    expect(record(c, 'C')).toMatch(
      new RegExp(`^when=\\d+\\nreason=health-check\\ncheck=${join(c.checks, '10-check')}\\ntries-used=1\\n$`),
    );
    expect(readFileSync(join(c.s.failures, `${c.s.deployments.get('C')}.output`), 'utf8')).toBe(
      `${FAILING_CHECK_OUTPUT}\n`,
    );
    // The fallback boot of B sees the record: it keeps it and says so.
    const fallback = runHealth(c, 'B', [c.esp, c.copies]);
    expect(fallback.stdout).toContain('ARBOR-HEALTH not-on-trial');
    expect(fallback.stdout).toContain(`ARBOR-HEALTH fallback from ${c.s.deployments.get('C')} tries-used=1`);
    expect(record(c, 'C')).toContain('reason=health-check');
  });

  it('systemd-boot: on the fallback boot, a trial that ran out of tries (never checked) is recorded and its copy exhausted', () => {
    const c = setup(['B', 'C']);
    put(c.esp, 'arbor-os-1+0-2.conf', entryText('C', c.s.args.get('C') as string));
    put(c.esp, 'arbor-os-0.conf', entryText('B', c.s.args.get('B') as string));
    put(c.copies, 'arbor-os-1+2.conf', entryText('C', c.s.args.get('C') as string));
    put(c.copies, 'arbor-os-0.conf', entryText('B', c.s.args.get('B') as string));
    check(c, true);
    const r = runHealth(c, 'B', [c.esp, c.copies]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.rebooted).toBe(false);
    expect(r.stdout).toContain(`ARBOR-HEALTH fallback from ${c.s.deployments.get('C')} tries-used=2`);
    expect(record(c, 'C')).toMatch(/^when=\d+\nreason=tries-exhausted\ntries-used=2\n$/);
    expect(names(c.copies)).toEqual(['arbor-os-0.conf', 'arbor-os-1+0-2.conf']);
    expect(names(c.esp)).toEqual(['arbor-os-0.conf', 'arbor-os-1+0-2.conf']);
    const first = record(c, 'C');
    runHealth(c, 'B', [c.esp, c.copies]);
    expect(record(c, 'C')).toBe(first); // once only
  });

  it('systemd-boot: a bless cut short (ESP renamed, copy not yet) is finished on the next boot', () => {
    const c = setup(['A', 'B']);
    put(c.esp, 'arbor-os-1.conf', entryText('B', c.s.args.get('B') as string));
    put(c.copies, 'arbor-os-1+1-1.conf', entryText('B', c.s.args.get('B') as string));
    check(c, false); // must not even run: B is not on trial
    const r = runHealth(c, 'B', [c.esp, c.copies]);
    expect(r.stdout).toContain('ARBOR-HEALTH not-on-trial');
    expect(r.rebooted).toBe(false);
    expect(names(c.copies)).toEqual(['arbor-os-1.conf']);
  });

  it('a check that hangs (its child holding the output open) fails at the time limit, and says so', () => {
    const c = setup(['B', 'C']);
    put(c.esp, 'arbor-os-1+2-1.conf', entryText('C', c.s.args.get('C') as string));
    put(c.esp, 'arbor-os-0.conf', entryText('B', c.s.args.get('B') as string));
    // The shell waits for sleep, which inherits stdout: only killing or not waiting ends it.
    writeFileSync(join(c.checks, '10-check'), '#!/bin/sh\necho "waiting for the service"\nsleep 120\necho never\n', {
      mode: 0o755,
    });
    const r = runHealth(c, 'C', [c.esp]);
    expect(r.status, r.stderr).not.toBeNull(); // finished well before runHealth's own limit
    expect(r.stdout).toContain(`ARBOR-HEALTH failed ${c.s.deployments.get('C')} check=10-check tries-used=1`);
    expect(r.rebooted).toBe(true);
    expect(readFileSync(join(c.s.failures, `${c.s.deployments.get('C')}.output`), 'utf8')).toMatch(
      /^waiting for the service\n(.*\n)?\(timed out after 5s\)\n$/,
    );
  });

  it('a failing check with no tries left records it but does not reboot (nothing to fall back to)', () => {
    const c = setup(['C']);
    put(c.esp, 'arbor-os-0+0-2.conf', entryText('C', c.s.args.get('C') as string));
    check(c, false);
    const r = runHealth(c, 'C', [c.esp]);
    expect(r.status).toBe(1);
    expect(r.rebooted).toBe(false);
    expect(record(c, 'C')).toContain('reason=health-check');
  });

  it('GRUB: the trial named by grubenv is blessed there and its entry renamed', () => {
    const c = setup(['A', 'B']);
    const b = entryText('B', c.s.args.get('B') as string);
    put(c.copies, 'arbor-os-1+2.conf', b);
    put(c.copies, 'arbor-os-0.conf', entryText('A', c.s.args.get('A') as string));
    const token = grubTrialToken({
      ...parseBlsEntry(b, 'arbor-os-1+2.conf'),
      deployment: `${HEALTH_STATEROOT}/${c.s.deployments.get('B')}`,
    });
    mkdirSync(join(c.s.root, 'boot/grub'));
    writeFileSync(
      c.grubenv,
      `# GRUB Environment Block\narbor_trial=${token}\narbor_tries_left=1\narbor_tries_done=1\n`.padEnd(1024, '#'),
    );
    check(c, true);
    const r = runHealth(c, 'B', [c.esp, c.copies]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('ARBOR-HEALTH blessed');
    const env = readFileSync(c.grubenv);
    expect(env.length).toBe(1024);
    expect(parseGrubenv(env).get('arbor_blessed')).toBe(token);
    expect(names(c.copies)).toEqual(['arbor-os-0.conf', 'arbor-os-1.conf']);
  });

  it('GRUB: on the fallback boot an exhausted trial is not blessed by the good deployment, but recorded and marked', () => {
    const c = setup(['B', 'C']);
    const bText = entryText('B', c.s.args.get('B') as string);
    const cText = entryText('C', c.s.args.get('C') as string, ' quiet');
    put(c.copies, 'arbor-os-1+2.conf', cText);
    put(c.copies, 'arbor-os-0.conf', bText);
    const tb = grubTrialToken({
      ...parseBlsEntry(bText, 'x.conf'),
      deployment: `${HEALTH_STATEROOT}/${c.s.deployments.get('B')}`,
    });
    const tc = grubTrialToken({
      ...parseBlsEntry(cText, 'x.conf'),
      deployment: `${HEALTH_STATEROOT}/${c.s.deployments.get('C')}`,
    });
    mkdirSync(join(c.s.root, 'boot/grub'));
    const before = Buffer.from(
      `# GRUB Environment Block\narbor_blessed=${tb}\narbor_trial=${tc}\narbor_tries_left=0\narbor_tries_done=2\n`.padEnd(
        1024,
        '#',
      ),
    );
    writeFileSync(c.grubenv, before);
    check(c, true);
    const r = runHealth(c, 'B', [c.esp, c.copies]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('ARBOR-HEALTH not-on-trial');
    expect(r.stdout).toContain(`ARBOR-HEALTH fallback from ${c.s.deployments.get('C')} tries-used=2`);
    expect(readFileSync(c.grubenv).equals(before)).toBe(true); // arbor_blessed stays B's
    expect(names(c.copies)).toEqual(['arbor-os-0.conf', 'arbor-os-1+0-2.conf']);
    expect(record(c, 'C')).toMatch(/reason=tries-exhausted\ntries-used=2\n$/);
  });
});

/** Runs a command of the test's own set-up, failing loudly. */
function run(command: string, args: readonly string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
}

/** Makes DIR read-only (a read-only bind mount of itself) until the test ends. */
function readOnly(dir: string): void {
  run('mount', ['--bind', dir, dir]);
  onTestFinished(() => run('umount', [dir]));
  run('mount', ['-o', 'remount,bind,ro', dir]);
}

/** Puts a 64 KiB tmpfs on DIR (empty) until the test ends; `fill` then uses up its space. */
function smallTmpfs(dir: string): { fill(): void } {
  mkdirSync(dir, { recursive: true });
  run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
  onTestFinished(() => run('umount', [dir]));
  return {
    fill() {
      // cat stops at ENOSPC: its failure is the point.
      spawnSync('sh', ['-c', `cat /dev/zero > '${join(dir, 'filler')}'`]);
      expect(spawnSync('sh', ['-c', `printf x >> '${join(dir, 'filler')}'`]).status).not.toBe(0);
    },
  };
}

describe.skipIf(!hasBootTreeTooling() || !IS_ROOT)(
  'arbor-health when a write fails (full or read-only file systems; root for the mounts)',
  () => {
    const host = useHealthHost('arbor-health-writes-');
    const { setup, check, record } = host;
    const deployment = (c: HealthCase, name: string): string => c.s.deployments.get(name) as string;
    const arg = (c: HealthCase, name: string): string => c.s.args.get(name) as string;

    /** A GRUB trial of B (A the other entry) whose grubenv holds TEXT before the padding; returns grubenv's bytes. */
    function grubTrial(c: HealthCase, extra = ''): Buffer {
      const b = entryText('B', arg(c, 'B'));
      put(c.copies, 'arbor-os-1+2.conf', b);
      put(c.copies, 'arbor-os-0.conf', entryText('A', arg(c, 'A')));
      const token = grubTrialToken({
        ...parseBlsEntry(b, 'arbor-os-1+2.conf'),
        deployment: `${HEALTH_STATEROOT}/${deployment(c, 'B')}`,
      });
      mkdirSync(join(c.s.root, 'boot/grub'), { recursive: true });
      const bytes = Buffer.from(
        `# GRUB Environment Block\narbor_trial=${token}\narbor_tries_left=1\narbor_tries_done=1\n${extra}`.padEnd(
          1024,
          '#',
        ),
      );
      expect(bytes.length).toBe(1024);
      writeFileSync(c.grubenv, bytes);
      return bytes;
    }

    it('systemd-boot, a read-only ESP: a passing trial is not claimed blessed and keeps its counter (exit 1)', () => {
      const c = setup(['A', 'B']);
      put(c.esp, 'arbor-os-1+1-1.conf', entryText('B', arg(c, 'B')));
      put(c.esp, 'arbor-os-0.conf', entryText('A', arg(c, 'A')));
      put(c.copies, 'arbor-os-1+2.conf', entryText('B', arg(c, 'B')));
      check(c, true);
      readOnly(c.esp);
      const r = host.run(c, 'B', [c.esp, c.copies]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toBe(`ARBOR-HEALTH bless-failed ${deployment(c, 'B')}\n`);
      expect(r.stderr).toContain(`cannot rename ${join(c.esp, 'arbor-os-1+1-1.conf')} to arbor-os-1.conf`);
      expect(r.rebooted).toBe(false);
      expect(names(c.esp)).toEqual(['arbor-os-0.conf', 'arbor-os-1+1-1.conf']);
      // The copy follows the bootloader's counter, which still counts this trial.
      expect(names(c.copies)).toEqual(['arbor-os-1+1-1.conf']);
    });

    // Each prepares /boot/grub before grubenv is written and returns what breaks it afterwards.
    it.each([
      [
        'full',
        (dir: string): (() => void) => {
          const tmpfs = smallTmpfs(dir);
          return () => tmpfs.fill();
        },
      ],
      [
        'read-only',
        (dir: string): (() => void) =>
          () =>
            readOnly(dir),
      ],
    ])(
      'GRUB, a %s /boot/grub: a passing trial is not claimed blessed, grubenv is unchanged and no temporary file is left (exit 1)',
      (_what, prepare) => {
        const c = setup(['A', 'B']);
        const grub = join(c.s.root, 'boot/grub');
        mkdirSync(grub, { recursive: true });
        const breakIt = prepare(grub);
        const before = grubTrial(c);
        breakIt();
        check(c, true);
        const r = host.run(c, 'B', [c.esp, c.copies]);
        expect(r.status, r.stderr).toBe(1);
        expect(r.stdout).toBe(`ARBOR-HEALTH bless-failed ${deployment(c, 'B')}\n`);
        expect(r.stderr).toContain(`cannot write ${c.grubenv}`);
        expect(readFileSync(c.grubenv).equals(before)).toBe(true);
        expect(readdirSync(grub).filter((n) => n !== 'filler')).toEqual(['grubenv']);
        expect(names(c.copies)).toEqual(['arbor-os-0.conf', 'arbor-os-1+1-1.conf']);
      },
    );

    it('GRUB: variables that would not fit in the 1024-byte block are refused and grubenv is unchanged (exit 1)', () => {
      const c = setup(['A', 'B']);
      const before = grubTrial(c, `vendor_note=${'x'.repeat(900)}\n`);
      check(c, true);
      const r = host.run(c, 'B', [c.esp, c.copies]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toBe(`ARBOR-HEALTH bless-failed ${deployment(c, 'B')}\n`);
      expect(r.stderr).toMatch(/cannot set arbor_blessed in .*grubenv: its variables would take \d+ bytes of its 1024/);
      const after = readFileSync(c.grubenv);
      expect(after.equals(before)).toBe(true);
      expect(parseGrubenv(after).get('arbor_blessed')).toBeUndefined();
    });

    it('a full /var: a failing trial is not recorded, yet it is exhausted and the machine rebooted', () => {
      const c = setup(['B', 'C']);
      put(c.esp, 'arbor-os-1+1-1.conf', entryText('C', arg(c, 'C')));
      put(c.esp, 'arbor-os-0.conf', entryText('B', arg(c, 'B')));
      check(c, false);
      const lib = join(c.s.failures, '..');
      smallTmpfs(lib).fill();
      const r = host.run(c, 'C', [c.esp, c.copies]);
      expect(r.stdout).toContain(`ARBOR-HEALTH failed ${deployment(c, 'C')} check=10-check tries-used=1`);
      expect(r.stderr).toContain(`cannot write ${join(c.s.failures, deployment(c, 'C'))}`);
      expect(r.rebooted).toBe(true);
      expect(names(c.esp)).toEqual(['arbor-os-0.conf', 'arbor-os-1+0-1.conf']);
      expect(readdirSync(c.s.failures)).toEqual([]); // neither a partial record nor a temporary file
    });

    it('systemd-boot, a read-only ESP: a failing trial is recorded and the machine rebooted; the bootloader counts its tries itself', () => {
      const c = setup(['B', 'C']);
      put(c.esp, 'arbor-os-1+1-1.conf', entryText('C', arg(c, 'C')));
      put(c.esp, 'arbor-os-0.conf', entryText('B', arg(c, 'B')));
      check(c, false);
      readOnly(c.esp);
      const r = host.run(c, 'C', [c.esp]);
      expect(r.stdout).toContain(`ARBOR-HEALTH failed ${deployment(c, 'C')} check=10-check tries-used=1`);
      expect(r.stderr).toContain('cannot rename');
      expect(r.rebooted).toBe(true);
      expect(names(c.esp)).toEqual(['arbor-os-0.conf', 'arbor-os-1+1-1.conf']);
      expect(record(c, 'C')).toMatch(/^when=\d+\nreason=health-check\ncheck=.*10-check\ntries-used=1\n$/);
      expect(readFileSync(join(c.s.failures, `${deployment(c, 'C')}.output`), 'utf8')).toBe(
        `${FAILING_CHECK_OUTPUT}\n`,
      );
    });

    it('on the fallback boot, copies that cannot be renamed and a record that cannot be written make exit 1; the fallback is still reported', () => {
      const c = setup(['B', 'C']);
      put(c.esp, 'arbor-os-1+0-2.conf', entryText('C', arg(c, 'C')));
      put(c.esp, 'arbor-os-0.conf', entryText('B', arg(c, 'B')));
      put(c.copies, 'arbor-os-1+2.conf', entryText('C', arg(c, 'C')));
      put(c.copies, 'arbor-os-0.conf', entryText('B', arg(c, 'B')));
      check(c, true);
      readOnly(c.copies);
      smallTmpfs(join(c.s.failures, '..')).fill();
      const r = host.run(c, 'B', [c.esp, c.copies]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toBe(
        `ARBOR-HEALTH fallback from ${deployment(c, 'C')} tries-used=2\nARBOR-HEALTH not-on-trial ${deployment(c, 'B')}\n`,
      );
      expect(r.stderr).toContain('cannot rename');
      expect(r.stderr).toContain('cannot write');
      expect(names(c.copies)).toEqual(['arbor-os-0.conf', 'arbor-os-1+2.conf']);
      expect(readdirSync(c.s.failures)).toEqual([]);
    });
  },
);
