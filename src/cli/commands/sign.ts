// `arbor keygen`, `arbor sign` and `arbor verify`: ed25519 signatures on commits.
import { Command, Option } from 'clipanion';
import { ArborError } from '../../common/errors.js';
import {
  type Checksum,
  type Repo,
  checkCommitSignatures,
  generateKeyPair,
  keyId,
  loadPublicKeys,
  loadSigningKey,
  resolveRev,
  signCommitMeta,
  signatureEntries,
} from '../../repo/index.js';
import { ArborCommand, RepoCommand } from '../repo-command.js';

export class KeygenCommand extends ArborCommand {
  static override paths = [['keygen']];
  static override usage = Command.Usage({
    description: 'Create an ed25519 key pair for signing commits and summaries',
    details:
      'Writes PREFIX.key (the private key, PEM, mode 0600: keep it on the compose server) and PREFIX.pub (one line of base64: give it to clients, `arbor remote add --sign-verify=ed25519=PREFIX.pub`).',
    examples: [['Create release.key and release.pub', '$0 keygen --output release']],
  });
  output = Option.String('--output,-o', { required: true, description: 'Path prefix of the two files' });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  protected async run(): Promise<number> {
    const result = generateKeyPair(this.output);
    if (this.json) this.printJson(result);
    else this.print(`wrote ${result.keyFile} and ${result.pubFile} (key id ${result.keyId})`);
    return 0;
  }
}

export class SignCommand extends RepoCommand {
  static override paths = [['sign']];
  static override usage = Command.Usage({
    description: 'Sign a commit with an ed25519 key',
    details:
      "The signature goes into the commit's detached metadata (the commit itself, and so its id, is unchanged). A commit can carry signatures of several keys; signing again with the same key replaces its signature. Run `arbor summary --update` afterwards on a served repository.",
    examples: [['Sign the head of a branch', '$0 sign --repo repo os/main --keyfile release.key']],
  });
  rev = Option.String({ required: true, name: 'REV' });
  keyfiles = Option.Array('--keyfile', { required: true, description: 'Private key file (repeatable)' });
  protected async runWith(repo: Repo): Promise<number> {
    const checksum = resolveRev(repo, this.rev);
    repo.readCommit(checksum);
    let meta = repo.readCommitMeta(checksum);
    for (const file of this.keyfiles) {
      const key = loadSigningKey(file);
      meta = signCommitMeta(meta, checksum, key);
      this.print(`signed ${checksum} with key ${keyId(key.publicKey)}`);
    }
    repo.writeCommitMeta(checksum, meta);
    return 0;
  }
}

export class VerifyCommand extends RepoCommand {
  static override paths = [['verify']];
  static override usage = Command.Usage({
    description: "Check a commit's signatures against trusted public keys",
    details:
      'Exits 0 when at least one signature verifies with one of the given keys; otherwise 1 (E_SIGNATURE_INVALID, or E_SIGNATURE_MISSING when there is none). Every signature is listed with its key id and result.',
    examples: [['Verify a branch head', '$0 verify --repo repo os/main --keyfile release.pub']],
  });
  rev = Option.String({ required: true, name: 'REV' });
  keyfiles = Option.Array('--keyfile', {
    required: true,
    description: 'Public key file (repeatable; base64 lines or PEM)',
  });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const checksum = resolveRev(repo, this.rev);
    repo.readCommit(checksum);
    const trusted = this.keyfiles.flatMap((f) => loadPublicKeys(f));
    const checks = checkCommitSignatures(repo.readCommitMeta(checksum), checksum, trusted);
    const ok = checks.some((c) => c.valid && c.trusted);
    if (this.json) this.printJson({ commit: checksum, valid: ok, signatures: checks });
    else
      for (const c of checks)
        this.print(
          `${c.keyId}  ${c.valid ? (c.trusted ? 'good signature' : 'good signature, key not trusted') : 'BAD signature'}`,
        );
    if (ok) return 0;
    if (checks.length === 0) throw new ArborError('E_SIGNATURE_MISSING', `commit ${checksum} is not signed`);
    throw new ArborError('E_SIGNATURE_INVALID', `commit ${checksum} has no valid signature by the given keys`);
  }
}

/** Key ids of a commit's signatures, for `show`. */
export function signatureKeyIds(repo: Repo, checksum: Checksum): string[] {
  return signatureEntries(repo.readCommitMeta(checksum)).map((e) => keyId(e.subarray(0, 32)));
}
