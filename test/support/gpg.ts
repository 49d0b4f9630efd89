// OpenPGP keys made by the real gpg in a private GNUPGHOME for a test, and packages signed with
// them by the real rpmsign: what the signed-repository tests share.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, runTool } from './tool.js';

export const HAVE_GPG_SIGNING = ['rpmsign', 'gpg'].every(hasCommand);

/** Keys in `dir/gnupg`, each exported armored as `dir/NAME.asc`. */
export class TestKeys {
  readonly #fingerprints = new Map<string, string>();
  constructor(readonly dir: string) {
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
  }

  get home(): string {
    return join(this.dir, 'gnupg');
  }
  get env(): NodeJS.ProcessEnv {
    return { GNUPGHOME: this.home };
  }

  /** Makes a signing key (`ed25519`, `rsa4096`, ...) named `name`; returns its armored public key file. */
  make(name: string, algo = 'ed25519'): string {
    const uid = `Arbor ${name} <${name}@example.test>`;
    runTool('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', uid, algo, 'sign', 'never'], { env: this.env });
    const colons = runTool('gpg', ['--batch', '--with-colons', '--list-keys', uid], { env: this.env });
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(colons)?.[1];
    if (fingerprint === undefined) throw new Error(`gpg listed no fingerprint for ${uid}`);
    this.#fingerprints.set(name, fingerprint);
    writeFileSync(
      this.publicKey(name),
      runTool('gpg', ['--batch', '--export', '--armor', fingerprint], { env: this.env }),
    );
    return this.publicKey(name);
  }

  /** The armored public key file of `name`. */
  publicKey(name: string): string {
    return join(this.dir, `${name}.asc`);
  }

  fingerprint(name: string): string {
    const fingerprint = this.#fingerprints.get(name);
    if (fingerprint === undefined) throw new Error(`no key named ${name}`);
    return fingerprint;
  }

  /** The key ID rpm and Arbor print: the fingerprint's last 16 hex digits, lowercase. */
  keyId(name: string): string {
    return this.fingerprint(name).slice(-16).toLowerCase();
  }

  /** Signs package files in place with rpmsign --addsign. */
  signRpms(paths: readonly string[], signer: string): void {
    const gpg = runTool('sh', ['-c', 'command -v gpg']).trim();
    const macros = ['--define', `__gpg ${gpg}`, '--define', `_gpg_name ${this.fingerprint(signer)}`];
    runTool('rpmsign', [...macros, '--addsign', ...paths], { env: this.env });
  }

  /** Stops the gpg-agent the key generation started. */
  stop(): void {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, ...this.env } });
  }
}
