// A hostile server behind a yum repository cannot exhaust a compose: an endless repomd.xml, a
// primary.xml or a package longer than repomd.xml or primary.xml say are refused within their
// bound (memory stays small, nothing is kept in the cache), and a redirect loop ends. The
// repository itself is real (createrepo_c over packages rpmbuild made).
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../src/repo/index.js';
import {
  type HostileServer,
  endlessBody,
  hugeContentLength,
  redirect,
  runCliMeasured,
  sendBytes,
  slowDrip,
  startHostileServer,
} from '../support/hostile.js';
import { HAVE_CREATEREPO, HAVE_RPMBUILD, makeRepo } from '../support/rpmgen.js';
import { useTempDir } from '../support/temp.js';

/** Peak RSS every refused compose must stay under. */
const RSS_LIMIT_KIB = 256 * 1024;

describe.skipIf(!HAVE_RPMBUILD || !HAVE_CREATEREPO)('composing from a hostile yum repository', () => {
  const tmp = useTempDir('arbor-security-yum-');
  let server: HostileServer;
  let primary = '';
  let runs = 0;

  beforeAll(async () => {
    makeRepo(join(tmp.path, 'srv'), [{ name: 'app', files: { '/usr/bin/app': { content: 'app\n', mode: 0o755 } } }]);
    primary = readdirSync(join(tmp.path, 'srv', 'repodata')).find((f) => f.includes('primary.xml'))!;
    server = await startHostileServer(join(tmp.path, 'srv'));
  });
  afterAll(async () => server?.stop());

  /** Composes `app` from the server, named by URL or, with `repoFile`, by a .repo file beside the treefile. */
  async function compose(repoFile?: string): Promise<Awaited<ReturnType<typeof runCliMeasured>>> {
    const n = ++runs;
    const repo = join(tmp.path, `repo-${n}`);
    Repo.init(repo, 'bare-user').close();
    const dir = join(tmp.path, `case-${n}`);
    mkdirSync(dir);
    if (repoFile !== undefined) writeFileSync(join(dir, 'r.repo'), repoFile);
    const file = join(dir, 'os.yaml');
    const repos = repoFile === undefined ? [server.url] : ['r'];
    writeFileSync(file, JSON.stringify({ ref: 'os', repos, packages: ['app'], container: true }));
    return runCliMeasured(
      ['compose', 'tree', '--repo', repo, '--cachedir', join(tmp.path, `cache-${n}`), '--no-scripts', file],
      { timeoutMs: 60_000 },
    );
  }

  it.each([
    ['an endless repomd.xml', '/repodata/repomd.xml', 'endless', /more than the 16777216 bytes allowed/],
    ['a primary.xml longer than repomd.xml says', 'PRIMARY', 'huge', /is \d+ bytes, more than the \d+ allowed/],
    [
      'a package longer than primary.xml says',
      '/app-1-1.noarch.rpm',
      'huge',
      /is \d+ bytes, more than the \d+ allowed/,
    ],
    ['a redirect loop', '/repodata/repomd.xml', 'loop', /redirect loop/],
  ])('refuses %s within its bound', async (_what, target, kind, reason) => {
    const path = target === 'PRIMARY' ? `/repodata/${primary}` : target;
    server.setOverride((_req, res, requested) => {
      if (requested !== path) return false;
      if (kind === 'endless') endlessBody(res);
      else if (kind === 'huge') hugeContentLength(res, 20 * 1024 * 1024 * 1024);
      else redirect(res, path);
      return true;
    });
    try {
      const r = await compose();
      expect(r.signal).toBeNull();
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(
        /^error\[E_YUM_REPO_UNREACHABLE\]: repository 'http:\/\/127\.0\.0\.1:\d+\/': no mirror could give /,
      );
      expect(r.stderr).toMatch(reason);
      expect(r.peakRssKiB).toBeLessThan(RSS_LIMIT_KIB);
    } finally {
      server.setOverride(null);
    }
  });

  it("abandons a slow drip below the repository's minrate for its timeout", async () => {
    const repomd = readFileSync(join(tmp.path, 'srv', 'repodata', 'repomd.xml'));
    server.setOverride((_req, res, requested) => {
      if (requested !== '/repodata/repomd.xml') return false;
      slowDrip(res, repomd, 200);
      return true;
    });
    try {
      const started = Date.now();
      const r = await compose(`[r]\nbaseurl=${server.url}\nminrate=1000\ntimeout=1\n`);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(
        /^error\[E_YUM_REPO_UNREACHABLE\]: repository 'r': no mirror could give repodata\/repomd\.xml: .*slower than 1000 B\/s for 1 s \(tried 3 times\)/,
      );
      // Three attempts of about a second each and the backoff between them, not the 30 s default.
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      server.setOverride(null);
    }
  });

  it.each(['file:///etc/passwd', 'http://127.0.0.1:1/primary.xml.gz'])(
    'refuses metadata placing a file outside the repository (%s)',
    async (href) => {
      const repomd = readFileSync(join(tmp.path, 'srv', 'repodata', 'repomd.xml'), 'utf8');
      const forged = Buffer.from(repomd.replace(`href="repodata/${primary}"`, `href="${href}"`));
      expect(forged.toString()).toContain(href);
      server.setOverride((_req, res, requested) => {
        if (requested !== '/repodata/repomd.xml') return false;
        sendBytes(res, forged);
        return true;
      });
      const before = server.requests.length;
      try {
        const r = await compose();
        expect(r.exitCode).toBe(3);
        expect(r.stderr).toMatch(
          /^error\[E_REPODATA_INVALID\]: repository '[^']+': location '[^']+' leads outside the repository/,
        );
        expect(server.requests.slice(before).filter((p) => p.includes('primary'))).toEqual([]);
      } finally {
        server.setOverride(null);
      }
    },
  );

  it('drops file:// mirrors from a mirrorlist served over http', async () => {
    writeFileSync(join(tmp.path, 'srv', 'list-local'), `file://${join(tmp.path, 'srv')}/\n`);
    const r = await compose(`[r]\nmirrorlist=${server.url}list-local\n`);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^error\[E_YUM_REPO_UNREACHABLE\]: repository 'r' has no usable mirror to ask/);
  });
});
