import { describe, expect, it } from 'vitest';
import { checksumOf, makeDeployResult, makeDeployment } from '../../../test/support/deployment-values.js';
import { renderDeploy } from './deploy.js';

const A = checksumOf('a');
const C = checksumOf('c');

describe('renderDeploy', () => {
  it('names the new deployment', () => {
    expect(renderDeploy(makeDeployResult(makeDeployment()))).toEqual({ stdout: `deployed os ${A}.0\n`, stderr: '' });
  });

  it('reports a staged downgrade on trial, what was removed, and warns of /etc conflicts and an unblessable trial', () => {
    const result = makeDeployResult(makeDeployment({ version: '1.0' }), {
      staged: true,
      removed: [makeDeployment({ checksum: C, serial: 3 })],
      etcConflicts: [
        {
          path: 'hosts',
          admin: 'changed content',
          defaults: 'deleted file',
          adminChange: { kind: 'modified', aspects: ['content'] },
          defaultsChange: { kind: 'deleted', type: 'file' },
        },
      ],
      trialTries: 3,
      trialNote: 'the tree has no arbor-health; nothing will bless it',
      downgrade: {
        from: { checksum: C, version: '2.0', timestamp: 1_700_000_000 },
        to: { checksum: A, version: '1.0', timestamp: 1_600_000_000 },
      },
    });
    expect(renderDeploy(result)).toEqual({
      stdout: `staged os ${A}.0 (version 1.0)
downgrade: 2.0 (2023-11-14T22:13:20Z) → 1.0 (2020-09-13T12:26:40Z); allowed by --allow-downgrade
on trial: 3 tries; arbor-health blesses it when its checks pass, else the machine falls back
removed os ${C}.3
`,
      stderr: `warning: /etc/hosts: changed by the admin and by the new defaults; kept the admin's version (changed content; new defaults: deleted file)
warning: the tree has no arbor-health; nothing will bless it
`,
    });
  });
});
