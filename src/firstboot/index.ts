// The first-boot module's contract: configurations, installing them into a deployment, their result.
export { type FirstbootConfig, loadFirstbootConfig } from './config.js';
export { installFirstboot } from './install.js';
export { type FirstbootResult, readFirstbootResult } from './result.js';
