// Entry point: parse the command line, run one command, exit with its status.
import { readFileSync } from 'node:fs';
import { Builtins, Cli } from 'clipanion';
import { Exit, errnoCode } from '../common/errors.js';
import type { CommandClass } from 'clipanion';

// Each command's module is loaded only when that command runs: loading every module (SQLite, codecs,
// the compose stack...) costs more than `arbor status` or `arbor rollback` themselves.
type Loader = () => Promise<CommandClass[]>;
/** The commands of each first word of a command path; help and unknown words load them all. */
const BY_FIRST_WORD: Record<string, Loader> = {
  init: async () => [(await import('./commands/init.js')).InitCommand],
  commit: async () => [(await import('./commands/commit.js')).CommitCommand],
  checkout: async () => [(await import('./commands/checkout.js')).CheckoutCommand],
  log: async () => [(await import('./commands/log.js')).LogCommand],
  show: async () => [(await import('./commands/show.js')).ShowCommand],
  ls: async () => [(await import('./commands/ls.js')).LsCommand],
  cat: async () => [(await import('./commands/cat.js')).CatCommand],
  diff: async () => [(await import('./commands/diff.js')).DiffCommand],
  refs: async () => [(await import('./commands/refs.js')).RefsCommand],
  'rev-parse': async () => [(await import('./commands/rev-parse.js')).RevParseCommand],
  reset: async () => [(await import('./commands/reset.js')).ResetCommand],
  fsck: async () => [(await import('./commands/fsck.js')).FsckCommand],
  prune: async () => [(await import('./commands/prune.js')).PruneCommand],
  admin: async () => {
    const m = await Promise.all([
      import('./commands/admin-init-fs.js'),
      import('./commands/admin-os-init.js'),
      import('./commands/admin-deploy.js'),
      import('./commands/admin-undeploy.js'),
      import('./commands/admin-pin.js'),
      import('./commands/admin-config-diff.js'),
      import('./commands/admin-finalize-staged.js'),
      import('./commands/admin-firstboot.js'),
    ]);
    return [
      m[0].AdminInitFsCommand,
      m[1].AdminOsInitCommand,
      m[2].AdminDeployCommand,
      m[3].AdminUndeployCommand,
      m[4].AdminPinCommand,
      m[5].AdminConfigDiffCommand,
      m[6].AdminFinalizeStagedCommand,
      m[7].AdminFirstbootCommand,
    ];
  },
  deploy: async () => [(await import('./commands/admin-deploy.js')).AdminDeployCommand],
  status: async () => [(await import('./commands/status.js')).StatusCommand],
  upgrade: async () => [(await import('./commands/upgrade.js')).UpgradeCommand],
  rebase: async () => [(await import('./commands/rebase.js')).RebaseCommand],
  rollback: async () => [(await import('./commands/rollback.js')).RollbackCommand],
  cleanup: async () => [(await import('./commands/cleanup.js')).CleanupCommand],
  kargs: async () => [(await import('./commands/kargs.js')).KargsCommand],
  rpm: async () => {
    const m = await Promise.all([
      import('./commands/rpm-info.js'),
      import('./commands/rpm-ls.js'),
      import('./commands/rpm-check.js'),
      import('./commands/rpm-import.js'),
    ]);
    return [m[0].RpmInfoCommand, m[1].RpmLsCommand, m[2].RpmCheckCommand, m[3].RpmImportCommand];
  },
  db: async () => {
    const m = await import('./commands/db.js');
    return [m.DbListCommand, m.DbDiffCommand];
  },
  compose: async () => [(await import('./commands/compose-tree.js')).ComposeTreeCommand],
  'refresh-md': async () => [(await import('./commands/refresh-md.js')).RefreshMdCommand],
  fleetlock: async () => {
    const m = await import('./commands/fleetlock.js');
    return [m.FleetLockServeCommand, m.FleetLockStatusCommand, m.FleetLockReleaseCommand];
  },
  release: async () => {
    const m = await import('./commands/release.js');
    return [
      m.ReleaseAddCommand,
      m.ReleaseListCommand,
      m.ReleasePauseCommand,
      m.ReleaseResumeCommand,
      m.ReleaseDeadendCommand,
    ];
  },
  agent: async () => {
    const m = await import('./commands/agent.js');
    return [m.AgentRunCommand, m.AgentRunOnceCommand, m.AgentStatusCommand];
  },
  summary: async () => [(await import('./commands/summary.js')).SummaryCommand],
  keygen: async () => [(await import('./commands/sign.js')).KeygenCommand],
  sign: async () => [(await import('./commands/sign.js')).SignCommand],
  verify: async () => [(await import('./commands/sign.js')).VerifyCommand],
  pull: async () => [(await import('./commands/pull.js')).PullCommand],
  'pull-local': async () => [(await import('./commands/pull.js')).PullLocalCommand],
  remote: async () => {
    const m = await import('./commands/remote.js');
    return [
      m.RemoteAddCommand,
      m.RemoteListCommand,
      m.RemoteShowCommand,
      m.RemoteDeleteCommand,
      m.RemoteRefsCommand,
      m.RemoteResetFreshnessCommand,
    ];
  },
  'static-delta': async () => {
    const m = await import('./commands/static-delta.js');
    return [
      m.StaticDeltaGenerateCommand,
      m.StaticDeltaListCommand,
      m.StaticDeltaShowCommand,
      m.StaticDeltaApplyCommand,
      m.StaticDeltaDeleteCommand,
    ];
  },
  image: async () => [(await import('./commands/image-build.js')).ImageBuildCommand],
  // `install PKG...` layers packages; `install to-disk|to-filesystem` installs the OS: one first word.
  install: async () => {
    const m = await Promise.all([
      import('./commands/install.js'),
      import('./commands/install-to-disk.js'),
      import('./commands/install-to-filesystem.js'),
    ]);
    return [m[0].InstallCommand, m[1].InstallToDiskCommand, m[2].InstallToFilesystemCommand];
  },
  uninstall: async () => [(await import('./commands/uninstall.js')).UninstallCommand],
  override: async () => {
    const m = await Promise.all([
      import('./commands/override-remove.js'),
      import('./commands/override-replace.js'),
      import('./commands/override-reset.js'),
    ]);
    return [m[0].OverrideRemoveCommand, m[1].OverrideReplaceCommand, m[2].OverrideResetCommand];
  },
};

