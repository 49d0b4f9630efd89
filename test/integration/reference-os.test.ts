// The reference OS of examples/os booted for real: release v1 composed with `arbor compose tree`
// (dracut making the initramfs with Arbor's module inside the tree), deployed with
// `arbor admin deploy` into a sysroot, written to an ext4 image and booted in QEMU (TCG) with the
// default entry's kernel, initramfs and arguments. systemd must reach multi-user.target, hello
// must have run, and `arbor status` run inside the guest (arbor-os-report.service, which prints
// it on the serial console) must show the deployment booted.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildRootImage, entryFiles, imageToolingMissing, readDefaultBootEntry } from '../support/boot-image.js';
import { IS_ROOT, arbor } from '../support/cli.js';
import { bootDirect, hasQemuTooling } from '../support/qemu.js';
import {
  type ComposedReferenceOs,
  REFERENCE_OS_REF,
  REFERENCE_OS_STATEROOT,
  composedReferenceOs,
} from '../support/reference-os.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand, runTool } from '../support/tool.js';

const KARGS = ['root=LABEL=sysroot', 'rw', 'console=ttyS0', 'quiet'];
/** systemd under TCG on a shared two-core machine: 1–3 minutes measured; never gate on speed. */
const BOOT_TIMEOUT_MS = 480_000;
/** Building the RPMs and composing, when the cache has neither (about 5 minutes here). */
const COMPOSE_TIMEOUT_MS = 1_800_000;
const REPORT_END = /^ARBOR-OS-REPORT-END/m;
const HAVE_TOOLING =
  IS_ROOT &&
  hasQemuTooling() &&
  imageToolingMissing().length === 0 &&
  ['dracut', 'rpmbuild', 'createrepo_c', 'bwrap', 'apt-get', 'depmod'].every(hasCommand);

describe.skipIf(!HAVE_TOOLING)('the reference OS (examples/os) in QEMU under systemd', () => {
  const tmp = useTempDir('arbor-reference-os-');
  let composed: ComposedReferenceOs;

  beforeAll(async () => {
    composed = await composedReferenceOs('v1');
    const took = (s: number | null): string => (s === null ? 'cached' : `${s.toFixed(0)} s`);
    console.log(`[reference-os] RPMs: ${took(composed.buildSeconds)}, compose: ${took(composed.composeSeconds)}`);
  }, COMPOSE_TIMEOUT_MS);

  it(
    'boots v1 to multi-user.target and `arbor status` in the guest shows it booted',
    async () => {
      const sysroot = join(tmp.path, 'sysroot');
      runTool('cp', ['-a', composed.sysroot, sysroot]);
      const deployed = arbor(
        'admin',
        'deploy',
        '--sysroot',
        sysroot,
        '--stateroot',
        REFERENCE_OS_STATEROOT,
        ...KARGS.flatMap((k) => ['--karg', k]),
        REFERENCE_OS_REF,
      );
      const deployment = `${composed.checksum}.0`;
      expect(deployed).toContain(`deployed ${REFERENCE_OS_STATEROOT} ${deployment}`);

      const entry = readDefaultBootEntry(sysroot);
      const files = entryFiles(entry, join(sysroot, 'boot'));
      const disk = join(tmp.path, 'root.img');
      buildRootImage(sysroot, disk);
      const result = await bootDirect(
        { kernel: files.linux, initrd: files.initrd[0] as string, append: `${entry.options} panic=-1`, disk },
        { marker: REPORT_END, timeoutMs: BOOT_TIMEOUT_MS, memoryMb: 1024, exitGraceMs: 0 },
      );
      writeFileSync(join(tmp.path, 'console.log'), result.output);
      const context = `serial console (${result.elapsedMs} ms):\n${result.output.slice(-6000)}`;
      expect(result.timedOut, context).toBe(false);
      expect(result.matched, context).toBe(true);

      const ready = /^ARBOR-OS-READY uptime=([\d.]+)s target=(\S+) hello=(\S+)/m.exec(result.output);
      expect(ready, context).not.toBeNull();
      const [, uptime, target, hello] = ready as RegExpExecArray;
      expect(target, context).toBe('active');
      expect(hello, context).toBe('1.0');
      const status = /^ARBOR-OS-STATUS-BEGIN\r?\n([\s\S]*?)^ARBOR-OS-STATUS-END rc=(\d+)/m.exec(result.output);
      expect(status, context).not.toBeNull();
      expect(status?.[2], context).toBe('0');
      expect(status?.[1], context).toMatch(new RegExp(`booted ${REFERENCE_OS_STATEROOT} ${deployment}`));
      expect(status?.[1], context).toMatch(/Version: v1\b/);
      expect(/^ARBOR-OS-FAILED-UNITS (.*)$/m.exec(result.output)?.[1]?.trim(), context).toBe('');
      console.log(
        `[reference-os] boot to multi-user.target under TCG: ${(result.elapsedMs / 1000).toFixed(1)} s wall ` +
          `(qemu start to the report), guest uptime at the report ${uptime} s`,
      );
    },
    BOOT_TIMEOUT_MS + 120_000,
  );
});
