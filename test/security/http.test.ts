// A hostile HTTP server cannot exhaust a client: endless and oversized bodies are refused within
// their bound (memory and disk stay small), slow drips and never-ending transfers end with
// E_FETCH_FAILED after retries, and redirects are followed to a mirror but never in a loop or from
// https down to http. Every failed pull leaves the ref where it was.
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { type Server, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arbor, sh } from '../support/cli.js';
import {
  type HostileServer,
  type MeasuredResult,
  endlessBody,
  hugeContentLength,
  redirect,
  runCliMeasured,
  servedBytes,
  slowDrip,
  startHostileServer,
} from '../support/hostile.js';
import { initRepo } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import { commitVersion, writeTransferTree } from '../support/transfer.js';

const MiB = 1024 * 1024;
/** Peak RSS every refused pull must stay under. */
const RSS_LIMIT_KIB = 256 * 1024;

describe('pulling from a hostile HTTP server', () => {
  const tmp = useTempDir('arbor-security-http-');
  let hostile: HostileServer;
  let mirror: HostileServer;
  let template: string;
  let v1: string;
  let v2: string;
  let clients = 0;

  const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<MeasuredResult> =>
    runCliMeasured(args, { env, timeoutMs: 60_000 });
  const refsOf = async (repo: string): Promise<Record<string, string>> => {
    const r = await run(['refs', '--json', '--repo', repo]);
    return Object.fromEntries(
      (JSON.parse(r.stdout) as { name: string; checksum: string }[]).map((x) => [x.name, x.checksum]),
    );
  };
  const diskBytes = (path: string): number => Number(sh(`du -sb '${path}' | cut -f1`));
  /** A copy of the client at v1 whose origin is URL with the given `--set` settings. */
  const clientAtV1 = async (url = `${hostile.url}plain`, settings: string[] = []): Promise<string> => {
    const repo = join(tmp.path, `client-${clients++}`);
    sh(`cp -a '${template}' '${repo}'`);
    await run(['remote', 'delete', '--repo', repo, 'origin']);
    const added = await run([
      'remote',
      'add',
      '--repo',
      repo,
      'origin',
      url,
      '--no-sign-verify',
      ...settings.flatMap((s) => ['--set', s]),
    ]);
    expect(added.exitCode, added.stderr).toBe(0);
    return repo;
  };
  const pull = (repo: string, env: NodeJS.ProcessEnv = {}): Promise<MeasuredResult> =>
    run(['pull', '--repo', repo, 'origin', '--disable-static-deltas', 'os/main'], env);
  /** A refused pull: exit 1 with `code`, the ref at v1, bounded memory, and at most `slackBytes` more on disk. */
  const expectRefused = async (
    repo: string,
    r: MeasuredResult,
    code: string,
    before: number,
    slackBytes = 4 * MiB,
  ): Promise<void> => {
    expect(r.signal, 'the pull was killed: it hung').toBeNull();
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error\\[${code}\\]: `));
    expect(r.peakRssKiB).toBeLessThan(RSS_LIMIT_KIB);
    expect(diskBytes(repo) - before).toBeLessThan(slackBytes);
    expect(await refsOf(repo)).toEqual({ 'origin:os/main': v1 });
  };

  beforeAll(async () => {
    const trees = { v1: join(tmp.path, 'tree-v1'), v2: join(tmp.path, 'tree-v2') };
    writeTransferTree(trees.v1, 1, { smallFiles: 40, largeFile: false });
    writeTransferTree(trees.v2, 2, { smallFiles: 40, largeFile: false });
    const server = initRepo(join(tmp.path, 'srv/plain'), 'archive');
    symlinkSync('plain', join(tmp.path, 'srv/alias'));
    v1 = commitVersion(server, 1, trees.v1);
    arbor('summary', '--repo', server, '--update');
    hostile = await startHostileServer(join(tmp.path, 'srv'));
    mirror = await startHostileServer(join(tmp.path, 'srv'));
    template = initRepo(join(tmp.path, 'template'), 'bare-user');
    expect(
      (await run(['remote', 'add', '--repo', template, 'origin', `${hostile.url}plain`, '--no-sign-verify'])).exitCode,
    ).toBe(0);
    const first = await run(['pull', '--repo', template, 'origin', 'os/main']);
    expect(first.exitCode, first.stderr).toBe(0);
    v2 = commitVersion(server, 2, trees.v2);
    arbor('summary', '--repo', server, '--update');
  });
  afterAll(async () => {
    await hostile?.stop();
    await mirror?.stop();
  });

  it('refuses an endless chunked summary at its 10 MiB bound, in bounded memory', async () => {
    const repo = await clientAtV1();
    const before = diskBytes(repo);
    hostile.setOverride((_req, res, path) => path === '/plain/summary' && (endlessBody(res), true));
    try {
      const r = await pull(repo);
      await expectRefused(repo, r, 'E_FETCH_FAILED', before);
      expect(r.stderr).toContain(`${hostile.url}plain/summary is more than the ${10 * MiB} bytes allowed`);
    } finally {
      hostile.setOverride(null);
    }
  });

  it('refuses a summary whose Content-Length is over the bound before reading its body', async () => {
    const repo = await clientAtV1(undefined, ['max-summary-size=100000']);
    const before = diskBytes(repo);
    hostile.setOverride((_req, res, path) => path === '/plain/summary' && (hugeContentLength(res, 2 ** 40), true));
    try {
      const r = await pull(repo);
      await expectRefused(repo, r, 'E_FETCH_FAILED', before);
      expect(r.stderr).toContain(`${hostile.url}plain/summary is ${2 ** 40} bytes, more than the 100000 allowed`);
    } finally {
      hostile.setOverride(null);
    }
  });

  it('refuses a file object whose Content-Length cannot fit on the disk before writing any of it', async () => {
    const repo = await clientAtV1();
    const before = diskBytes(repo);
    hostile.setOverride((_req, res, path) => path.endsWith('.filez') && (hugeContentLength(res, 2 ** 50), true));
    try {
      const r = await pull(repo);
      // A size bound from the dirtree, where the format carries one, refuses it first (E_FETCH_FAILED).
      await expectRefused(repo, r, '(E_NO_SPACE|E_FETCH_FAILED)', before);
      expect(r.stderr).toMatch(
        new RegExp(`is ${2 ** 50} bytes, (but only \\d+ bytes are free|more than the \\d+ allowed)`),
      );
    } finally {
      hostile.setOverride(null);
    }
  });

  it('ends a slow drip with the low-speed limit, after retries, naming the URL and the reason', async () => {
    const repo = await clientAtV1(undefined, ['low-speed-limit=1000', 'low-speed-time=1']);
    const before = diskBytes(repo);
    const summary = servedBytes(join(tmp.path, 'srv'), 'plain/summary');
    hostile.setOverride((_req, res, path) => path === '/plain/summary' && (slowDrip(res, summary, 200), true));
    const started = Date.now();
    try {
      const r = await pull(repo);
      await expectRefused(repo, r, 'E_FETCH_FAILED', before);
      expect(r.stderr).toContain(
        `GET ${hostile.url}plain/summary failed: slower than 1000 B/s for 1 s (tried 3 times)`,
      );
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      hostile.setOverride(null);
    }
  });

  it('ends a transfer that stays above the speed limit but never finishes with the request timeout', async () => {
    const repo = await clientAtV1(undefined, ['low-speed-limit=1000', 'low-speed-time=1', 'request-timeout=2']);
    const before = diskBytes(repo);
    hostile.setOverride((_req, res, path) => {
      if (path !== '/plain/summary') return false;
      // 40 kB/s, well above the limit, of a body that would take two minutes.
      res.writeHead(200, { 'content-length': 5 * MiB });
      const timer = setInterval(() => res.write(Buffer.alloc(4096, 0x10)), 100);
      res.on('close', () => clearInterval(timer));
      return true;
    });
    const started = Date.now();
    try {
      const r = await pull(repo);
      await expectRefused(repo, r, 'E_FETCH_FAILED', before);
      expect(r.stderr).toContain(
        `GET ${hostile.url}plain/summary failed: not done within the 2 s request timeout (tried 3 times)`,
      );
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      hostile.setOverride(null);
    }
  });

  it('follows redirects to a mirror (relative, then absolute Location) and verifies what it serves', async () => {
    const repo = await clientAtV1();
    mirror.requests.length = 0;
    hostile.setOverride((_req, res, path) => {
      if (path.startsWith('/plain/')) redirect(res, `/alias/${path.slice('/plain/'.length)}`, 301);
      else if (path.startsWith('/alias/')) redirect(res, `${mirror.url}plain/${path.slice('/alias/'.length)}`, 307);
      else return false;
      return true;
    });
    try {
      const r = await pull(repo);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain(`origin:os/main: ${v2} (2.0) — objects`);
      expect(await refsOf(repo)).toEqual({ 'origin:os/main': v2 });
      expect(mirror.requests).toContain('/plain/summary');
      expect(mirror.requests.filter((p) => p.endsWith('.filez')).length).toBeGreaterThan(0);
      expect((await run(['fsck', '--repo', repo])).exitCode).toBe(0);
    } finally {
      hostile.setOverride(null);
    }
  });

  it('ends a redirect loop with E_FETCH_FAILED naming the chain', async () => {
    const repo = await clientAtV1();
    const before = diskBytes(repo);
    hostile.setOverride((_req, res, path) => {
      if (path === '/plain/summary') redirect(res, '/loop/a');
      else if (path === '/loop/a') redirect(res, `${hostile.url}plain/summary`, 308);
      else return false;
      return true;
    });
    try {
      const r = await pull(repo);
      await expectRefused(repo, r, 'E_FETCH_FAILED', before);
      expect(r.stderr).toContain(
        `redirect loop: ${hostile.url}plain/summary -> ${hostile.url}loop/a -> ${hostile.url}plain/summary`,
      );
    } finally {
      hostile.setOverride(null);
    }
  });

  describe.skipIf(!existsSync('/usr/bin/openssl'))('over https', () => {
    let https: Server;
    let httpsUrl: string;
    let caFile: string;

    beforeAll(async () => {
      const key = join(tmp.path, 'tls.key');
      caFile = join(tmp.path, 'tls.crt');
      const made = spawnSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          key,
          '-out',
          caFile,
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { encoding: 'utf8' },
      );
      expect(made.status, made.stderr).toBe(0);
      const root = join(tmp.path, 'srv');
      // Serves the repository, except below /down/, which redirects to the same path over plain http.
      https = createHttpsServer({ key: readFileSync(key), cert: readFileSync(caFile) }, (req, res) => {
        const path = decodeURIComponent((req.url ?? '/').split('?', 1)[0] ?? '/');
        if (path.startsWith('/down/')) return redirect(res, `${hostile.url}${path.slice('/down/'.length)}`);
        const file = join(root, normalize(path).replace(/^(\.\.(\/|$))+/, ''));
        if (!existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-length': statSync(file).size });
        createReadStream(file).pipe(res);
      });
      await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
      httpsUrl = `https://127.0.0.1:${(https.address() as AddressInfo).port}/`;
    });
    afterAll(() => new Promise<void>((resolve) => (https ? https.close(() => resolve()) : resolve())));

    it('pulls over https, and refuses a redirect from https down to http', async () => {
      const env = { NODE_EXTRA_CA_CERTS: caFile };
      const good = await clientAtV1(`${httpsUrl}plain`);
      const ok = await pull(good, env);
      expect(ok.exitCode, ok.stderr).toBe(0);
      expect(await refsOf(good)).toEqual({ 'origin:os/main': v2 });

      const repo = await clientAtV1(`${httpsUrl}down/plain`);
      const before = diskBytes(repo);
      hostile.requests.length = 0;
      const r = await pull(repo, env);
      await expectRefused(repo, r, 'E_FETCH_FAILED', before);
      expect(r.stderr).toContain(
        `${httpsUrl}down/plain/summary redirects from https to http ('${hostile.url}plain/summary'), refused`,
      );
      expect(hostile.requests).toEqual([]);
    });
  });
});