/** The version package.json gives (one place to bump): two levels up from src/cli/ and dist/cli/, three from dist/src/cli/. */
function packageVersion(): string {
  for (const candidate of ['../../package.json', '../../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { version: string }).version;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
  }
  throw new Error(`internal error: no package.json above ${import.meta.url}`);
}

/** Parses the command line, loads the commands its first word names, and runs the one it selects. */
async function main(): Promise<void> {
  const cli = new Cli({
    binaryLabel: 'arbor',
    binaryName: 'arbor',
    binaryVersion: packageVersion(),
    enableColors: false,
  });
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  const first = process.argv[2];
  const chosen = first !== undefined && Object.hasOwn(BY_FIRST_WORD, first) ? BY_FIRST_WORD[first] : undefined;
  const loaders = first === '--version' || first === '-v' ? [] : chosen ? [chosen] : Object.values(BY_FIRST_WORD);
  // `deploy` and `admin deploy` are one class: register each class once.
  for (const command of new Set((await Promise.all(loaders.map((load) => load()))).flat())) cli.register(command);

  // A reader that stops early (`arbor ls --json | head`) closes the pipe: that ends the command quietly, as in other tools.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });

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
}

// No top-level await: rolldown bundles this file as CommonJS, which Node 20 loads faster (rolldown.config.ts).
void main();
