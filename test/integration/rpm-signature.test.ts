// OpenPGP signatures of packages signed by the real rpmsign with keys gpg makes here (RSA 4096 and
// ed25519; header-only as rpm 4.18 signs, and with --rpmv3's header+payload signatures), checked
// by Arbor and by `rpmkeys -Kv` with the same keys imported into a private rpmdb: every verdict
// must agree. Also repomd.xml.asc, with gpgv as the reference.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The module's barrel, not its files: this is the surface compose and layering use.
import {
  assertRepomdSigned,
  readKeyring,
  readRpmSignedParts,
  verifyRepomdSignature,
  verifyRpmSignature,
} from '../../src/rpm-compose/index.js';
import { Tag } from '../../src/rpm-compose/rpm/tags.js';
import { runCli } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand, runTool, runToolBytes } from '../support/tool.js';
import { HAVE_RPMBUILD, buildRpm, layoutOf, stringOffset } from './rpm-fixtures.js';

const HAVE_TOOLS = HAVE_RPMBUILD && ['rpmsign', 'rpmkeys', 'gpg', 'gpgv', 'createrepo_c'].every(hasCommand);
const SIGNERS = ['rsa', 'ed'] as const;
type Signer = (typeof SIGNERS)[number];
const MODES = ['header-only', 'rpmv3'] as const;
type Case = 'good' | 'wrong key' | 'tampered payload' | 'tampered header' | 'unsigned';

/** One signature verdict as `rpmkeys -Kv` prints it, in Arbor's tag names. */
interface Verdict {
  name: string;
  keyId: string;
  verdict: string;
}

/** The signature lines of `rpmkeys -Kv`: `Header V4 RSA/SHA512 Signature, key ID 89db9b0a: OK`. */
function parseRpmK(text: string): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const m of text.matchAll(/^\s+(Header )?V4 (\w+)\/\w+ Signature, key ID ([0-9a-f]{8}): (\w+)/gm)) {
    const rsa = m[2] === 'RSA';
    const name = m[1] ? (rsa ? 'RSAHEADER' : 'DSAHEADER') : rsa ? 'PGP' : 'GPG';
    verdicts.push({ name, keyId: m[3]!, verdict: m[4]! });
  }
  return verdicts.sort((a, b) => a.name.localeCompare(b.name));
}

