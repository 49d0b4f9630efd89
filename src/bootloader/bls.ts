// Boot Loader Specification type #1 entries: the text of one entry, its file name (with the boot
// assessment counter `+LEFT[-DONE]`), and systemd-boot's order of entries. Pure: no fs, no clock.
import { ArborError, CorruptionError, present } from '../common/errors.js';

/** Boot assessment counters (BLS "Boot Counting"): attempts left, and attempts made so far. */
export interface BootTries {
  readonly left: number;
  readonly done: number;
}

/**
 * One boot entry, in boot order position decided by its caller (index 0 boots by default).
 * Paths (`linux`, `initrd`, `devicetree`) are absolute within the partition holding the entries.
 */
export interface BootEntry {
  readonly title: string;
  readonly version?: string | undefined;
  readonly machineId?: string | undefined;
  readonly sortKey?: string | undefined;
  readonly linux: string;
  readonly initrd?: string | undefined;
  readonly devicetree?: string | undefined;
  /** The kernel command line; '' writes no `options` line. */
  readonly options: string;
  /** Present while the entry is on trial; lives in the file name, not the text. */
  readonly tries?: BootTries | undefined;
  /**
   * The deployment the entry boots, `STATEROOT/CHECKSUM.SERIAL`; not written (its `arbor=`
   * argument resolves to it). Part of GRUB's trial token: a new deployment with the same kernel
   * and arguments is a new trial.
   */
  readonly deployment?: string | undefined;
  /** Keys this module does not interpret, in file order, kept so a rewrite loses nothing. */
  readonly extra?: readonly (readonly [key: string, value: string])[] | undefined;
}

// Known keys in the order formatBlsEntry writes them (the BLS text's field order).
const KNOWN = [
  ['title', 'title'],
  ['version', 'version'],
  ['machine-id', 'machineId'],
  ['sort-key', 'sortKey'],
  ['linux', 'linux'],
  ['initrd', 'initrd'],
  ['devicetree', 'devicetree'],
  ['options', 'options'],
] as const;
type KnownField = (typeof KNOWN)[number][1];
const FIELD_OF = new Map<string, KnownField>(KNOWN);

const KEY = /^[a-z][a-z0-9_-]*$/;
// Whitespace as systemd-boot's line_get_key_value splits on it (space and tab), plus CR, which
// must not leak into a value.
const SPACE = /[ \t\r]/;
/** Highest counter systemd-boot accepts (it rejects values above INT_MAX). */
const MAX_TRIES = 2 ** 31 - 1;

function invalid(message: string): never {
  throw new ArborError('E_BOOT_ENTRY_INVALID', message);
}

function checkValue(key: string, value: string): void {
  if (value === '') invalid(`boot entry field '${key}' is empty`);
  if (/[\n\r\0]/.test(value)) invalid(`boot entry field '${key}' contains a line break or NUL: '${value}'`);
  // value is non-empty (checked above): its first and last characters exist.
  if (SPACE.test(value.charAt(0)) || SPACE.test(value.charAt(value.length - 1))) {
    invalid(`boot entry field '${key}' has leading or trailing whitespace: '${value}'`);
  }
}

/** Throws E_BOOT_ENTRY_INVALID when `tries` cannot be written in a file name. */
export function assertBootTries(tries: BootTries): void {
  for (const n of [tries.left, tries.done]) {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_TRIES)
      invalid(`boot counter ${n} is not an integer in 0..${MAX_TRIES}`);
  }
}

/**
 * The entry as BLS text: `KEY VALUE` lines, one space between, '\n' after each, in the order
 * title, version, machine-id, sort-key, linux, initrd, devicetree, options, then `extra` as given.
 * Values are one line without leading or trailing whitespace; `tries` is not written (it is part
 * of the file name, see entryFileName).
 */
