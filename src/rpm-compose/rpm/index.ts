// The RPM reader's surface for the rest of rpm-compose/: headers, the package view, payload
// streaming, listings.
export { decodeHeader, RpmHeader } from './header.js';
export { describeForJson, formatDump, formatInfo, listFile } from './listing.js';
export {
  filesOfHeader,
  formatEvr,
  formatNevra,
  isGhost,
  type RpmFile,
  type RpmPackage,
  type RpmScript,
  type RpmTrigger,
} from './package.js';
export { type PayloadSummary, readPayload } from './payload.js';
export { readRpmHead, readRpmSignedParts, type RpmHead } from './read.js';
export {
  assertRpmSignatureOk,
  type RpmSignatureReport,
  verifyRpmSignature,
} from './signature.js';
export { parseRichDep, type RichDep } from './rich-deps.js';
export { Tag, TagType } from './tags.js';
