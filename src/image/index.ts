// The image module's public surface: what cli/ (and the test harnesses) use to build disk images
// and to install the same layout onto a disk or into a mounted root filesystem.
export { buildImage, type ImageBuildResult } from './build.js';
export { listFat, readFatFile } from './disk.js';
export {
  type InstallToDiskResult,
  type InstallToFilesystemResult,
  installToDisk,
  installToFilesystem,
} from './install.js';
export type { ImageStep, LayoutRemote } from './layout.js';
export { parseImageBootloader, parseImageRootFs, parseSizeBytes } from './plan.js';
