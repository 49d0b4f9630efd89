// GRUB 2 backend: a grub.cfg with one menuentry per boot entry, written into boot/loader.N so it
// swaps with the entries (GRUB here has no blscfg), the grubenv boot counter for a trial entry,
// and the static files written once: boot/grub/grub.cfg and boot/grub/grubenv.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, ioError, present } from '../common/errors.js';
import type { BackendOptions, Bootloader } from './bootloader.js';
import { type BootEntry, assertBootEntry, assertBootTries } from './bls.js';
import { assertPathPrefix, assertTimeout, pathExists, subdirectories } from './probe.js';

export interface GrubConfigOptions {
  /** Prepended to every path: '/boot' when GRUB reads the root filesystem, '' for a boot partition. */
  readonly pathPrefix: string;
  readonly timeoutSec?: number | undefined;
  readonly serial?: { readonly unit: number; readonly speed: number } | undefined;
  /** The grubenv holding the trial counter, as GRUB names it; default `PREFIX/grub/grubenv`. */
  readonly grubenvPath?: string | undefined;
}

/** The most boot attempts a grub.cfg counts: it spells out one `elif` per value. */
const MAX_GRUB_TRIES = 64;

/** grubenv variables of the trial counter; docs/deploy.md "Bootloader backends" is the contract. */
export const GRUBENV_VARS = {
  /** Token of the trial the counters belong to (grubTrialToken). */
  trial: 'arbor_trial',
  left: 'arbor_tries_left',
  done: 'arbor_tries_done',
  /** Set to the trial's token by the bless step: boot it without counting. */
  blessed: 'arbor_blessed',
} as const;

const PLAIN_WORD = /^[A-Za-z0-9_.,:=+/@%-]+$/;

