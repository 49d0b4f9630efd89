// A real etcd cluster on 127.0.0.1 for fleet tests: N members (Debian's etcd-server), each with free
// client and peer ports and its own data directory; members can be stopped and started again to test
// how the FleetLock server lives through a member going down. Every process dies with the test.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './nginx.js';

const ETCD = process.env.ARBOR_ETCD ?? '/usr/bin/etcd';
export const HAVE_ETCD = existsSync(ETCD);
const START_TIMEOUT_MS = 20_000;

interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly args: readonly string[];
  readonly log: string;
  process: ChildProcess | null;
}

export interface EtcdCluster {
  /** Client URLs, one per member. */
  readonly endpoints: readonly string[];
  /** Stops member `i` (SIGKILL: as a crash). */
  stop(i: number): Promise<void>;
  /** Starts member `i` again on its data directory and waits until it is healthy. */
  start(i: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a cluster of `size` members under `dir` and waits until every member reports healthy. */
export async function startEtcdCluster(dir: string, size = 3): Promise<EtcdCluster> {
  const ports = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initial = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const members: Member[] = ports.map((p, i) => {
    const clientUrl = `http://127.0.0.1:${p.client}`;
    const peerUrl = `http://127.0.0.1:${p.peer}`;
    mkdirSync(join(dir, `m${i}`), { recursive: true });
    return {
      name: `m${i}`,
      clientUrl,
      log: join(dir, `m${i}.log`),
      process: null,
      args: [
        '--name',
        `m${i}`,
        '--data-dir',
        join(dir, `m${i}`, 'data'),
        '--listen-client-urls',
        clientUrl,
        '--advertise-client-urls',
        clientUrl,
        '--listen-peer-urls',
        peerUrl,
        '--initial-advertise-peer-urls',
        peerUrl,
        '--initial-cluster',
        initial,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `arbor-test-${process.pid}`,
        // Loopback: short heartbeats make elections after a member dies take well under a second.
        '--heartbeat-interval',
        '50',
        '--election-timeout',
        '500',
      ],
    };
  });
  const launch = (m: Member): void => {
    writeFileSync(m.log, '', { flag: 'a' });
    const child = spawn(ETCD, [...m.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => writeFileSync(m.log, chunk, { flag: 'a' }));
    m.process = child;
  };
  const kill = async (m: Member): Promise<void> => {
    const child = m.process;
    m.process = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((r) => {
      child.once('exit', () => r());
      child.kill('SIGKILL');
    });
  };
  for (const m of members) launch(m);
  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    stop: (i) => kill(members[i] as Member),
    start: async (i) => {
      launch(members[i] as Member);
      await waitHealthy(members[i] as Member);
    },
    close: async () => {
      await Promise.all(members.map(kill));
    },
  };
  try {
    await Promise.all(members.map(waitHealthy));
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}

async function waitHealthy(m: Member): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (m.process?.exitCode !== null && m.process?.exitCode !== undefined)
      throw new Error(`etcd member ${m.name} exited ${m.process.exitCode}; see ${m.log}`);
    try {
      const r = await fetch(`${m.clientUrl}/health`);
      if (r.ok && ((await r.json()) as { health?: string }).health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd member ${m.name} not healthy after ${START_TIMEOUT_MS} ms; see ${m.log}`);
}
