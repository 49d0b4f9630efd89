// Deployment and deploy-result values for the cli renderers' tests: fixed checksums and times,
// overridable field by field.
import type { Checksum } from '../../src/common/hash.js';
import type { DeployResult, Deployment } from '../../src/deploy/index.js';

/** A commit checksum made of one repeated hex digit, so expected text stays readable. */
export const checksumOf = (digit: string): Checksum => digit.repeat(64) as Checksum;

/** A deployment of stateroot `os`, serial 0, with an origin and no trial; `fields` override. */
export function makeDeployment(
  fields: Partial<Deployment> & { refspec?: string | null; pinned?: boolean; allowDowngrade?: boolean } = {},
): Deployment {
  const { refspec = 'origin:os/stable', pinned = false, allowDowngrade = false, ...rest } = fields;
  return {
    stateroot: 'os',
    checksum: checksumOf('a'),
    serial: 0,
    bootcsum: 'b'.repeat(64),
    kargs: [],
    origin: { refspec, pinned, allowDowngrade, extra: new Map() },
    version: null,
    ...rest,
  };
}

/** A plain, unstaged deploy result of `deployment`; `fields` override. */
export function makeDeployResult(deployment: Deployment, fields: Partial<DeployResult> = {}): DeployResult {
  return {
    deployment,
    staged: false,
    etcConflicts: [],
    removed: [],
    kernelCopied: true,
    preflight: null,
    trialTries: null,
    trialNote: null,
    downgrade: null,
    ...fields,
  };
}
