// A host with little memory: a sysroot that has v1 upgrades to v2 by static delta from nginx (a
// 64 MiB file patched), then rolls back, every command inside a cgroup limited to 160 MiB; the
// kernel must kill nothing and the delta, not file objects, must carry the patched file.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arbor } from '../support/cli.js';
import { HAVE_MEMORY_CGROUP, type MemoryCgroup, makeMemoryCgroup } from '../support/memory-cgroup.js';
import { HAVE_NGINX, type NginxServer, readAccessLog, startNginx } from '../support/nginx.js';
import { Random } from '../support/random.js';
import { STATEROOT, TestSysroot, commitRootOwned, writeOsTree } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';

const LIMIT_BYTES = 160 * 1024 * 1024;
const BIG_BYTES = 64 * 1024 * 1024;
const BIG_PATH = 'usr/lib/big/libbig.so';

/** The big file of v1, and of v2: v1 with bytes changed every few hundred KiB and 64 KiB inserted in the middle. */
function bigFiles(): { v1: Buffer; v2: Buffer } {
  const random = new Random(0x5eed_0018);
  const v1 = random.bytes(BIG_BYTES);
  const edited = Buffer.from(v1);
  for (let at = 4096; at < edited.length; at += 300 * 1024) random.bytes(64).copy(edited, at);
  const middle = BIG_BYTES / 2;
  const v2 = Buffer.concat([edited.subarray(0, middle), random.bytes(64 * 1024), edited.subarray(middle)]);
  return { v1, v2 };
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(!HAVE_NGINX || !HAVE_MEMORY_CGROUP)('a host limited to 160 MiB of memory', () => {
  const tmp = useTempDir('arbor-constrained-');
  let nginx: NginxServer;
  let host: TestSysroot;
  let cgroup: MemoryCgroup | undefined;
  const commits: Record<'v1' | 'v2', string> = { v1: '', v2: '' };
  let v2BigSha = '';

  beforeAll(async () => {
    const server = join(tmp.path, 'srv', 'repo');
    arbor('init', '--repo', server, '--mode', 'archive');
    const big = bigFiles();
    v2BigSha = sha256(big.v2);
    const release = (version: 'v1' | 'v2', content: Buffer): void => {
      const dir = join(tmp.path, `tree-${version}`);
      writeOsTree(dir, { version, files: { [BIG_PATH]: content, [`usr/share/release-${version}`]: `${version}\n` } });
      commits[version] = commitRootOwned(server, 'os/stable', dir, version).checksum;
      arbor('summary', '--repo', server, '--update');
    };
    release('v1', big.v1);
    nginx = await startNginx(join(tmp.path, 'srv'), { accessLog: join(tmp.path, 'access.log') });
    host = TestSysroot.create(join(tmp.path, 'host'));
    host.repoCli('remote', 'add', 'srv', `${nginx.url}/repo`, '--no-sign-verify');
    host.repoCli('pull', 'srv', 'os/stable');
    host.ok('admin', 'deploy', '--stateroot', STATEROOT, '--origin-ref', 'srv:os/stable', 'srv:os/stable');
    release('v2', big.v2);
    arbor('static-delta', 'generate', '--repo', server, '--from', commits.v1, '--to', commits.v2);
    arbor('summary', '--repo', server, '--update');
    cgroup = makeMemoryCgroup(`arbor-test-${process.pid}`, LIMIT_BYTES);
  }, 120_000);
  afterAll(async () => {
    cgroup?.remove();
    await nginx?.stop();
  });

  it('upgrades by static delta and rolls back with nothing OOM-killed', async () => {
    const cg = cgroup as MemoryCgroup;
    const logBefore = readAccessLog(join(tmp.path, 'access.log')).length;
    const upgrade = await cg.runCli(['upgrade', '--sysroot', host.path]);
    expect({ exitCode: upgrade.exitCode, signal: upgrade.signal, stderr: upgrade.stderr }).toEqual({
      exitCode: 0,
      signal: null,
      stderr: expect.any(String),
    });
    expect(upgrade.stdout).toBe(`deployed ${commits.v2}.0 (version v2); reboot to use it\n`);
    // The delta carried the change: no file object was fetched one by one (only the commit's detached metadata).
    const requests = readAccessLog(join(tmp.path, 'access.log')).slice(logBefore);
    expect(requests.filter((r) => r.path.includes('/deltas/')).length).toBeGreaterThan(0);
    expect(requests.filter((r) => /\/objects\/.*\.file/.test(r.path)).map((r) => r.path)).toEqual([]);
    expect(sha256(readFileSync(join(host.deploymentDir(commits.v2), BIG_PATH)))).toBe(v2BigSha);

    const rollback = await cg.runCli(['rollback', '--sysroot', host.path]);
    expect(rollback.exitCode).toBe(0);
    expect(host.status().deployments.map((d) => d.checksum)).toEqual([commits.v1, commits.v2]);
    expect(cg.oomKills()).toBe(0);
    // For the record in the test log: what the commands peaked at under the limit.
    console.log(`peak RSS: upgrade ${upgrade.peakRssKiB} KiB, rollback ${rollback.peakRssKiB} KiB`);
  }, 120_000);
});
