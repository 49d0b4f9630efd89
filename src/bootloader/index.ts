// The bootloader module's public surface: what deploy/ and cli/ use (BLS entries, the backend
// probe, the atomic switch of boot sets). Tests import the internal files directly.
export { type BootEntry } from './bls.js';
export { type Bootloader, bootPathPrefix, detectBootloader } from './bootloader.js';
export { formatGrubenv, staticGrubCfg } from './grub2.js';
export { currentBootversion, readBootEntries, readBootEntriesEsp, writeBootSet, writeBootSetEsp } from './swap.js';
