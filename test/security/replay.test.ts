// A server (or anyone between it and the client) replaying old, validly signed files cannot move a
// client back: an older summary is refused (E_SUMMARY_REPLAYED), an expired one too
// (E_SUMMARY_EXPIRED), and a newer summary naming an older commit does not move the ref without
// --allow-downgrade (E_PULL_DOWNGRADE). A signed summary can also rotate the remote's keys.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSummary, encodeSummary } from '../../src/repo/objects/index.js';
import { loadSigningKey, signSummary } from '../../src/repo/sign.js';
import { arbor, sh } from '../support/cli.js';
import {
  type HostileServer,
  type MeasuredResult,
  runCliMeasured,
  sendBytes,
  servedBytes,
  startHostileServer,
} from '../support/hostile.js';
import { initRepo } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import { commitVersion, writeTransferTree } from '../support/transfer.js';

interface Key {
  keyFile: string;
  pubFile: string;
  keyId: string;
}

interface SignedSummary {
  summary: Buffer;
  sig: Buffer;
}

describe('replayed, expired and rolled-back summaries', () => {
  const tmp = useTempDir('arbor-security-replay-');
  let hostile: HostileServer;
  let server: string;
  let template: string;
  let trees: { v1: string; v2: string };
  let v1: string;
  let v2: string;
  let release: Key;
  let next: Key;
  let rogue: Key;
  /** The signed summaries naming v1 (the template accepted it) and v2. */
  let atV1: SignedSummary;
  let atV2: SignedSummary;
  let clients = 0;

  const run = (...args: string[]): Promise<MeasuredResult> => runCliMeasured(args, { timeoutMs: 60_000 });
  const keygen = (name: string): Key => JSON.parse(arbor('keygen', '--json', '-o', join(tmp.path, name))) as Key;
  const served = (): SignedSummary => ({
    summary: servedBytes(server, 'summary'),
    sig: servedBytes(server, 'summary.sig'),
  });
  /** Serves `files` instead of the server's summary and summary.sig. */
  const serve = (files: SignedSummary | null): void =>
    hostile.setOverride(
      files &&
        ((_req, res, path) => {
          if (path === '/signed/summary') sendBytes(res, files.summary);
          else if (path === '/signed/summary.sig') sendBytes(res, files.sig);
          else return false;
          return true;
        }),
    );
  const clientAtV1 = (): string => {
    const repo = join(tmp.path, `client-${clients++}`);
    sh(`cp -a '${template}' '${repo}'`);
    return repo;
  };
  const pull = (repo: string, ...flags: string[]): Promise<MeasuredResult> =>
    run('pull', '--repo', repo, 'origin', ...flags, 'os/main');
  const refOf = async (repo: string): Promise<string | undefined> => {
    const rows = JSON.parse((await run('refs', '--json', '--repo', repo)).stdout) as {
      name: string;
      checksum: string;
    }[];
    return rows.find((r) => r.name === 'origin:os/main')?.checksum;
  };
  const trustedKeys = async (repo: string): Promise<string[]> =>
    (JSON.parse((await run('remote', 'show', '--json', '--repo', repo, 'origin')).stdout) as { keys: string[] }).keys;
  const expectError = (r: MeasuredResult, code: string, ...mentions: string[]): void => {
    expect(r.signal).toBeNull();
    expect({ exitCode: r.exitCode, stdout: r.stdout }, r.stderr).toEqual({ exitCode: 1, stdout: '' });
    expect(r.stderr).toMatch(new RegExp(`^error\\[${code}\\]: `));
    for (const text of mentions) expect(r.stderr).toContain(text);
  };
  const expectPulled = (r: MeasuredResult, commit: string): void => {
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`origin:os/main: ${commit}`);
  };
  /** A client that pulled v2 (the server's summary says so while this runs). */
  const clientAtV2 = async (): Promise<string> => {
    const repo = clientAtV1();
    serve(atV2);
    try {
      expectPulled(await pull(repo), v2);
    } finally {
      serve(null);
    }
    return repo;
  };

  beforeAll(async () => {
    trees = { v1: join(tmp.path, 'tree-v1'), v2: join(tmp.path, 'tree-v2') };
    writeTransferTree(trees.v1, 1, { smallFiles: 30, largeFile: false });
    writeTransferTree(trees.v2, 2, { smallFiles: 30, largeFile: false });
    release = keygen('release');
    next = keygen('next');
    rogue = keygen('rogue');
    server = initRepo(join(tmp.path, 'srv/signed'), 'archive');
    v1 = commitVersion(server, 1, trees.v1);
    arbor('sign', '--repo', server, 'os/main', '--keyfile', release.keyFile);
    arbor('summary', '--repo', server, '--update', '--sign', release.keyFile);
    atV1 = served();
    hostile = await startHostileServer(join(tmp.path, 'srv'));
    template = initRepo(join(tmp.path, 'template'), 'bare-user');
    arbor(
      'remote',
      'add',
      '--repo',
      template,
      'origin',
      `${hostile.url}signed`,
      `--sign-verify=ed25519=${release.pubFile}`,
    );
    expectPulled(await pull(template), v1);
    v2 = commitVersion(server, 2, trees.v2);
    arbor('sign', '--repo', server, 'os/main', '--keyfile', release.keyFile);
    arbor('summary', '--repo', server, '--update', '--sign', release.keyFile);
    atV2 = served();
  });
  afterAll(() => hostile?.stop());

  it('refuses an older validly signed summary (pull and remote refs), and takes the same one again', async () => {
    const repo = await clientAtV2();
    serve(atV1);
    try {
      expectError(
        await pull(repo),
        'E_SUMMARY_REPLAYED',
        "the summary of remote 'origin' was written at",
        'arbor remote reset-freshness origin',
      );
      expectError(await run('remote', 'refs', '--repo', repo, 'origin'), 'E_SUMMARY_REPLAYED');
      expect(await refOf(repo)).toBe(v2);
    } finally {
      serve(null);
    }
    serve(atV2);
    try {
      const again = await pull(repo);
      expectPulled(again, v2);
      expect(again.stdout).toContain('up to date');
    } finally {
      serve(null);
    }
  });

  it('after reset-freshness accepts the older summary once, but still will not move the ref back', async () => {
    const repo = await clientAtV2();
    const reset = await run('remote', 'reset-freshness', '--repo', repo, 'origin');
    expect(reset.exitCode, reset.stderr).toBe(0);
    serve(atV1);
    try {
      expectError(await pull(repo), 'E_PULL_DOWNGRADE', `older than commit ${v2}`, '--allow-downgrade');
      expect(await refOf(repo)).toBe(v2);
    } finally {
      serve(null);
    }
  });

  it('refuses an expired summary, and accepts one within its --expires', async () => {
    const repo = clientAtV1();
    // The server's own summary, re-dated and expired an hour ago, signed by the trusted key.
    const base = decodeSummary(atV2.summary, 'summary');
    const now = Math.floor(Date.now() / 1000);
    const expired = encodeSummary({
      ...base,
      timestamp: base.timestamp + 5,
      metadata: new Map([...base.metadata, ['arbor.expires', { type: 'int', value: now - 3600 }]]),
    });
    serve({ summary: expired, sig: signSummary(expired, loadSigningKey(release.keyFile)) });
    try {
      expectError(await pull(repo), 'E_SUMMARY_EXPIRED', "the summary of remote 'origin' expired at");
      expect(await refOf(repo)).toBe(v1);
    } finally {
      serve(null);
    }
    arbor('summary', '--repo', server, '--update', '--sign', release.keyFile, '--expires', '7d');
    expect(arbor('summary', '--repo', server, '--view')).toMatch(/\nexpires: \d{4}-/);
    expectPulled(await pull(repo), v2);
  });

  it('refuses a newer summary that rolls a ref back to an older commit unless --allow-downgrade', async () => {
    const repo = await clientAtV2();
    arbor('refs', '--repo', server, '--delete', 'os/main');
    arbor('refs', '--repo', server, '--create', 'os/main', v1);
    arbor('summary', '--repo', server, '--update', '--sign', release.keyFile);
    try {
      expectError(
        await pull(repo),
        'E_PULL_DOWNGRADE',
        `remote 'origin' offers 'os/main' at commit ${v1}`,
        `older than commit ${v2}`,
      );
      expect(await refOf(repo)).toBe(v2);
      const allowed = await pull(repo, '--allow-downgrade', '--json');
      expect(allowed.exitCode, allowed.stderr).toBe(0);
      expect((JSON.parse(allowed.stdout) as { refs: { commit: string; downgrade: boolean }[] }).refs).toMatchObject([
        { commit: v1, downgrade: true },
      ]);
      expect(await refOf(repo)).toBe(v1);
      const other = await clientAtV2();
      const text = await pull(other, '--allow-downgrade');
      expect(text.exitCode, text.stderr).toBe(0);
      expect(text.stdout).toContain(`downgrade from ${v2.slice(0, 12)} to an older commit (--allow-downgrade)`);
    } finally {
      arbor('refs', '--repo', server, '--delete', 'os/main');
      arbor('refs', '--repo', server, '--create', 'os/main', v2);
      arbor('summary', '--repo', server, '--update', '--sign', release.keyFile);
    }
  });

  it('rotates keys: a signed summary announces the next key, then the server signs with it alone', async () => {
    const early = clientAtV1();
    const late = clientAtV1();
    arbor('summary', '--repo', server, '--update', '--sign', release.keyFile, '--next-key', next.pubFile);
    const refs = await run('remote', 'refs', '--repo', early, 'origin');
    expect(refs.exitCode, refs.stderr).toBe(0);
    expect(await trustedKeys(early)).toEqual([release.keyId, next.keyId]);

    const v3 = arbor(
      'commit',
      '--repo',
      server,
      '-b',
      'os/main',
      '-s',
      'v3',
      '--add-metadata',
      'version=3.0',
      '--timestamp',
      String(1_700_000_000 + 3 * 86_400),
      '--tree',
      `dir=${trees.v1}`,
    );
    arbor('sign', '--repo', server, 'os/main', '--keyfile', next.keyFile);
    arbor('summary', '--repo', server, '--update', '--sign', next.keyFile, '--retire-key', release.pubFile);
    const rotated = await pull(early);
    expectPulled(rotated, v3);
    expect(rotated.stdout).toContain(`signed by ${next.keyId}`);
    expect(await trustedKeys(early)).toEqual([next.keyId]);
    // A client that never saw the announcement still trusts only the old key.
    expectError(await pull(late), 'E_SIGNATURE_INVALID', `${next.keyId} (unknown key)`);
    expect(await refOf(late)).toBe(v1);

    arbor('summary', '--repo', server, '--update', '--sign', rogue.keyFile, '--next-key', rogue.pubFile);
    expectError(await pull(early), 'E_SIGNATURE_INVALID', `${rogue.keyId} (unknown key)`);
    expect(await trustedKeys(early)).toEqual([next.keyId]);
    expect(await refOf(early)).toBe(v3);
  });
});