describe.skipIf(!HAVE_TOOLS)('package signatures against rpmsign and rpm -K', () => {
  const dir = useTempDir('arbor-rpmsig-');
  const gnupg = (): string => join(dir.path, 'gnupg');
  const env = (): NodeJS.ProcessEnv => ({ GNUPGHOME: gnupg() });
  const gpgPath = (): string => runTool('sh', ['-c', 'command -v gpg']).trim();
  const fingerprints = new Map<string, string>();
  const keyFile = (name: string): string => join(dir.path, `${name}.asc`);
  const rpmdb = (name: string): string => join(dir.path, `rpmdb-${name}`);
  let unsigned: string;

  beforeAll(() => {
    mkdirSync(gnupg(), { mode: 0o700 });
    for (const [name, algo] of [
      ['rsa', 'rsa4096'],
      ['ed', 'ed25519'],
      ['other', 'ed25519'],
    ] as const) {
      const uid = `Arbor ${name} <${name}@example.test>`;
      runTool('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', uid, algo, 'sign', 'never'], { env: env() });
      const colons = runTool('gpg', ['--batch', '--with-colons', '--list-keys', uid], { env: env() });
      fingerprints.set(name, /^fpr:+([0-9A-F]{40}):/m.exec(colons)![1]!);
      writeFileSync(
        keyFile(name),
        runTool('gpg', ['--batch', '--export', '--armor', fingerprints.get(name)!], { env: env() }),
      );
      writeFileSync(
        join(dir.path, `${name}.gpg`),
        runToolBytes('gpg', ['--batch', '--export', fingerprints.get(name)!], { env: env() }),
      );
      // The reference's keyring: a private rpmdb holding exactly this key.
      mkdirSync(rpmdb(name));
      runTool('rpmkeys', ['--dbpath', rpmdb(name), '--import', keyFile(name)]);
    }
    unsigned = buildRpm('basic.spec', join(dir.path, 'build'));
  });
  afterAll(() => {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, ...env() } });
  });

  /** A copy of the unsigned package signed by `signer` (rpmsign --addsign, plus --rpmv3 when asked). */
  function signed(signer: Signer, mode: (typeof MODES)[number], label: string): string {
    const path = join(dir.path, `${signer}-${mode}-${label.replaceAll(' ', '-')}.rpm`);
    copyFileSync(unsigned, path);
    const args = ['--define', `__gpg ${gpgPath()}`, '--define', `_gpg_name ${fingerprints.get(signer)}`];
    if (mode === 'rpmv3') args.push('--rpmv3');
    runTool('rpmsign', [...args, '--addsign', path], { env: env() });
    return path;
  }

  function flip(path: string, offset: number): void {
    const bytes = readFileSync(path);
    bytes[offset]! ^= 0x01;
    writeFileSync(path, bytes);
  }

  /** The package for one case, and the key the check is given. */
  function prepare(signer: Signer, mode: (typeof MODES)[number], kind: Case): { path: string; key: string } {
    if (kind === 'unsigned') return { path: unsigned, key: signer };
    const path = signed(signer, mode, kind);
    if (kind === 'tampered payload') {
      const { payloadStart } = layoutOf(readFileSync(path));
      flip(path, payloadStart + 100);
    } else if (kind === 'tampered header') {
      flip(path, stringOffset(readFileSync(path), Tag.Summary));
    }
    return { path, key: kind === 'wrong key' ? 'other' : signer };
  }

  const CASES: [Signer, (typeof MODES)[number], Case][] = SIGNERS.flatMap((signer) =>
    MODES.flatMap((mode) =>
      (['good', 'wrong key', 'tampered payload', 'tampered header', 'unsigned'] as const).map(
        (kind) => [signer, mode, kind] as [Signer, (typeof MODES)[number], Case],
      ),
    ),
  );

  it.each(CASES)('%s key, %s, %s: every signature verdict equals rpm -K', async (signer, mode, kind) => {
    const { path, key } = prepare(signer, mode, kind);
    const reference = spawnSync('rpmkeys', ['--dbpath', rpmdb(key), '-Kv', path], { encoding: 'utf8' });
    const expected = parseRpmK(reference.stdout);
    const report = await verifyRpmSignature(await readRpmSignedParts(path), await readKeyring([keyFile(key)]));
    const ours = report.signatures
      .map((s) => ({ name: s.name, keyId: s.keyId!.slice(-8), verdict: s.verdict.toUpperCase() }))
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(ours).toEqual(expected);
    // The cases are built so the reference's verdicts are the intended ones, not just equal.
    const want: Record<Case, string[]> = {
      good: ['OK'],
      'wrong key': ['NOKEY'],
      'tampered payload': mode === 'rpmv3' ? ['BAD', 'OK'] : ['OK'],
      'tampered header': ['BAD'],
      unsigned: [],
    };
    expect([...new Set(expected.map((v) => v.verdict))].sort()).toEqual(want[kind]);
    expect(expected.length).toBe(kind === 'unsigned' ? 0 : mode === 'rpmv3' ? 2 : 1);
  });

  it.each(CASES)('%s key, %s, %s: rpm check --keys passes or fails as rpm -K does', (signer, mode, kind) => {
    const { path, key } = prepare(signer, mode, kind);
    const reference = spawnSync('rpmkeys', ['--dbpath', rpmdb(key), '-K', path], { encoding: 'utf8' });
    const result = runCli(['rpm', 'check', '--json', '--keys', keyFile(key), path]);
    const keyId = fingerprints.get(signer)!.toLowerCase().slice(-16);
    if (kind === 'good') {
      expect(reference.status).toBe(0);
      expect(result).toMatchObject({ exitCode: 0, stderr: '' });
      const [report] = JSON.parse(result.stdout) as Record<string, any>[];
      expect(report).toMatchObject({ path, signatureRequired: true, signature: 'ok' });
      expect(report!.signatures.map((s: { keyId: string }) => s.keyId)).toEqual(
        mode === 'rpmv3' ? [keyId, keyId] : [keyId],
      );
      return;
    }
    expect(result.stdout).toBe('');
    if (kind === 'unsigned') {
      // rpm -K without a policy accepts an unsigned package; with --keys Arbor requires a signature.
      expect(reference.stdout).toMatch(/: digests OK$/m);
      expect(result).toMatchObject({ exitCode: 1 });
      expect(result.stderr).toMatch(/^error\[E_RPM_SIGNATURE\]: package '.*' is not signed$/m);
      return;
    }
    expect(reference.status).not.toBe(0);
    if (kind === 'tampered payload' && mode === 'header-only') {
      // The header signature is good; the payload digest it vouches for is what catches this.
      expect(result.exitCode).toBe(3);
      expect(result.stderr).toMatch(/^error\[E_RPM_(DIGEST|PAYLOAD)\]: package '/m);
      return;
    }
    expect(result.exitCode).toBe(1);
    const problem = kind === 'wrong key' ? 'key ID not among the keys' : 'BAD signature';
    expect(result.stderr).toMatch(
      new RegExp(`^error\\[E_RPM_SIGNATURE\\]: package '${path}': (RSA|DSA)?HEADER|PGP|GPG`, 'm'),
    );
    expect(result.stderr).toContain(`by key ID ${keyId}: ${problem}`);
  });

  it('refuses a SHA-1 signature as unsupported where rpm 4.18 still says OK', () => {
    const path = join(dir.path, 'sha1.rpm');
    copyFileSync(unsigned, path);
    const args = ['--define', `__gpg ${gpgPath()}`, '--define', `_gpg_name ${fingerprints.get('rsa')}`];
    runTool('rpmsign', [...args, '--define', '_gpg_digest_algo sha1', '--addsign', path], { env: env() });
    const reference = runTool('rpmkeys', ['--dbpath', rpmdb('rsa'), '-Kv', path]);
    expect(parseRpmK(reference)).toEqual([
      { name: 'RSAHEADER', keyId: fingerprints.get('rsa')!.toLowerCase().slice(-8), verdict: 'OK' },
    ]);
    expect(reference).toMatch(/Header V4 RSA\/SHA1 Signature/);
    const result = runCli(['rpm', 'check', '--keys', keyFile('rsa'), path]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(
      /^error\[E_RPM_SIGNATURE\]: package '.*sha1.rpm': RSAHEADER signature by key ID [0-9a-f]{16}: signature not supported \(RSA\/SHA1 signatures are refused as weak\)$/m,
    );
  });

  it('lists signatures as NOKEY and does not require them without --keys', () => {
    const path = signed('ed', 'rpmv3', 'no keys');
    const result = runCli(['rpm', 'check', path, unsigned]);
    expect(result).toMatchObject({ exitCode: 0, stderr: '' });
    const keyId = fingerprints.get('ed')!.toLowerCase().slice(-16);
    expect(result.stdout).toBe(
      [
        `${path}: ok (18 entries, 72976 payload bytes)`,
        `  DSAHEADER signature (header) V4 EdDSA/SHA256, key ID ${keyId}: NOKEY (key ID ${keyId} is not among the keys)`,
        `  GPG signature (header+payload) V4 EdDSA/SHA256, key ID ${keyId}: NOKEY (key ID ${keyId} is not among the keys)`,
        `${unsigned}: ok (18 entries, 72976 payload bytes)`,
        '  signatures: none',
        '',
      ].join('\n'),
    );
  });

  it('accepts several key files and refuses a file that holds no key', () => {
    const path = signed('rsa', 'header-only', 'two keys');
    expect(runCli(['rpm', 'check', '--keys', `${keyFile('other')},${keyFile('rsa')}`, path]).exitCode).toBe(0);
    const result = runCli(['rpm', 'check', '--keys', unsigned, path]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^error\[E_OPENPGP_KEY_INVALID\]: key file '.*' is not an OpenPGP key/m);
    const missing = runCli(['rpm', 'check', '--keys', join(dir.path, 'nope.asc'), path]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/^error\[E_OPENPGP_KEY_INVALID\]: key file '.*nope.asc' does not exist/m);
  });

  describe('repomd.xml.asc', () => {
    let repomd: string;
    let asc: string;
    beforeAll(() => {
      const repo = join(dir.path, 'repo');
      mkdirSync(repo);
      copyFileSync(unsigned, join(repo, 'arbor-basic.rpm'));
      runTool('createrepo_c', ['--quiet', repo]);
      repomd = join(repo, 'repodata/repomd.xml');
      runTool('gpg', ['--batch', '--detach-sign', '--armor', '-u', fingerprints.get('rsa')!, repomd], { env: env() });
      asc = `${repomd}.asc`;
    });

    /** gpgv with exactly one key's keyring: the reference for repo_gpgcheck. */
    const gpgv = (key: string, data: string): number | null =>
      spawnSync('gpgv', ['--keyring', join(dir.path, `${key}.gpg`), asc, data]).status;

    it.each<[string, string, boolean, string]>([
      ['good', 'rsa', false, 'ok'],
      ['another key', 'other', false, 'nokey'],
      ['repomd.xml changed after signing', 'rsa', true, 'bad'],
    ])('%s: verdict equals gpgv', async (_name, key, tamper, verdict) => {
      let data = repomd;
      if (tamper) {
        data = join(dir.path, 'repomd-tampered.xml');
        writeFileSync(data, readFileSync(repomd, 'utf8').replace('<revision>', '<revision>1'));
      }
      expect(gpgv(key, data) === 0).toBe(verdict === 'ok');
      const check = await verifyRepomdSignature(
        readFileSync(data),
        readFileSync(asc, 'utf8'),
        await readKeyring([keyFile(key)]),
      );
      expect(check.verdict).toBe(verdict);
      expect(check.info?.keyId).toBe(fingerprints.get('rsa')!.toLowerCase().slice(-16));
    });

    it('refuses a repository without repomd.xml.asc, or signed by another key, naming it and the key', async () => {
      const bytes = readFileSync(repomd);
      const keyId = fingerprints.get('rsa')!.toLowerCase().slice(-16);
      await expect(
        assertRepomdSigned('base', bytes, undefined, await readKeyring([keyFile('rsa')])),
      ).rejects.toMatchObject({
        code: 'E_REPODATA_SIGNATURE',
        message: "repository 'base' has no repodata/repomd.xml.asc",
      });
      await expect(
        assertRepomdSigned('base', bytes, readFileSync(asc), await readKeyring([keyFile('other')])),
      ).rejects.toMatchObject({
        code: 'E_REPODATA_SIGNATURE',
        message: `repository 'base': repomd.xml.asc by key ID ${keyId}: key ID ${keyId} is not among the keys`,
      });
      await expect(
        assertRepomdSigned('base', bytes, readFileSync(asc), await readKeyring([keyFile('rsa')])),
      ).resolves.toBeUndefined();
    });
  });
});
