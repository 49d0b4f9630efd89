// The fleet module's contract: the FleetLock server and the etcd store of its semaphores.
export { FleetLockError } from './protocol.js';
export { type Holder, unlock } from './semaphore.js';
export { startFleetLockServer } from './server.js';
export { SemaphoreStore } from './store.js';
