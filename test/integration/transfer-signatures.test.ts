// Signed serving: ed25519 commit signatures (sign, verify, show) and a signed summary; a remote
// added with --sign-verify pulls only what a trusted key signed, and refuses a summary signed by
// another key, an unsigned summary, or a commit signed only by an unknown key, leaving refs alone.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arbor, runCli, sh } from '../support/cli.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { expectArborError, flipByte, initRepo, stagingDirs } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import { commitVersion, fsck, refsOf, servedObjectPath, writeTransferTree } from '../support/transfer.js';

interface Key {
  keyFile: string;
  pubFile: string;
  keyId: string;
}

describe.skipIf(!HAVE_NGINX)('signed commits and summaries', () => {
  const tmp = useTempDir('arbor-transfer-sign-');
  let nginx: NginxServer;
  let server: string;
  /** A client of a --sign-verify remote that pulled v1 as origin:os/main. */
  let template: string;
  let v1: string;
  let v2: string;
  /** The release key (trusted by clients) and another one. */
  let release: Key;
  let rogue: Key;
  let clients = 0;

  const keygen = (name: string): Key => JSON.parse(arbor('keygen', '--json', '-o', join(tmp.path, name))) as Key;
  const clientAtV1 = (): string => {
    const repo = join(tmp.path, `client-${clients++}`);
    sh(`cp -a '${template}' '${repo}'`);
    return repo;
  };
  const pullArgs = (repo: string, ...flags: string[]): string[] => [
    'pull',
    '--repo',
    repo,
    'origin',
    ...flags,
    'os/main',
  ];
  const hasCommit = (repo: string, checksum: string): boolean =>
    existsSync(join(repo, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.commit`));
  /** A refused pull leaves origin:os/main at v1, a clean fsck, no staging dir, and no v2 commit. */
  const expectUntouched = (repo: string): void => {
    expect(refsOf(repo)).toEqual({ 'origin:os/main': v1 });
    expect(fsck(repo)).toEqual({ exitCode: 0, output: expect.stringContaining('clean') });
    expect(stagingDirs(repo)).toEqual([]);
    expect(hasCommit(repo, v2)).toBe(false);
  };
  /** Pulls v2 (by objects with --disable-static-deltas, else by the v1→v2 delta) and checks who signed it. */
  const expectPullsSigned = (repo: string, ...flags: string[]): void => {
    const r = runCli(pullArgs(repo, ...flags));
    expect(r.exitCode, r.stderr).toBe(0);
    const method = flags.includes('--disable-static-deltas') ? 'objects' : `delta from ${v1.slice(0, 12)}`;
    expect(r.stdout).toContain(`origin:os/main: ${v2} (2.0) — ${method}, signed by ${release.keyId}\n`);
    expect(refsOf(repo)).toEqual({ 'origin:os/main': v2 });
  };
  const summaryFiles = (): { summary: Buffer; sig: Buffer } => ({
    summary: readFileSync(join(server, 'summary')),
    sig: readFileSync(join(server, 'summary.sig')),
  });
  const restoreSummary = (saved: { summary: Buffer; sig: Buffer }): void => {
    writeFileSync(join(server, 'summary'), saved.summary);
    writeFileSync(join(server, 'summary.sig'), saved.sig);
  };

  beforeAll(async () => {
    const trees = { v1: join(tmp.path, 'tree-v1'), v2: join(tmp.path, 'tree-v2') };
    writeTransferTree(trees.v1, 1, { smallFiles: 60, largeFile: false });
    writeTransferTree(trees.v2, 2, { smallFiles: 60, largeFile: false });
    release = keygen('release');
    rogue = keygen('rogue');
    server = initRepo(join(tmp.path, 'srv/signed'), 'archive');
    v1 = commitVersion(server, 1, trees.v1);
    arbor('sign', '--repo', server, 'os/main', '--keyfile', release.keyFile);
    arbor('summary', '--repo', server, '--update', '--sign', release.keyFile);
    nginx = await startNginx(join(tmp.path, 'srv'));
    template = initRepo(join(tmp.path, 'template'), 'bare-user');
    arbor(
      'remote',
      'add',
      '--repo',
      template,
      'origin',
      `${nginx.url}/signed`,
      `--sign-verify=ed25519=${release.pubFile}`,
    );
    arbor('pull', '--repo', template, 'origin', 'os/main');
    v2 = commitVersion(server, 2, trees.v2);
    arbor('sign', '--repo', server, 'os/main', '--keyfile', release.keyFile);
    arbor('static-delta', 'generate', '--repo', server, '--to', 'os/main');
    arbor('summary', '--repo', server, '--update', '--sign', release.keyFile);
  });
  afterAll(() => nginx?.stop());

  it('keygen, sign, verify and show agree on key ids; verify exits 1 for another key or no signature', () => {
    expect(arbor('keygen', '-o', join(tmp.path, 'shown'))).toMatch(
      /^wrote .*shown\.key and .*shown\.pub \(key id [0-9a-f]{16}\)$/,
    );
    expect(release.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(arbor('verify', '--repo', server, 'os/main', '--keyfile', release.pubFile)).toBe(
      `${release.keyId}  good signature`,
    );
    expect(arbor('show', '--repo', server, 'os/main')).toContain(`\nSigned:  ed25519 key ${release.keyId}\n`);
    const other = runCli(['verify', '--repo', server, 'os/main', '--keyfile', rogue.pubFile]);
    expect(other).toMatchObject({ exitCode: 1, stdout: `${release.keyId}  good signature, key not trusted\n` });
    expect(other.stderr).toMatch(new RegExp(`^error\\[E_SIGNATURE_INVALID\\]: commit ${v2} has no valid signature`));
    const unsigned = initRepo(join(tmp.path, 'unsigned'), 'bare-user');
    const commit = arbor('commit', '--repo', unsigned, '-b', 'main', '--tree', `dir=${join(tmp.path, 'tree-v1')}`);
    expectArborError(
      runCli(['verify', '--repo', unsigned, 'main', '--keyfile', release.pubFile]),
      1,
      'E_SIGNATURE_MISSING',
      `commit ${commit} is not signed`,
    );
  });

  it('a --sign-verify remote lists its refs and pulls signed commits by objects, keeping their signatures', () => {
    const repo = clientAtV1();
    expect(arbor('remote', 'refs', '--repo', repo, 'origin')).toBe(`origin:os/main ${v2}`);
    expectPullsSigned(repo, '--disable-static-deltas');
    expect(arbor('verify', '--repo', repo, 'origin:os/main', '--keyfile', release.pubFile)).toBe(
      `${release.keyId}  good signature`,
    );
    expect(arbor('show', '--repo', repo, 'origin:os/main')).toContain(`Signed:  ed25519 key ${release.keyId}`);
  });

  it('a --sign-verify remote pulls a signed commit by delta', () => {
    const repo = clientAtV1();
    expectPullsSigned(repo);
    expect(arbor('verify', '--repo', repo, 'origin:os/main', '--keyfile', release.pubFile)).toBe(
      `${release.keyId}  good signature`,
    );
  });

  it('refuses with exit 1 a summary.sig made by another key, then pulls once the server re-signs it', () => {
    const saved = summaryFiles();
    arbor('summary', '--repo', server, '--update', '--sign', rogue.keyFile);
    const repo = clientAtV1();
    try {
      expectArborError(
        runCli(pullArgs(repo)),
        1,
        'E_SIGNATURE_INVALID',
        "the summary of remote 'origin'",
        `${rogue.keyId} (unknown key)`,
      );
      expectArborError(runCli(['remote', 'refs', '--repo', repo, 'origin']), 1, 'E_SIGNATURE_INVALID');
      expectUntouched(repo);
    } finally {
      restoreSummary(saved);
    }
    expectPullsSigned(repo);
  });

  it('refuses with exit 1 a tampered summary (its signature no longer matches)', () => {
    const saved = summaryFiles();
    flipByte(join(server, 'summary'), -1);
    const repo = clientAtV1();
    try {
      expectArborError(
        runCli(pullArgs(repo)),
        1,
        'E_SIGNATURE_INVALID',
        "the summary of remote 'origin'",
        `${release.keyId} (does not verify)`,
      );
      expectUntouched(repo);
    } finally {
      restoreSummary(saved);
    }
    expectPullsSigned(repo);
  });

  it('refuses with exit 1 an unsigned summary (no summary.sig), then pulls once it is signed', () => {
    const saved = summaryFiles();
    rmSync(join(server, 'summary.sig'));
    const repo = clientAtV1();
    try {
      expectArborError(
        runCli(pullArgs(repo)),
        1,
        'E_SIGNATURE_MISSING',
        "the summary of remote 'origin' is not signed",
      );
      expectUntouched(repo);
    } finally {
      restoreSummary(saved);
    }
    expectPullsSigned(repo);
  });

  it.each([
    ['objects', ['--disable-static-deltas']],
    ['a delta', []],
  ])('refuses with exit 1 a commit signed only by an unknown key (by %s), storing nothing of it', (_how, flags) => {
    const meta = join(server, servedObjectPath(v2, 'commitmeta'));
    const saved = readFileSync(meta);
    rmSync(meta);
    arbor('sign', '--repo', server, v2, '--keyfile', rogue.keyFile);
    const repo = clientAtV1();
    try {
      expectArborError(
        runCli(pullArgs(repo, ...flags)),
        1,
        'E_SIGNATURE_INVALID',
        `commit ${v2}`,
        `${rogue.keyId} (unknown key)`,
      );
      expectUntouched(repo);
    } finally {
      writeFileSync(meta, saved);
    }
    expectPullsSigned(repo, ...flags);
  });
});