export function formatBlsEntry(entry: BootEntry): string {
  let text = '';
  for (const [key, field] of KNOWN) {
    const value = entry[field];
    if (value === undefined || (field === 'options' && value === '')) continue;
    checkValue(key, value);
    text += `${key} ${value}\n`;
  }
  if (entry.title === undefined) invalid("boot entry has no 'title'");
  if (entry.linux === undefined) invalid("boot entry has no 'linux'");
  if (entry.tries) assertBootTries(entry.tries);
  for (const [key, value] of entry.extra ?? []) {
    if (!KEY.test(key) || FIELD_OF.has(key)) invalid(`boot entry extra key '${key}' is not a valid unknown key`);
    checkValue(key, value);
    text += `${key} ${value}\n`;
  }
  return text;
}

/** Throws E_BOOT_ENTRY_INVALID unless formatBlsEntry can write `entry` (what every backend needs too). */
export function assertBootEntry(entry: BootEntry): void {
  formatBlsEntry(entry);
}

/**
 * Parses BLS text from the file `fileName` (its counter becomes `tries`). Blank lines and `#`
 * comments are skipped, leading and trailing whitespace of a line is ignored, and keys this module
 * does not know are kept in `extra`. Rejects a line without a value, a repeated known key and an
 * entry without `title` or `linux` (CorruptionError E_BOOT_ENTRY_MALFORMED).
 */
export function parseBlsEntry(text: string, fileName: string): BootEntry {
  const fail = (line: number | null, problem: string): never => {
    throw new CorruptionError(
      'E_BOOT_ENTRY_MALFORMED',
      `boot entry '${fileName}'${line === null ? '' : ` line ${line}`}: ${problem}`,
    );
  };
  const fields = new Map<KnownField, string>();
  const extra: [string, string][] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/^[ \t]+|[ \t\r]+$/g, '');
    if (line === '' || line.startsWith('#')) return;
    // `s`: a value may hold U+2028/U+2029, which `.` alone does not match.
    const m = /^(\S+)[ \t]+(.*)$/s.exec(line);
    // Never quote a line that is not a plain key: the file may be something else entirely (a secret).
    if (!m) return fail(i + 1, KEY.test(line) ? `'${line}' has no value` : 'not a KEY VALUE line');
    const key = present(m[1], 'the key group of a matched entry line');
    const value = present(m[2], 'the value group of a matched entry line');
    if (value.includes('\0') || key.includes('\0')) return fail(i + 1, 'contains NUL');
    const field = FIELD_OF.get(key);
    if (field === undefined) {
      if (!KEY.test(key)) return fail(i + 1, 'the key is not lowercase letters, digits, _ and -');
      extra.push([key, value]);
    } else if (fields.has(field)) {
      fail(i + 1, `'${key}' appears more than once`);
    } else {
      fields.set(field, value);
    }
  });
  const title = fields.get('title');
  const linux = fields.get('linux');
  if (title === undefined) return fail(null, "has no 'title'");
  if (linux === undefined) return fail(null, "has no 'linux'");
  const name = parseEntryFileName(fileName);
  const optional = (field: KnownField): Record<string, string> => {
    const value = fields.get(field);
    return value === undefined ? {} : { [field]: value };
  };
  return {
    title,
    ...optional('version'),
    ...optional('machineId'),
    ...optional('sortKey'),
    linux,
    ...optional('initrd'),
    ...optional('devicetree'),
    options: fields.get('options') ?? '',
    ...(name?.tries ? { tries: name.tries } : {}),
    ...(extra.length > 0 ? { extra } : {}),
  };
}

/** What an Arbor entry file name says: `STEM-INDEX[+LEFT[-DONE]].conf`. */
export interface EntryFileName {
  readonly stem: string;
  readonly index: number;
  readonly tries?: BootTries | undefined;
}

const STEM = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * `STEM-INDEX.conf`, or with a boot counter `STEM-INDEX+LEFT.conf` (done = 0) or
 * `STEM-INDEX+LEFT-DONE.conf`, as the BLS boot assessment names them. Callers number entries so
 * the default has the highest INDEX: systemd-boot without sort-key boots the highest file name
 * (compareBootEntries). STEM is `[A-Za-z0-9][A-Za-z0-9._-]*`.
 */
export function entryFileName(stem: string, index: number, tries?: BootTries): string {
  if (!STEM.test(stem)) invalid(`boot entry file stem '${stem}' must match ${STEM.source}`);
  if (!Number.isSafeInteger(index) || index < 0) invalid(`boot entry index ${index} is not a non-negative integer`);
  if (!tries) return `${stem}-${index}.conf`;
  assertBootTries(tries);
  return `${stem}-${index}+${tries.left}${tries.done === 0 ? '' : `-${tries.done}`}.conf`;
}

