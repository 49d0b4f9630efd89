// Base classes for commands: error mapping to exit codes, and opening the repository.
import { Command, Option } from 'clipanion';
import { UsageError } from '../common/errors.js';
import { Repo, loadPublicKeys } from '../repo/index.js';
import { exitStatusOf, formatError } from './format-error.js';

/** Commands that do their own thing (init): errors are mapped here once. */
export abstract class ArborCommand extends Command {
  protected abstract run(): Promise<number>;
  async execute(): Promise<number> {
    try {
      return await this.run();
    } catch (error) {
      this.context.stderr.write(formatError(error));
      return exitStatusOf(error);
    }
  }
  protected print(text: string): void {
    this.context.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
  protected printJson(value: unknown): void {
    this.context.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }
}

export const DEFAULT_REPO = process.env.ARBOR_REPO ?? '/arbor/repo';

export abstract class RepoCommand extends ArborCommand {
  repoPath = Option.String('--repo', DEFAULT_REPO, {
    description: 'Path of the repository (default: $ARBOR_REPO or /arbor/repo)',
  });
  protected abstract runWith(repo: Repo): Promise<number>;
  protected async run(): Promise<number> {
    const repo = Repo.open(this.repoPath);
    try {
      return await this.runWith(repo);
    } finally {
      repo.close();
    }
  }
}

/** Parses "KEY=VALUE" (the value may contain '='). */
export function parseKeyValue(text: string, flag: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError('E_USAGE', `${flag} expects KEY=VALUE, got '${text}'`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/**
 * The keys of `--sign-verify=ed25519=PUBKEYFILE` flags (empty with --no-sign-verify); one of the two
 * must be given: unsigned pulls are a choice, not a default.
 */
export function trustedKeysOf(signVerify: readonly string[], noSignVerify: boolean): Buffer[] {
  if (signVerify.length > 0 && noSignVerify)
    throw new UsageError('E_USAGE', '--sign-verify and --no-sign-verify exclude each other');
  if (signVerify.length === 0 && !noSignVerify) {
    throw new UsageError(
      'E_USAGE',
      'say how pulls are verified: --sign-verify=ed25519=PUBKEYFILE, or --no-sign-verify',
    );
  }
  return signVerify.flatMap((spec) => {
    const file = /^ed25519=(.+)$/.exec(spec)?.[1];
    if (file === undefined) throw new UsageError('E_USAGE', `--sign-verify expects ed25519=PUBKEYFILE, got '${spec}'`);
    return loadPublicKeys(file);
  });
}