/** One GRUB script word that GRUB reads back as exactly `text` (single quotes unless plain). */
function grubQuote(text: string): string {
  if (PLAIN_WORD.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The arguments of a kernel command line as the kernel splits them (whitespace outside double
 * quotes), each with its quotes removed: GRUB's `linux` command puts double quotes back around an
 * argument with spaces. Only `"ARG"` and `KEY="VALUE"` quoting can survive that, and GRUB
 * backslash-escapes `\`, `'` and `"`, which the kernel does not undo: anything else is refused.
 */
export function splitKernelArgs(options: string): string[] {
  const tokens = options.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
  if (tokens.join('').replace(/\s/g, '') !== options.replace(/\s/g, '')) {
    throw new ArborError('E_BOOT_ENTRY_INVALID', `kernel command line has an unbalanced double quote: '${options}'`);
  }
  return tokens.map((token) => {
    let arg = token;
    if (token.includes('"')) {
      const m = /^([^"=]+=)?"([^"]*)"$/.exec(token);
      if (!m)
        throw new ArborError(
          'E_BOOT_ENTRY_INVALID',
          `kernel argument '${token}' quotes in a way GRUB cannot pass on; use KEY="VALUE"`,
        );
      arg = (m[1] ?? '') + present(m[2], 'the quoted group of a kernel argument');
    }
    if (/['\\]/.test(arg))
      throw new ArborError(
        'E_BOOT_ENTRY_INVALID',
        `kernel argument '${token}' contains ' or \\, which GRUB escapes and the kernel does not unescape`,
      );
    return arg;
  });
}

/**
 * The identity of a trial for the grubenv counter: 16 hex digits of SHA-256 over the entry's
 * kernel, initramfs, devicetree, options and deployment (when known), with the bootversion in the
 * deployment argument (`/boot.N/`) left out so rewriting the same boot set (a swap) keeps counting
 * the same trial. The deployment matters: an upgrade that keeps the kernel and arguments has the
 * very same `arbor=` argument as the deployment it replaces (`boot.N/STATEROOT/BOOTCSUM/0`), and
 * without it would count as the trial blessed before. data/health/arbor-health computes the same
 * token (`arbor-health --grub-token ENTRY`), the deployment from the entry's `arbor=` link.
 */
export function grubTrialToken(entry: BootEntry): string {
  const options = entry.options.replace(/\/boot\.[0-9]+\//g, '/boot.N/');
  const fields = [entry.linux, entry.initrd ?? null, entry.devicetree ?? null, options];
  const identity = JSON.stringify(entry.deployment === undefined ? fields : [...fields, entry.deployment]);
  // node:crypto loads here, not with the module: `arbor status` loads this backend and never needs it.
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

/**
 * The boot counter for the default entry on trial, in GRUB script (docs/deploy.md). It reads the
 * counters from grubenv; a token other than this trial's starts a new count at `tries`. With
 * tries left it counts one attempt (left - 1, done + 1), saves, and boots entry 0; with none left
 * (or when saving fails, so the attempt cannot be counted) it boots entry 1, the previous
 * deployment. A token in `arbor_blessed` boots entry 0 without counting.
 */
function formatTrialCounter(entry: BootEntry, grubenv: string): string[] {
  const tries = entry.tries;
  if (!tries) return [];
  assertBootTries(tries);
  const total = tries.left + tries.done;
  if (total > MAX_GRUB_TRIES)
    throw new ArborError(
      'E_BOOT_ENTRY_INVALID',
      `boot counter ${tries.left}+${tries.done} exceeds the ${MAX_GRUB_TRIES} attempts grub.cfg counts`,
    );
  const { trial, left, done, blessed } = GRUBENV_VARS;
  const env = grubQuote(grubenv);
  const lines = [
    '# Boot counting for entry 0, on trial. grubenv keeps the counters of one trial,',
    '# named by its token; blessing sets arbor_blessed to the token.',
    `set arbor_token=${grubTrialToken(entry)}`,
    `load_env -f ${env} ${trial} ${left} ${done} ${blessed}`,
    `if [ "\${${blessed}}" != "\${arbor_token}" ]; then`,
    `  if [ "\${${trial}}" != "\${arbor_token}" ]; then`,
    `    set ${trial}="\${arbor_token}"`,
    `    set ${left}=${tries.left}`,
    `    set ${done}=${tries.done}`,
    '  fi',
    '  set default=1',
    '  set arbor_attempt=no',
  ];
  // No arithmetic in GRUB script: one branch per count. left + done stays `total`.
  for (let k = total; k >= 1; k--) {
    lines.push(
      `  ${k === total ? 'if' : 'elif'} [ "\${${left}}" = ${k} ]; then`,
      `    set ${left}=${k - 1}`,
      `    set ${done}=${total - k + 1}`,
      '    set arbor_attempt=yes',
    );
  }
  if (total > 0) lines.push('  fi');
  lines.push(
    '  if [ "${arbor_attempt}" = yes ]; then',
    `    if save_env -f ${env} ${trial} ${left} ${done}; then`,
    '      set default=0',
    '    fi',
    '  fi',
    'fi',
  );
  return lines;
}

/**
 * grub.cfg for `entries` (default first): optional serial console, `timeout`, `default=0`,
 * `fallback=1` when there is a second entry, the trial counter when entry 0 has `tries`, then one
 * `menuentry 'TITLE' { linux PREFIX+LINUX ARGS…; initrd PREFIX+INITRD; devicetree … }` per entry.
 * Kernel arguments are passed one GRUB word each (splitKernelArgs). `tries` on other entries is
 * ignored: only the default can be on trial.
 */
export function formatGrubCfg(entries: readonly BootEntry[], options: GrubConfigOptions): string {
  assertPathPrefix(options.pathPrefix);
  entries.forEach(assertBootEntry);
  const timeoutSec = options.timeoutSec ?? 5;
  assertTimeout(timeoutSec);
  const lines = [
    '# Generated by arbor from the boot entries beside it (boot/loader.N); rewritten on every',
    '# change of the boot set: do not edit.',
  ];
  if (options.serial) {
    const { unit, speed } = options.serial;
    if (!Number.isSafeInteger(unit) || unit < 0 || !Number.isSafeInteger(speed) || speed <= 0) {
      throw new ArborError('E_BOOTLOADER_CONFIG', `serial console unit ${unit} at ${speed} baud is not valid`);
    }
    lines.push(
      `serial --unit=${unit} --speed=${speed}`,
      'terminal_input serial console',
      'terminal_output serial console',
    );
  }
  lines.push(`set timeout=${timeoutSec}`, 'set default=0');
  if (entries.length > 1) lines.push('set fallback=1');
  const first = entries[0];
  if (first?.tries)
    lines.push(...formatTrialCounter(first, options.grubenvPath ?? `${options.pathPrefix}/grub/grubenv`));
  const path = (p: string): string => grubQuote(`${options.pathPrefix}${p}`);
  for (const entry of entries) {
    const args = splitKernelArgs(entry.options).map(grubQuote);
    lines.push(`menuentry ${grubQuote(entry.title)} {`, `  linux ${[path(entry.linux), ...args].join(' ')}`);
    if (entry.initrd !== undefined) lines.push(`  initrd ${path(entry.initrd)}`);
    if (entry.devicetree !== undefined) lines.push(`  devicetree ${path(entry.devicetree)}`);
    lines.push('}');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The static boot/grub/grub.cfg, written once (with the first grub2 boot set): it only runs the boot set's own
 * grub.cfg through the `loader` symlink, so the swap of `loader` switches GRUB's menu too.
 */
export function staticGrubCfg(pathPrefix: string): string {
  assertPathPrefix(pathPrefix);
  return `# Written once by arbor; the menu lives in the boot set: ${pathPrefix}/loader/grub.cfg\nconfigfile ${grubQuote(`${pathPrefix}/loader/grub.cfg`)}\n`;
}

const GRUBENV_BYTES = 1024;
const GRUBENV_HEADER =
  '# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than grub-editenv!!!\n';

/**
 * A grubenv block as `grub-editenv FILE create` and `set` write it: the header, `NAME=VALUE\n`
 * lines, then `#` up to 1024 bytes. GRUB's save_env rewrites the block in place, so the file must
 * exist at full size before GRUB runs. Values here are plain (no newline or backslash).
 */
export function formatGrubenv(vars: readonly (readonly [name: string, value: string])[] = []): Buffer {
  let text = GRUBENV_HEADER;
  for (const [name, value] of vars) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || /[\n\\]/.test(value))
      throw new ArborError('E_BOOTLOADER_CONFIG', `grubenv variable '${name}' cannot hold '${value}'`);
    text += `${name}=${value}\n`;
  }
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > GRUBENV_BYTES)
    throw new ArborError(
      'E_BOOTLOADER_CONFIG',
      `grubenv variables need ${bytes.length} bytes, more than ${GRUBENV_BYTES}`,
    );
  return Buffer.concat([bytes, Buffer.alloc(GRUBENV_BYTES - bytes.length, '#')]);
}

/** The variables of a grubenv block (GRUB's escapes `\\` and `\n` undone). */
export function parseGrubenv(block: Uint8Array): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of Buffer.from(block)
    .toString('utf8')
    .split(/(?<!\\)\n/)) {
    if (line.startsWith('#') || line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    vars.set(line.slice(0, eq), line.slice(eq + 1).replace(/\\(.)/gs, '$1'));
  }
  return vars;
}

/** The grub2 backend: `grub.cfg` in loader.N, read through the static boot/grub/grub.cfg. */
export function grub2Bootloader(options: BackendOptions): Bootloader {
  return {
    name: 'grub2',
    isActive(bootDir) {
      // ostree's query: BIOS configs (Debian's grub/, Fedora's grub2/), else a grub.cfg in an EFI vendor dir.
      if (pathExists(join(bootDir, 'grub/grub.cfg')) || pathExists(join(bootDir, 'grub2/grub.cfg'))) return true;
      const efi = join(bootDir, 'efi/EFI');
      return subdirectories(efi).some((vendor) => vendor !== 'BOOT' && pathExists(join(efi, vendor, 'grub.cfg')));
    },
    writeConfig(entries, loaderDir) {
      const path = join(loaderDir, 'grub.cfg');
      try {
        writeFileSync(path, formatGrubCfg(entries, options));
      } catch (error) {
        if (error instanceof ArborError) throw error;
        throw ioError('write', path, error);
      }
    },
  };
}
