// The test web server itself: the real nginx started by test/support/nginx.ts serves files byte for
// byte and answers configured error locations, and the fault proxy resets a response mid-stream.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_NGINX, readAccessLog, startFaultProxy, startNginx, type NginxServer } from '../support/nginx.js';
import { useTempDir } from '../support/temp.js';

interface Response {
  status: number;
  body: Buffer;
}

/** GET with node:http on a fresh connection; rejects on any socket or stream error. */
function httpGet(url: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        res.complete
          ? resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) })
          : reject(new Error('response incomplete')),
      );
    });
    req.on('error', reject);
  });
}

const BIG = randomBytes(3 * 1024 * 1024 + 17);

describe.skipIf(!HAVE_NGINX)('nginx test server', () => {
  const dir = useTempDir('arbor-nginx-test-');
  let nginx: NginxServer;
  beforeAll(async () => {
    writeFileSync(join(dir.path, 'big'), BIG);
    writeFileSync(join(dir.path, 'broken'), 'never served');
    nginx = await startNginx(dir.path, {
      errorLocations: { '/broken': 500, '/hangup': 444 },
      accessLog: join(dir.path, 'access.log'),
    });
  });
  afterAll(() => nginx?.stop());

  it('serves a file byte for byte and logs the body bytes sent', async () => {
    const res = await httpGet(`${nginx.url}/big`);
    expect(res.status).toBe(200);
    expect(res.body.equals(BIG)).toBe(true);
    expect(readAccessLog(join(dir.path, 'access.log'))).toContainEqual(
      expect.objectContaining({ method: 'GET', path: '/big', status: 200, bodyBytes: BIG.length }),
    );
  });

  it('answers 404 for a missing file and the configured status for an error location', async () => {
    expect((await httpGet(`${nginx.url}/missing`)).status).toBe(404);
    expect((await httpGet(`${nginx.url}/broken`)).status).toBe(500);
    await expect(httpGet(`${nginx.url}/hangup`)).rejects.toThrow();
  });

  it('resets a matching response mid-stream through the fault proxy, once', async () => {
    const proxy = await startFaultProxy(nginx.port, { match: (p) => p === '/big', afterBodyBytes: 100_000, times: 1 });
    try {
      await expect(httpGet(`${proxy.url}/big`)).rejects.toMatchObject({ code: expect.stringMatching(/ECONNRESET/) });
      expect(proxy.resets).toBe(1);
      const retry = await httpGet(`${proxy.url}/big`);
      expect(retry.body.equals(BIG)).toBe(true);
      expect((await httpGet(`${proxy.url}/missing`)).status).toBe(404);
    } finally {
      await proxy.stop();
    }
  });
});