/**
 * The inverse of entryFileName, or null for a name it cannot have made (another OS's entry,
 * leading zeros, a counter above MAX_TRIES). `+3-0` is read as `+3` (systemd-boot does too), so
 * the one name entryFileName gives back for it differs.
 */
export function parseEntryFileName(name: string): EntryFileName | null {
  const m = /^([^+]+)-(0|[1-9][0-9]*)(?:\+(0|[1-9][0-9]*)(?:-(0|[1-9][0-9]*))?)?\.conf$/.exec(name);
  const stem = m?.[1];
  if (!m || stem === undefined || !STEM.test(stem)) return null;
  const index = Number(m[2]);
  if (!Number.isSafeInteger(index)) return null;
  if (m[3] === undefined) return { stem, index };
  const tries = { left: Number(m[3]), done: Number(m[4] ?? 0) };
  if (tries.left > MAX_TRIES || tries.done > MAX_TRIES) return null;
  return { stem, index, tries };
}

// --- systemd-boot's order --------------------------------------------------------------------

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const TILDE = 0x7e;
const DASH = 0x2d;
const CARET = 0x5e;
const DOT = 0x2e;
const isVersionChar = (c: number): boolean =>
  isDigit(c) || isAlpha(c) || c === TILDE || c === DASH || c === CARET || c === DOT;
const cmp = (a: number, b: number): number => (a < b ? -1 : a > b ? 1 : 0);

/** strncmp on UTF-16 code units (what systemd-boot's char16_t strncmp does). */
function compareUnits(a: string, ai: number, b: string, bi: number, n: number): number {
  for (let k = 0; k < n; k++) {
    const r = cmp(a.charCodeAt(ai + k) || 0, b.charCodeAt(bi + k) || 0);
    if (r !== 0) return r;
  }
  return 0;
}

/**
 * systemd's `strverscmp_improved` (src/fundamental/string-util-fundamental.c), on UTF-16 code
 * units as in systemd-boot: segments of digits or letters, `~` older than anything, then `-`,
 * `^`, `.` as separators of rising weight; other characters only separate. Returns -1, 0 or 1.
 */
export function strverscmpImproved(a: string | undefined, b: string | undefined): number {
  const x = a ?? '';
  const y = b ?? '';
  // Reading past the end yields 0, like the C string's NUL.
  const at = (s: string, i: number): number => (i < s.length ? s.charCodeAt(i) : 0);
  let i = 0;
  let j = 0;
  for (;;) {
    while (at(x, i) !== 0 && !isVersionChar(at(x, i))) i++;
    while (at(y, j) !== 0 && !isVersionChar(at(y, j))) j++;
    // '~' marks a pre-release: older than anything, even the end of the string.
    if (at(x, i) === TILDE || at(y, j) === TILDE) {
      const r = cmp(at(x, i) !== TILDE ? 1 : 0, at(y, j) !== TILDE ? 1 : 0);
      if (r !== 0) return r;
      i++;
      j++;
    }
    if (at(x, i) === 0 || at(y, j) === 0) return cmp(at(x, i), at(y, j));
    for (const sep of [DASH, CARET, DOT]) {
      if (at(x, i) === sep || at(y, j) === sep) {
        const r = cmp(at(x, i) !== sep ? 1 : 0, at(y, j) !== sep ? 1 : 0);
        if (r !== 0) return r;
        i++;
        j++;
      }
    }
    let ie = i;
    let je = j;
    if (isDigit(at(x, i)) || isDigit(at(y, j))) {
      while (isDigit(at(x, ie))) ie++;
      while (isDigit(at(y, je))) je++;
      // A numeric segment is newer than an empty one (where the other has letters).
      let r = cmp(i !== ie ? 1 : 0, j !== je ? 1 : 0);
      if (r !== 0) return r;
      while (at(x, i) === 0x30) i++;
      while (at(y, j) === 0x30) j++;
      r = cmp(ie - i, je - j);
      if (r !== 0) return r;
      r = compareUnits(x, i, y, j, ie - i);
      if (r !== 0) return r;
    } else {
      while (isAlpha(at(x, ie))) ie++;
      while (isAlpha(at(y, je))) je++;
      let r = compareUnits(x, i, y, j, Math.min(ie - i, je - j));
      if (r !== 0) return r;
      r = cmp(ie - i, je - j);
      if (r !== 0) return r;
    }
    i = ie;
    j = je;
  }
}

