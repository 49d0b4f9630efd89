// The pure object codecs, re-exported as one unit.
export * from './commit.js';
export * from './dirtree.js';
export * from './file-header.js';
export * from './kinds.js';
export * from './names.js';
export * from './xattrs.js';
export * from './transfer.js';
