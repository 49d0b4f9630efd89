// repo_gpgcheck: a repository's repodata/repomd.xml.asc, a detached armored OpenPGP signature over
// the exact bytes of repomd.xml. repomd.xml carries every metadata file's checksum, so a good
// signature on it vouches for the whole metadata.
import { ArborError } from '../../common/errors.js';
import { type OpenPgpKeyring, type SignatureCheck, verifyDetachedSignature } from '../openpgp.js';

/** Checks `repomd.xml.asc` (armored text or binary packet bytes) over `repomdBytes` with the keyring. */
export async function verifyRepomdSignature(
  repomdBytes: Uint8Array,
  signature: Uint8Array | string,
  keyring: OpenPgpKeyring,
): Promise<SignatureCheck> {
  const text = typeof signature === 'string' ? signature : Buffer.from(signature).toString('latin1');
  const packet = text.includes('-----BEGIN PGP SIGNATURE-----') ? text : signature;
  return verifyDetachedSignature(packet, () => repomdBytes, keyring);
}

/**
 * Throws E_REPODATA_SIGNATURE unless `repomd.xml.asc` verifies over `repomd.xml` with a key of the
 * keyring; `signature` undefined means the repository has no `repomd.xml.asc`. `repo` names the
 * repository in the message.
 */
export async function assertRepomdSigned(
  repo: string,
  repomdBytes: Uint8Array,
  signature: Uint8Array | string | undefined,
  keyring: OpenPgpKeyring,
): Promise<void> {
  if (signature === undefined) {
    throw new ArborError('E_REPODATA_SIGNATURE', `repository '${repo}' has no repodata/repomd.xml.asc`, {
      hint: 'sign repomd.xml (`gpg --detach-sign --armor repodata/repomd.xml`), or set repo_gpgcheck=0',
    });
  }
  const check = await verifyRepomdSignature(repomdBytes, signature, keyring);
  if (check.verdict === 'ok') return;
  const by = check.info === undefined ? '' : ` by key ID ${check.info.keyId}`;
  throw new ArborError(
    'E_REPODATA_SIGNATURE',
    `repository '${repo}': repomd.xml.asc${by}: ${check.reason ?? check.verdict}`,
    {
      hint:
        check.verdict === 'nokey'
          ? "add the repository's key to gpgkey"
          : 'repomd.xml changed after it was signed: fetch the metadata again',
    },
  );
}
