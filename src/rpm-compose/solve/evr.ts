// rpm's version order, as rpm 4.18 implements it: rpmvercmp on one version or release string, EVR
// parsing and ordering (rpmverCmp), and versioned dependency matching (rpmverOverlap, rpmdsCompare).
import { UsageError } from '../../common/errors.js';
import { Sense } from '../rpm/tags.js';

/** `[epoch:]version[-release]`; null marks a part the text left out (an absent epoch counts as 0). */
export interface Evr {
  readonly epoch: number | null;
  readonly version: string;
  readonly release: string | null;
}

/** An Evr, or anything shaped like one such as an RpmPackage (whose absent epoch is undefined). */
export type EvrLike = {
  readonly epoch?: number | null | undefined;
  readonly version: string;
  readonly release?: string | null | undefined;
};

const TILDE = 0x7e;
const CARET = 0x5e;
const END = -1;

// ASCII only, like rpm's risdigit/risalpha: any other code unit (UTF-8 bytes in rpm, UTF-16 units
// here, non-ASCII in both) is a separator, so both agree on every string.
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isSeparator = (c: number): boolean => !isDigit(c) && !isAlpha(c) && c !== TILDE && c !== CARET;

/**
 * Compares two version (or release) strings by rpm's segments: runs of ASCII digits or letters,
 * anything else separating them uncompared. Numbers compare as integers of any length and beat
 * letters; letters compare as ASCII. `~` sorts before everything, the end of the string included;
 * `^` sorts after the end but before any segment; otherwise the string with segments left wins.
 */
export function rpmvercmp(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  for (;;) {
    while (i < a.length && isSeparator(a.charCodeAt(i))) i++;
    while (j < b.length && isSeparator(b.charCodeAt(j))) j++;
    const x = i < a.length ? a.charCodeAt(i) : END;
    const y = j < b.length ? b.charCodeAt(j) : END;
    if (x === TILDE || y === TILDE) {
      if (x !== y) return x === TILDE ? -1 : 1;
    } else if (x === CARET || y === CARET) {
      if (x === END) return -1;
      if (y === END) return 1;
      if (x !== y) return x === CARET ? -1 : 1;
    } else if (x === END || y === END) {
      return x === y ? 0 : x === END ? -1 : 1;
    } else {
      // a's segment kind decides how far b's segment runs; an empty one means b has the other kind.
      const inSegment = isDigit(x) ? isDigit : isAlpha;
      let ie = i + 1;
      let je = j;
      while (ie < a.length && inSegment(a.charCodeAt(ie))) ie++;
      while (je < b.length && inSegment(b.charCodeAt(je))) je++;
      if (je === j) return inSegment === isDigit ? 1 : -1;
      if (inSegment === isDigit) {
        while (a.charCodeAt(i) === 0x30 && i < ie) i++;
        while (b.charCodeAt(j) === 0x30 && j < je) j++;
        if (ie - i !== je - j) return ie - i > je - j ? 1 : -1;
      }
      // strcmp on the segments; for digits of equal length this is numeric order.
      for (; i < ie && j < je; i++, j++) {
        const d = a.charCodeAt(i) - b.charCodeAt(j);
        if (d !== 0) return d < 0 ? -1 : 1;
      }
      if (i < ie || j < je) return i < ie ? 1 : -1;
      continue;
    }
    i++;
    j++;
  }
}

const MAX_EPOCH = 0xffff_ffff; // the header stores Epoch as a 32-bit integer

/**
 * Splits `[epoch:]version[-release]` the way rpm does: the epoch is the leading digits before a
 * `:`, and the release follows the last `-`. Stricter than rpm, it refuses (UsageError
 * E_RPM_EVR) empty text, an empty or non-digit epoch, a second `:`, whitespace, and an empty
 * version or release, none of which rpmbuild lets into a package.
 */
