// The fleet module's contract: the update agent, the FleetLock server and the etcd store of its semaphores.
export { defaultAgentConfig, loadAgentConfig } from './agent-config.js';
export { readAgentState } from './agent-state.js';
export { hostId, nextCheckAt, runAgent } from './agent.js';
export { parseFailureBudget } from './budget.js';
export { FleetLockError, GROUP_NAME } from './protocol.js';
export { loadReleaseGraph, saveReleaseGraph } from './release-file.js';
export { ReleaseEditError, addRelease, editRelease, rolloutShare } from './releases.js';
export { type Holder, unlock } from './semaphore.js';
export { startFleetLockServer } from './server.js';
export { SemaphoreStore } from './store.js';
export { windowState } from './windows.js';
