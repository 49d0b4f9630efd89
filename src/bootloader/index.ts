// The bootloader module's public surface: BLS entries, the backends, and the atomic switch of
// boot sets. deploy/ and cli/ import from here only.
export {
  type BootEntry,
  type BootTries,
  type EntryFileName,
  type SystemdBootCandidate,
  MAX_TRIES,
  assertBootEntry,
  assertBootTries,
  compareBootEntries,
  entryFileName,
  formatBlsEntry,
  parseBlsEntry,
  parseEntryFileName,
  strverscmpImproved,
  systemdBootOrderMismatch,
} from './bls.js';
export {
  type BackendOptions,
  type Bootloader,
  type BootloaderName,
  type BootloaderOptions,
  BOOTLOADER_NAMES,
  bootPathPrefix,
  createBootloader,
  detectBootloader,
} from './bootloader.js';
export {
  type GrubConfigOptions,
  GRUBENV_VARS,
  MAX_GRUB_TRIES,
  formatGrubCfg,
  formatGrubenv,
  grubTrialToken,
  parseGrubenv,
  splitKernelArgs,
  staticGrubCfg,
} from './grub2.js';
export { type SyslinuxConfigOptions, formatSyslinuxCfg } from './syslinux.js';
export { type UEnvOptions, formatUEnv } from './uboot.js';
export {
  type BootSetStep,
  type EspStep,
  type WriteBootSetEspOptions,
  type WriteBootSetOptions,
  currentBootversion,
  entryFileNames,
  espEntriesDir,
  planEspSwitch,
  readBootEntries,
  readBootEntriesEsp,
  readBootEntryFiles,
  writeBootSet,
  writeBootSetEsp,
} from './swap.js';
