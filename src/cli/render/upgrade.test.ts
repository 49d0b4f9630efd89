import { describe, expect, it } from 'vitest';
import { checksumOf, makeDeployResult, makeDeployment } from '../../../test/support/deployment-values.js';
import type { UpgradeResult } from '../../deploy/index.js';
import { renderUpgrade, upgradeJson } from './upgrade.js';

const A = checksumOf('a');
const C = checksumOf('c');
const NONE: UpgradeResult = {
  refspec: 'origin:os/stable',
  from: makeDeployment(),
  available: A,
  version: null,
  newer: false,
  downloadBytes: null,
  downgrade: null,
  deployed: null,
};
const AVAILABLE: UpgradeResult = { ...NONE, available: C, version: '43', newer: true };
const TOOLS_UPGRADED = {
  added: [],
  removed: [],
  upgraded: [{ name: 'tools', arch: 'noarch', from: '1.0-1', to: '1.0-2' }],
  downgraded: [],
};

describe('renderUpgrade', () => {
  it('says there is no upgrade', () => {
    expect(renderUpgrade(NONE, null)).toEqual({
      stdout: `no upgrade available: origin:os/stable is at the deployed commit ${'a'.repeat(12)}\n`,
      stderr: '',
    });
  });

  it('--check: names the new commit and the download', () => {
    expect(renderUpgrade({ ...AVAILABLE, downloadBytes: 3 * 1024 * 1024 }, null).stdout).toBe(
      `upgrade available: origin:os/stable ${C} (version 43)\n  download: 3.0 MiB\n`,
    );
  });

  it('--preview: lists package changes as `db diff` does', () => {
    expect(renderUpgrade(AVAILABLE, TOOLS_UPGRADED).stdout).toBe(
      `upgrade available: origin:os/stable ${C} (version 43)\nUpgraded:\n  tools.noarch 1.0-1 -> 1.0-2\n`,
    );
  });

  it('--check: calls an older commit a downgrade that needs --allow-downgrade', () => {
    const downgrade = {
      from: { checksum: A, version: '42', timestamp: 1_700_000_000 },
      to: { checksum: C, version: '41', timestamp: 1_600_000_000 },
    };
    expect(renderUpgrade({ ...AVAILABLE, version: '41', downgrade, downloadBytes: 10 }, null).stdout).toBe(
      `downgrade: 42 (2023-11-14T22:13:20Z) → 41 (2020-09-13T12:26:40Z); origin:os/stable is at an older commit ${C}; \`arbor upgrade\` deploys it only with --allow-downgrade\n  download: 10 B\n`,
    );
  });

  it('names what it deployed or staged, its trial, and warns of /etc conflicts', () => {
    const conflict = {
      path: 'hosts',
      admin: 'changed content',
      defaults: 'changed mode',
      adminChange: { kind: 'modified', aspects: ['content'] },
      defaultsChange: { kind: 'modified', aspects: ['mode'] },
    } as const;
    const deployed = makeDeployResult(makeDeployment({ checksum: C, serial: 1 }), {
      trialTries: 3,
      etcConflicts: [conflict],
    });
    expect(renderUpgrade({ ...AVAILABLE, deployed }, null)).toEqual({
      stdout: `deployed ${C}.1 (version 43); reboot to use it\non trial: 3 tries; arbor-health blesses it when its checks pass, else the machine falls back\n`,
      stderr:
        "warning: /etc/hosts: changed by the admin and by the new defaults; kept the admin's version (changed content; new defaults: changed mode)\n",
    });
    const staged = makeDeployResult(makeDeployment({ checksum: C }), { staged: true });
    expect(renderUpgrade({ ...AVAILABLE, version: null, deployed: staged }, null).stdout).toBe(
      `staged ${C}.0; it becomes the default at shutdown\n`,
    );
  });
});

describe('upgradeJson', () => {
  it('keeps the result in order, with the deployment as status shows it and the package diff', () => {
    const json = upgradeJson(AVAILABLE, TOOLS_UPGRADED);
    expect(Object.keys(json)).toEqual([
      'refspec',
      'from',
      'available',
      'version',
      'newer',
      'downloadBytes',
      'packages',
      'downgrade',
      'deployed',
    ]);
    expect(json).toMatchObject({ from: { checksum: A, origin: 'origin:os/stable' }, packages: TOOLS_UPGRADED });
  });
});
