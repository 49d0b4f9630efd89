// The layering module's public surface for cli/: requests in a deployment's origin, the package
// directory, the derive step deploy and upgrade take, and what status shows.
export {
  deriveWith,
  isPackageFile,
  type LayeringStatus,
  layeringStatus,
  packageDirOf,
  packageFilesOf,
  planLayer,
  storeLocalPackages,
} from './layering.js';
export { type HostRepos, readHostRepos } from './host-repos.js';
export {
  addPackages,
  addRemovals,
  addReplacements,
  type LayerRequests,
  parseLayerRequests,
  removePackages,
  resetOverrides,
} from './requests.js';
