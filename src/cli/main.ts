// Entry point: parse the command line, run one command, exit with its status.
import { Builtins, Cli } from 'clipanion';
import { Exit } from '../common/errors.js';
import { CatCommand } from './commands/cat.js';
import { CheckoutCommand } from './commands/checkout.js';
import { CommitCommand } from './commands/commit.js';
import { DiffCommand } from './commands/diff.js';
import { FsckCommand } from './commands/fsck.js';
import { InitCommand } from './commands/init.js';
import { LogCommand } from './commands/log.js';
import { LsCommand } from './commands/ls.js';
import { PruneCommand } from './commands/prune.js';
import { RefsCommand } from './commands/refs.js';
import { ResetCommand } from './commands/reset.js';
import { RevParseCommand } from './commands/rev-parse.js';
import { RpmCheckCommand } from './commands/rpm-check.js';
import { RpmImportCommand } from './commands/rpm-import.js';
import { RpmInfoCommand } from './commands/rpm-info.js';
import { RpmLsCommand } from './commands/rpm-ls.js';
import { ShowCommand } from './commands/show.js';
import { PullCommand, PullLocalCommand } from './commands/pull.js';
import { RemoteAddCommand, RemoteDeleteCommand, RemoteListCommand, RemoteRefsCommand, RemoteShowCommand } from './commands/remote.js';
import { KeygenCommand, SignCommand, VerifyCommand } from './commands/sign.js';
import {
  StaticDeltaApplyCommand, StaticDeltaDeleteCommand, StaticDeltaGenerateCommand, StaticDeltaListCommand, StaticDeltaShowCommand,
} from './commands/static-delta.js';
import { SummaryCommand } from './commands/summary.js';
import { DbDiffCommand, DbListCommand } from './commands/db.js';
import { ComposeTreeCommand } from './commands/compose-tree.js';
import { ADMIN_COMMANDS } from './commands/admin.js';

const cli = new Cli({ binaryLabel: 'arbor', binaryName: 'arbor', binaryVersion: '0.1.0', enableColors: false });
for (const command of [
  InitCommand, CommitCommand, CheckoutCommand, LogCommand, ShowCommand, LsCommand, CatCommand, DiffCommand,
  RefsCommand, RevParseCommand, ResetCommand, FsckCommand, PruneCommand, Builtins.HelpCommand, Builtins.VersionCommand,
]) cli.register(command);
for (const command of ADMIN_COMMANDS) cli.register(command);
for (const command of [RpmInfoCommand, RpmLsCommand, RpmCheckCommand, RpmImportCommand, DbListCommand, DbDiffCommand, ComposeTreeCommand]) cli.register(command);
for (const command of [
  SummaryCommand, KeygenCommand, SignCommand, VerifyCommand, PullCommand, PullLocalCommand,
  RemoteAddCommand, RemoteListCommand, RemoteShowCommand, RemoteDeleteCommand, RemoteRefsCommand,
  StaticDeltaGenerateCommand, StaticDeltaListCommand, StaticDeltaShowCommand, StaticDeltaApplyCommand, StaticDeltaDeleteCommand,
]) cli.register(command);

const args = process.argv.slice(2);
let command;
try {
  command = cli.process(args);
} catch (error) {
  // Alone, clipanion prints usage errors to stdout and exits 1; ours go to stderr with exit 2.
  process.stderr.write(cli.error(error as Error, { colored: false }));
  process.exit(Exit.Usage);
}
process.exitCode = await cli.run(command, Cli.defaultContext);
