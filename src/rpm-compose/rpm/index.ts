// The RPM reader's public surface: headers, the package view, payload streaming, listings.
export {
  type DecodeContext,
  type HeaderEntry,
  type HeaderRegion,
  type HeaderValue,
  type Lead,
  RpmHeader,
  decodeHeader,
  decodeLead,
} from './header.js';
export { type FileListing, describeForJson, formatDump, formatInfo, listFile } from './listing.js';
export {
  DEPENDENCY_KINDS,
  type DependencyKind,
  type PayloadDigest,
  type RpmDependency,
  type RpmFile,
  type RpmPackage,
  type RpmScript,
  type RpmTrigger,
  SCRIPT_KINDS,
  type ScriptKind,
  describePackage,
  filesOfHeader,
  formatEvr,
  formatNevra,
  isGhost,
} from './package.js';
export { type PayloadEntry, type PayloadSummary, readPayload } from './payload.js';
export { type RpmHead, readRpmHead } from './read.js';
export { type Comparison, type RichDep, type SimpleDep, formatRichDep, isRichDep, parseRichDep } from './rich-deps.js';
export { FileFlag, Sense, SigTag, Tag, TagType } from './tags.js';
