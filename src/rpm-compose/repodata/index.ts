// Package repositories as compose reads them: yum/dnf metadata (repomd.xml, primary.xml,
// filelists.xml) or a plain directory of .rpm files, both as RepoPackage records.
import { stat } from 'node:fs/promises';
import { errnoCode, ioError } from '../../common/errors.js';
import { streamPrimary } from './primary.js';
import type { RepoPackage } from './records.js';
import { readRepomd, repomdPath } from './repomd.js';
import { type RpmDirectoryOptions, streamRpmDirectory } from './rpm-directory.js';

export { streamFilelists } from './primary.js';
export { type RepoDependency, type RepoPackage } from './records.js';
export { readRepomd } from './repomd.js';

/**
 * Streams the packages of a repository directory: its yum metadata when `repodata/repomd.xml`
 * exists, else the headers of its .rpm files. Returns which it read and how many packages.
 */
export async function streamRepository(
  dir: string,
  onPackage: (pkg: RepoPackage) => void | Promise<void>,
  options: RpmDirectoryOptions = {},
): Promise<{ kind: 'repodata' | 'rpm-directory'; packages: number }> {
  try {
    await stat(repomdPath(dir));
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT' && errnoCode(error) !== 'ENOTDIR') throw ioError('read', repomdPath(dir), error);
    return { kind: 'rpm-directory', packages: await streamRpmDirectory(dir, onPackage, options) };
  }
  return { kind: 'repodata', packages: await streamPrimary(dir, await readRepomd(dir), onPackage) };
}
