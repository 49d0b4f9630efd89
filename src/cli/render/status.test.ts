import { describe, expect, it } from 'vitest';
import { checksumOf, makeDeployment } from '../../../test/support/deployment-values.js';
import { type StatusView, renderStatus, statusJson } from './status.js';

const A = checksumOf('a');
const C = checksumOf('c');
const D = checksumOf('d');
const EMPTY: StatusView = {
  bootversion: null,
  deployments: [],
  staged: null,
  trialFailed: null,
  trialFailures: [],
  firstboot: null,
};

describe('renderStatus', () => {
  it('says there are no deployments', () => {
    expect(renderStatus(EMPTY)).toBe('no deployments\n');
  });

  it('lists the booted and rollback deployments with their details, and only the known ones', () => {
    const view: StatusView = {
      ...EMPTY,
      bootversion: 1,
      deployments: [
        {
          role: 'booted',
          deployment: makeDeployment({
            version: '42',
            kargs: ['root=LABEL=root', 'quiet'],
            pinned: true,
            trial: { left: 2, done: 1 },
          }),
          timestamp: 1_700_000_000,
          etcConflicts: [{ path: 'ssh/sshd_config', admin: 'changed content', defaults: 'changed mode' }],
        },
        {
          role: 'rollback',
          deployment: makeDeployment({ checksum: C, serial: 1, version: '41', refspec: null, allowDowngrade: true }),
          timestamp: null,
          etcConflicts: [],
        },
        {
          role: 'other',
          deployment: makeDeployment({ checksum: D, trial: { left: 0, done: 3 } }),
          timestamp: null,
          etcConflicts: [],
        },
      ],
    };
    expect(renderStatus(view)).toBe(
      `● 0 booted os ${A}.0
      Version: 42 (2023-11-14T22:13:20.000Z)
      Origin: origin:os/stable
      Pinned: yes
      Trial: 2 tries left (1 used), not yet blessed
      Kargs: root=LABEL=root quiet
      /etc conflicts (the admin's version was kept; the new defaults changed these too):
        /etc/ssh/sshd_config: admin changed content; defaults changed mode
 1 rollback os ${C}.1
      Version: 41
      Downgrade: deployed with --allow-downgrade
 2 os ${D}.0
      Origin: origin:os/stable
      Trial: failed (3 tries used)
`,
    );
  });

  it('puts a staged deployment and a failed trial, with the end of its output, above the list', () => {
    const view: StatusView = {
      ...EMPTY,
      deployments: [
        {
          role: 'failed-trial',
          deployment: makeDeployment({ checksum: D, version: '43' }),
          timestamp: null,
          etcConflicts: [],
        },
      ],
      staged: makeDeployment({ checksum: C, serial: 2, version: '44' }),
      trialFailed: {
        stateroot: 'os',
        checksum: D,
        serial: 0,
        version: '43',
        when: 1_700_000_000,
        reason: 'health-check',
        check: 'network',
        output: 'no route\nto host\n',
        triesUsed: 3,
      },
    };
    expect(renderStatus(view)).toBe(
      `  staged    os ${C}.2  version 44 (becomes the default at shutdown)
TRIAL FAILED: os ${D}.0 (version 43): its health check network failed; 3 tries used; noticed 2023-11-14T22:13:20.000Z
  its output:
    | no route
    | to host
  the machine is back on the previous deployment; \`arbor upgrade\` will not deploy that commit again without --force
 0 failed-trial os ${D}.0
      Version: 43
      Origin: origin:os/stable
`,
    );
  });

  it('reports a first boot pending, applied, or failed with its step and escaped output', () => {
    const base = { time: null, steps: null, failedStep: null, exit: null, output: null };
    expect(renderStatus({ ...EMPTY, firstboot: { ...base, state: 'pending' } })).toBe(
      'First boot: configuration pending (applied at the next boot)\nno deployments\n',
    );
    expect(
      renderStatus({ ...EMPTY, firstboot: { ...base, state: 'applied', time: '2026-12-06T10:00:00Z', steps: 7 } }),
    ).toBe('First boot: applied 2026-12-06T10:00:00Z (7 steps)\nno deployments\n');
    const failed = {
      ...base,
      state: 'failed' as const,
      time: '2026-12-06T10:00:00Z',
      steps: 2,
      failedStep: 'user core',
      exit: 1,
      output: 'group \x1b[31mwheel\x1b[0m does not exist\n',
    };
    expect(renderStatus({ ...EMPTY, firstboot: failed })).toBe(
      [
        "FIRST BOOT FAILED at step 'user core' (exit 1) 2026-12-06T10:00:00Z; it runs again at the next boot",
        '  its output:',
        '    | group \\x1b[31mwheel\\x1b[0m does not exist',
        'no deployments',
        '',
      ].join('\n'),
    );
    expect(statusJson({ ...EMPTY, firstboot: failed }).firstboot).toEqual(failed);
  });

  it('names a trial whose tries ran out without a health check', () => {
    const failure = {
      stateroot: 'os',
      checksum: D,
      serial: 0,
      version: null,
      when: 0,
      reason: 'tries-exhausted',
      triesUsed: 3,
    } as const;
    expect(renderStatus({ ...EMPTY, trialFailed: failure }).split('\n')[0]).toBe(
      `TRIAL FAILED: os ${D}.0: its 3 tries ran out before a health check passed (a crash, panic or hang); 3 tries used; noticed 1970-01-01T00:00:00.000Z`,
    );
  });
});

describe('layered deployments', () => {
  const layering = {
    baseCommit: D,
    layeredPackages: ['htop', 'strace'],
    localPackages: ['agent-1.0-1.noarch'],
    removedBasePackages: [],
    replacedBasePackages: ['libcore-2.0-1.noarch -> libcore-2.0-2.noarch'],
  };
  const view: StatusView = {
    ...EMPTY,
    bootversion: 0,
    deployments: [{ role: 'booted', deployment: makeDeployment({}), timestamp: null, etcConflicts: [], layering }],
  };

  it("shows rpm-ostree's fields after the origin, leaving out empty lists", () => {
    expect(renderStatus(view)).toContain(
      `      Origin: origin:os/stable\n      BaseCommit: ${D}\n      LayeredPackages: htop strace\n` +
        '      LocalPackages: agent-1.0-1.noarch\n      ReplacedBasePackages: libcore-2.0-1.noarch -> libcore-2.0-2.noarch\n',
    );
  });

  it('gives them as the layering object in JSON', () => {
    expect((statusJson(view).deployments as { layering: unknown }[])[0]?.layering).toEqual(layering);
  });
});

describe('statusJson', () => {
  it('numbers deployments and shows trial and downgrade keys only when set', () => {
    const view: StatusView = {
      ...EMPTY,
      bootversion: 0,
      deployments: [{ role: 'booted', deployment: makeDeployment({ version: '42' }), timestamp: 5, etcConflicts: [] }],
    };
    expect(statusJson(view)).toEqual({
      bootversion: 0,
      deployments: [
        {
          index: 0,
          role: 'booted',
          stateroot: 'os',
          checksum: A,
          serial: 0,
          version: '42',
          origin: 'origin:os/stable',
          pinned: false,
          kargs: [],
          bootcsum: 'b'.repeat(64),
          timestamp: 5,
          etcConflicts: [],
          layering: null,
        },
      ],
      staged: null,
      trialFailed: null,
      trialFailures: [],
      firstboot: null,
    });
  });
});
