// `arbor rpm check [--keys FILE,...] FILE...`: reads whole packages, checks every digest and reports
// the OpenPGP signatures (like `rpm -K`); with keys, a package that is not signed by one fails.
import { Command, Option } from 'clipanion';
import {
  type PayloadSummary,
  type RpmSignatureReport,
  assertRpmSignatureOk,
  emptyKeyring,
  readKeyring,
  readPayload,
  readRpmHead,
  readRpmSignedParts,
  verifyRpmSignature,
} from '../../rpm-compose/index.js';
import { ArborCommand } from '../repo-command.js';

const VERDICT_TEXT = { ok: 'OK', nokey: 'NOKEY', bad: 'BAD', unsupported: 'UNSUPPORTED' } as const;

/** The text report of one package: the digest line, then one line per signature. */
function formatCheck(file: string, summary: PayloadSummary | undefined, report: RpmSignatureReport): string {
  const lines = [`${file}: ok (${summary?.entries ?? 0} entries, ${summary?.payloadBytes ?? 0} payload bytes)`];
  if (report.signatures.length === 0) lines.push('  signatures: none');
  for (const s of report.signatures) {
    const what = s.keyId === undefined ? '' : ` V4 ${s.algorithm}, key ID ${s.keyId}`;
    const why = s.verdict === 'ok' || s.reason === undefined ? '' : ` (${s.reason})`;
    lines.push(`  ${s.name} signature (${s.covers})${what}: ${VERDICT_TEXT[s.verdict]}${why}`);
  }
  return lines.join('\n');
}

export class RpmCheckCommand extends ArborCommand {
  static override paths = [['rpm', 'check']];
  static override usage = Command.Usage({
    description:
      'Check RPM package files: header and payload digests, the payload against the file list, every file digest, and the OpenPGP signatures',
    details:
      'Without --keys, signatures are listed (NOKEY, as `rpm -K` says with no keys imported) and not required. With --keys, every package must be signed, and every signature must verify with one of the keys.',
    examples: [
      ['Check a directory of packages', '$0 rpm check repo/*.rpm'],
      ['Require signatures by a key', '$0 rpm check --keys RPM-GPG-KEY-fedora foo.rpm'],
    ],
  });
  keys = Option.String('--keys', { description: 'OpenPGP public key files (armored or binary), comma-separated' });
  json = Option.Boolean('--json', false, { description: 'Print a JSON array, one object per package' });
  files = Option.Rest({ required: 1, name: 'FILE' });

  protected async run(): Promise<number> {
    const keyPaths = this.keys?.split(',').filter((p) => p !== '') ?? [];
    const keyring = keyPaths.length > 0 ? await readKeyring(keyPaths) : emptyKeyring();
    const results = [];
    for (const file of this.files) {
      // Signatures first: a package is trusted before its payload is decompressed and parsed.
      const report = await verifyRpmSignature(await readRpmSignedParts(file), keyring);
      if (keyPaths.length > 0) assertRpmSignatureOk(report);
      const head = await readRpmHead(file);
      const summary: { value?: PayloadSummary } = {};
      for await (const entry of readPayload(head, summary)) {
        if (entry.content) for await (const _ of entry.content); // reading is what verifies
      }
      results.push({ file, summary: summary.value, report });
    }
    if (this.json) {
      this.printJson(
        results.map(({ file, summary, report }) => ({
          path: file,
          entries: summary?.entries ?? 0,
          payloadBytes: summary?.payloadBytes ?? 0,
          signatureRequired: keyPaths.length > 0,
          signature: report.verdict,
          signatures: report.signatures,
        })),
      );
    } else {
      this.print(results.map(({ file, summary, report }) => formatCheck(file, summary, report)).join('\n'));
    }
    return 0;
  }
}
