// The image module's public surface: what cli/ (and the test harnesses) use to build disk images.
export { buildImage, type ImageBuildResult, type ImageStep } from './build.js';
export { listFat, readFatFile } from './disk.js';
export { assertImageRootFs, parseImageBootloader, parseSizeBytes } from './plan.js';
