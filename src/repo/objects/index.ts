// The pure object codecs the rest of repo/ uses, and those repo/index.ts passes on.
export { ChecksumList } from './checksum-list.js';
export {
  type Commit,
  commitVersion,
  decodeCommit,
  decodeCommitMeta,
  encodeCommit,
  encodeCommitMeta,
  type Metadata,
  type MetadataValue,
} from './commit.js';
export {
  decodeDirMeta,
  decodeDirTree,
  type DirMeta,
  type DirTree,
  type DirTreeFile,
  encodeDirMeta,
  encodeDirTree,
} from './dirtree.js';
export {
  decodeFileHeader,
  decodeFileObject,
  encodeFileHeader,
  type FileHeader,
  fileType,
  isDevice,
  isRegular,
  isSymlink,
  readFileHeader,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  S_IFSOCK,
} from './file-header.js';
export { type ObjectKind } from './kinds.js';
export { childPath, invalidNameReason } from './names.js';
export {
  DELTA_FORMAT_VERSION,
  decodeSummary,
  decodeSuperblock,
  type DeltaOp,
  type DeltaPartInfo,
  DeltaPartWriter,
  encodeSummary,
  encodeSuperblock,
  MAX_PATCH_SOURCE_BYTES,
  MAX_PATCH_WINDOW_BYTES,
  type PatchWindow,
  readDeltaPart,
  type Summary,
  type SummaryDelta,
  type SummaryRef,
  type Superblock,
  TRANSFER_TAG,
} from './transfer.js';
export { sortXattrs, type Xattr } from './xattrs.js';
