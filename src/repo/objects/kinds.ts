// Object kinds and their one-byte tags in encoded objects (file extensions on disk are store.ts's).

/** The five object kinds (docs/format.md §Kinds). */
export type ObjectKind = 'file' | 'dirtree' | 'dirmeta' | 'commit' | 'commitmeta';

/** First byte of every encoded object; the second byte is the format version. */
export const KIND_TAG: Record<ObjectKind, number> = { file: 1, dirtree: 2, dirmeta: 3, commit: 4, commitmeta: 5 };

/**
 * Version of every object encoding written today; decoders reject others. Version 2 added each
 * file's content size to dirtree entries (docs/format.md §5).
 */
export const OBJECT_FORMAT_VERSION = 2;