/** An entry as systemd-boot sees it: its file name and the fields its order reads. */
export interface SystemdBootCandidate {
  readonly fileName: string;
  readonly sortKey?: string | undefined;
  readonly machineId?: string | undefined;
  readonly version?: string | undefined;
}

/**
 * systemd-boot's counter parse (config_entry_parse_tries): the digits after the last '+', an
 * optional `-DONE`, then exactly `.conf`; anything else means the entry is not counted.
 */
function systemdTries(fileName: string): BootTries | null {
  const plus = fileName.lastIndexOf('+');
  if (plus < 0) return null;
  const m = /^([0-9]+)(?:-([0-9]+))?\.conf$/.exec(fileName.slice(plus + 1));
  if (!m) return null;
  const left = Number(m[1]);
  const done = Number(m[2] ?? 0);
  if (left > MAX_TRIES || done > MAX_TRIES) return null;
  return { left, done };
}

// strcmp16 with systemd's NULL handling: a missing string sorts before any string.
const compareOptional = (a: string | undefined, b: string | undefined): number =>
  a === undefined || b === undefined
    ? cmp(a === undefined ? 0 : 1, b === undefined ? 0 : 1)
    : a < b
      ? -1
      : a > b
        ? 1
        : 0;

/**
 * systemd-boot's entry order (config_entry_compare in src/boot/efi/boot.c, as of 252): negative
 * when `a` comes first. Entries with no tries left go last; entries with a sort-key come before
 * those without; with sort-keys on both: sort-key ascending, machine-id ascending, version
 * descending (strverscmpImproved); then the file name descending (lowercased, counter included);
 * then more tries left, then fewer done. Without loader.conf `default` the first entry boots.
 */
export function compareBootEntries(a: SystemdBootCandidate, b: SystemdBootCandidate): number {
  const ta = systemdTries(a.fileName);
  const tb = systemdTries(b.fileName);
  let r = cmp(ta?.left === 0 ? 1 : 0, tb?.left === 0 ? 1 : 0);
  if (r !== 0) return r;
  r = cmp(a.sortKey === undefined ? 1 : 0, b.sortKey === undefined ? 1 : 0);
  if (r !== 0) return r;
  if (a.sortKey !== undefined && b.sortKey !== undefined) {
    r = compareOptional(a.sortKey, b.sortKey);
    if (r !== 0) return r;
    r = compareOptional(a.machineId, b.machineId);
    if (r !== 0) return r;
    r = -strverscmpImproved(a.version, b.version);
    if (r !== 0) return r;
  }
  // systemd-boot lowercases ASCII letters of the id (strtolower16) before comparing.
  const lower = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  r = -strverscmpImproved(lower(a.fileName), lower(b.fileName));
  if (r !== 0) return r;
  if (!ta || !tb) return 0;
  r = -cmp(ta.left, tb.left);
  if (r !== 0) return r;
  return cmp(ta.done, tb.done);
}

/**
 * The index of the first position where systemd-boot's order of `files` (compareBootEntries,
 * counters ignored: an exhausted trial is still where its writer put it) differs from the order
 * given, or -1 when they agree.
 */
export function systemdBootOrderMismatch(
  files: readonly { readonly fileName: string; readonly entry: BootEntry }[],
): number {
  const candidates = files.map(({ fileName, entry }, position) => ({
    position,
    fileName: fileName.replace(/\+[0-9]+(-[0-9]+)?\.conf$/, '.conf'),
    sortKey: entry.sortKey,
    machineId: entry.machineId,
    version: entry.version,
  }));
  const sorted = [...candidates].sort(compareBootEntries);
  return sorted.findIndex((c, i) => c.position !== i);
}