export function parseEvr(text: string): Evr {
  const fail = (problem: string): never => {
    throw new UsageError('E_RPM_EVR', `version '${text}': ${problem}`, {
      hint: 'write [EPOCH:]VERSION[-RELEASE], e.g. 1:2.0-3',
    });
  };
  if (/\s/.test(text)) fail('holds whitespace');
  const colon = text.indexOf(':');
  let epoch: number | null = null;
  if (colon !== -1) {
    const digits = text.slice(0, colon);
    if (!/^[0-9]+$/.test(digits)) fail("the epoch before ':' is not a number");
    epoch = Number(digits);
    if (epoch > MAX_EPOCH) fail(`the epoch is above ${MAX_EPOCH}`);
  }
  const rest = text.slice(colon + 1);
  if (rest.includes(':')) fail("holds a second ':'");
  const dash = rest.lastIndexOf('-');
  const version = dash === -1 ? rest : rest.slice(0, dash);
  const release = dash === -1 ? null : rest.slice(dash + 1);
  if (version === '') fail('the version is empty');
  if (release === '') fail('the release is empty');
  return { epoch, version, release };
}

const sign = (n: number): -1 | 0 | 1 => (n < 0 ? -1 : n > 0 ? 1 : 0);

/**
 * Orders two full EVRs as rpm orders packages (rpmverCmp): epoch (absent = 0), then version, then
 * release, where an absent release sorts before any release (`1.0` < `1.0-1`).
 */
export function compareEvr(a: EvrLike, b: EvrLike): -1 | 0 | 1 {
  const byEpoch = sign((a.epoch ?? 0) - (b.epoch ?? 0));
  if (byEpoch !== 0) return byEpoch;
  const byVersion = rpmvercmp(a.version, b.version);
  if (byVersion !== 0) return byVersion;
  const ra = a.release ?? null;
  const rb = b.release ?? null;
  if (ra === null || rb === null) return ra === rb ? 0 : ra === null ? -1 : 1;
  return rpmvercmp(ra, rb);
}

// Sense bits that carry a comparison (rpm's RPMSENSE_SENSEMASK; bit 0 is the retired SERIAL).
const SENSE_MASK = 0xf;

/**
 * Whether the ranges `a aFlags` and `b bFlags` (Sense Less/Greater/Equal bits) share a version, as
 * rpm decides for a provide against a require, conflict or obsolete (rpmdsCompare). Either side
 * without comparison bits always overlaps. An absent epoch is 0; when only one side names a
 * release the releases are not compared, so `= 1.0` holds every release of 1.0.
 */
export function evrOverlap(a: EvrLike, aFlags: number, b: EvrLike, bFlags: number): boolean {
  if ((aFlags & SENSE_MASK) === 0 || (bFlags & SENSE_MASK) === 0) return true;
  let sense = sign((a.epoch ?? 0) - (b.epoch ?? 0));
  if (sense === 0) sense = rpmvercmp(a.version, b.version);
  if (sense === 0) {
    // rpm tests the release strings for emptiness, not presence: '' counts as absent here.
    const ra = a.release ?? '';
    const rb = b.release ?? '';
    if (ra !== '' && rb !== '') sense = rpmvercmp(ra, rb);
    else if ((ra !== '' && (bFlags & Sense.Equal) !== 0) || (rb !== '' && (aFlags & Sense.Equal) !== 0)) return true;
  }
  if (sense < 0) return (aFlags & Sense.Greater) !== 0 || (bFlags & Sense.Less) !== 0;
  if (sense > 0) return (aFlags & Sense.Less) !== 0 || (bFlags & Sense.Greater) !== 0;
  return (aFlags & bFlags & (Sense.Equal | Sense.Less | Sense.Greater)) !== 0;
}

/** Whether a package or provide at exactly `provided` satisfies a dependency `flags required`. */
export const evrSatisfies = (provided: EvrLike, flags: number, required: EvrLike): boolean =>
  evrOverlap(provided, Sense.Equal, required, flags);
