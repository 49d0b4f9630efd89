// `arbor rpm check FILE...`: reads whole packages and checks every digest (like `rpm -K`, without signatures).
import { Command, Option } from 'clipanion';
import { type PayloadSummary, readPayload, readRpmHead } from '../../rpm-compose/index.js';
import { ArborCommand } from '../repo-command.js';

export class RpmCheckCommand extends ArborCommand {
  static override paths = [['rpm', 'check']];
  static override usage = Command.Usage({
    description:
      'Check RPM package files: header and payload digests, the payload against the file list, every file digest',
    examples: [['Check a directory of packages', '$0 rpm check repo/*.rpm']],
  });
  files = Option.Rest({ required: 1, name: 'FILE' });

  protected async run(): Promise<number> {
    const lines: string[] = [];
    for (const file of this.files) {
      const head = await readRpmHead(file);
      const summary: { value?: PayloadSummary } = {};
      for await (const entry of readPayload(head, summary)) {
        if (entry.content) for await (const _ of entry.content); // reading is what verifies
      }
      lines.push(
        `${file}: ok (${summary.value?.entries ?? 0} entries, ${summary.value?.payloadBytes ?? 0} payload bytes)`,
      );
    }
    this.print(lines.join('\n'));
    return 0;
  }
}
