import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from './agent-config.js';
import { jitterFraction } from './agent.js';

const parse = (yaml: string) => parseAgentConfig('/a.yaml', Buffer.from(yaml));
const refusal = (yaml: string): string => {
  try {
    parse(yaml);
  } catch (error) {
    expect((error as { code: string }).code).toBe('E_AGENT_CONFIG');
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe('parseAgentConfig', () => {
  it('has safe defaults: check only, hourly', () => {
    expect(parse('')).toMatchObject({
      policy: 'check',
      intervalSeconds: 3600,
      jitterSeconds: 600,
      strategy: 'immediate',
    });
  });

  it('reads every key', () => {
    const c = parse(`
channel: srv:os/stable
id: node-17
policy: apply
interval: 30m
jitter: 0
reboot:
  strategy: fleet-lock
  fleet_lock: {url: "http://10.0.0.5:3333/", group: workers}
  windows:
    - days: [Mon, wednesday]
      start: "22:30"
      length: 2h
      time_zone: Europe/Berlin
  command: [/usr/bin/systemctl, reboot]
`);
    expect(c).toEqual({
      path: '/a.yaml',
      channel: 'srv:os/stable',
      releases: null,
      id: 'node-17',
      policy: 'apply',
      intervalSeconds: 1800,
      jitterSeconds: 0,
      strategy: 'fleet-lock',
      windows: [{ days: [1, 3], startMinutes: 22 * 60 + 30, lengthSeconds: 7200, timeZone: 'Europe/Berlin' }],
      fleetLock: { url: 'http://10.0.0.5:3333', group: 'workers' },
      rebootCommand: ['/usr/bin/systemctl', 'reboot'],
    });
  });

  it.each([
    ['polcy: apply\n', "/a.yaml:1:1: unknown key 'polcy' in the configuration (did you mean 'policy'?)"],
    ['policy: auto\n', "/a.yaml:1:9: 'policy' must be one of none, check, stage, apply"],
    ['interval: 10s\n', "/a.yaml:1:11: 'interval' must be at least 60 seconds"],
    ['interval: soon\n', "/a.yaml:1:11: 'interval' must be a duration"],
    ['reboot:\n  strategy: periodic\n', "/a.yaml:2:13: 'reboot.strategy: periodic' needs 'reboot.windows'"],
    ['reboot:\n  strategy: fleet-lock\n', "'reboot.strategy: fleet-lock' needs 'reboot.fleet_lock'"],
    [
      'reboot:\n  windows:\n    - days: [mon]\n      start: "25:00"\n      length: 1h\n',
      "/a.yaml:4:14: 'start' is not a time HH:MM",
    ],
    [
      'reboot:\n  windows:\n    - days: [moon]\n      start: "01:00"\n      length: 1h\n',
      '/a.yaml:3:14: a day must be one of',
    ],
    [
      'reboot:\n  windows:\n    - days: [mon]\n      start: "01:00"\n      length: 1h\n      time_zone: Mars/Base\n',
      "/a.yaml:6:18: 'time_zone' is not a time zone",
    ],
    ['reboot:\n  windows:\n    - days: [mon]\n      start: "01:00"\n', "/a.yaml:3:7: a window needs 'length'"],
    ['reboot:\n  fleet_lock: {url: "ftp://x"}\n', "'url' is not an http(s) URL"],
    ['channel: stable\n', "/a.yaml:1:10: 'channel' is not REMOTE:REF"],
    ['channel: a:b\nreleases: {remote: a, channel: s}\n', "/a.yaml:2:11: give either 'channel' (a ref) or 'releases'"],
    ['releases: {remote: a}\n', "/a.yaml:1:11: 'releases' needs 'channel'"],
  ])('refuses %j', (yaml, message) => {
    expect(refusal(yaml)).toContain(message);
  });

  it('spreads hosts over the jitter, the same fraction every time', () => {
    expect(jitterFraction('node-1')).toBe(jitterFraction('node-1'));
    const fractions = Array.from({ length: 200 }, (_, i) => jitterFraction(`node-${i}`));
    expect(Math.min(...fractions)).toBeLessThan(0.05);
    expect(Math.max(...fractions)).toBeGreaterThan(0.95);
  });
});
