// Hostile inputs to `arbor compose tree` and `arbor rpm import`, through the built CLI: a treefile
// that includes (or names as postprocess-script) a secret file, a device, a FIFO or a huge file,
// and packages that place a path below a symlink. Each exits with its documented code, quotes
// nothing of a secret file, and reads no more than it must.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, IS_ROOT, arbor, runCli } from '../support/cli.js';
import { runCliMeasured } from '../support/hostile.js';
import { HAVE_CREATEREPO, HAVE_RPMBUILD, makeRepo } from '../support/rpmgen.js';
import { useTempDir } from '../support/temp.js';

/** Peak RSS of a CLI run that refuses its input up front, KiB: Node's baseline is ~60 MiB. */
const REFUSAL_RSS_LIMIT_KIB = 160 * 1024;
const SECRET_HASH = '$6$rounds=5000$N0tAReaLSaLT$Q0x2hZkP3m9Yf8cBqW1VtRa7uJdEs5LnGyHoKiXz';

/** Both code and exit, and that stdout stays empty, as docs/errors.md promises. */
function expectRefusal(result: CliResult, code: string, exit: number): void {
  expect(result.stderr).toMatch(new RegExp(`^error\\[${code}\\]: `));
  expect(result).toMatchObject({ exitCode: exit, signal: null, stdout: '' });
}

describe('treefile inputs', () => {
  const tmp = useTempDir('arbor-sec-compose-');
  let repo = '';
  beforeAll(() => {
    repo = join(tmp.path, 'repo');
    arbor('init', '--repo', repo, '--mode', 'bare-user');
  });
  /** Writes a treefile that includes `include` (and is otherwise complete), and composes it. */
  const composeIncluding = (name: string, include: string): CliResult =>
    runCli(['compose', 'tree', '--repo', repo, writeTreefile(tmp.path, name, include)]);

  it('does not quote a shadow(5) file it is told to include', () => {
    const shadow = join(tmp.path, 'shadow');
    writeFileSync(shadow, `root:${SECRET_HASH}:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n`, { mode: 0o600 });
    const result = composeIncluding('shadow', shadow);
    expectRefusal(result, 'E_TREEFILE_INVALID', 2);
    expect(result.stderr).toContain(`${shadow}:1:1: unknown key, not shown`);
    expect(result.stderr).not.toContain('N0tAReaLSaLT');
    expect(result.stderr).not.toContain('19000');
  });

  it.skipIf(!IS_ROOT || !existsSync('/etc/shadow'))('does not quote any field of the real /etc/shadow', () => {
    const result = composeIncluding('etc-shadow', '/etc/shadow');
    expectRefusal(result, 'E_TREEFILE_INVALID', 2);
    const fields = readFileSync('/etc/shadow', 'utf8')
      .split('\n')
      .flatMap((line) => line.split(':').slice(1));
    for (const field of fields.filter((f) => f.length > 1)) expect(result.stderr).not.toContain(field);
  });

  it('does not quote a line of an included file that is not YAML', () => {
    const file = join(tmp.path, 'not-yaml');
    writeFileSync(file, `ref: a\n]${SECRET_HASH}\n"\\q${SECRET_HASH}"\n`);
    const result = composeIncluding('not-yaml', file);
    expectRefusal(result, 'E_TREEFILE_INVALID', 2);
    expect(result.stderr).toMatch(new RegExp(`not-yaml:2:1: `));
    expect(result.stderr).not.toContain('N0tAReaLSaLT');
  });

  it.each([
    ['/dev/zero', 'a character device'],
    ['/dev/urandom', 'a character device'],
    ['/proc/self', 'a directory'],
  ])('refuses to include %s without reading it', async (path, type) => {
    const file = writeTreefile(tmp.path, 'device', path);
    const result = await runCliMeasured(['compose', 'tree', '--repo', repo, file], { timeoutMs: 60_000 });
    expectRefusal(result, 'E_TREEFILE_INVALID', 2);
    expect(result.stderr).toContain(`treefile '${path}' (included by ${file}) is not a regular file but ${type}`);
    expect(result.peakRssKiB).toBeLessThan(REFUSAL_RSS_LIMIT_KIB);
  });

  it('refuses a treefile that is itself a device', () => {
    expectRefusal(runCli(['compose', 'tree', '--repo', repo, '/dev/zero']), 'E_TREEFILE_INVALID', 2);
  });

  it('refuses to include a FIFO, without blocking on it', async () => {
    const fifo = join(tmp.path, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const result = await runCliMeasured(['compose', 'tree', '--repo', repo, writeTreefile(tmp.path, 'fifo', fifo)], {
      timeoutMs: 60_000,
    });
    expectRefusal(result, 'E_TREEFILE_INVALID', 2);
    expect(result.stderr).toContain('is not a regular file but a FIFO');
  });

  it('refuses an include larger than 1 MiB, holding no more than that in memory', async () => {
    const big = join(tmp.path, 'big.yaml');
    writeFileSync(big, '');
    truncateSync(big, 512 * 1024 * 1024); // sparse: costs no disk
    const result = await runCliMeasured(['compose', 'tree', '--repo', repo, writeTreefile(tmp.path, 'big', big)], {
      timeoutMs: 60_000,
    });
    expectRefusal(result, 'E_TREEFILE_INVALID', 2);
    expect(result.stderr).toContain(`is larger than 1048576 bytes (${512 * 1024 * 1024})`);
    expect(result.peakRssKiB).toBeLessThan(REFUSAL_RSS_LIMIT_KIB);
  });

  it('reads an include of exactly 1 MiB', () => {
    const edge = join(tmp.path, 'edge.yaml');
    const line = 'packages: [p]\n';
    writeFileSync(edge, `${line}${'#'.repeat(1024 * 1024 - line.length - 1)}\n`);
    const result = composeIncluding('edge', edge);
    // Past the treefile, to the solver: the repository directory holds no packages.
    expect(result.stderr).toMatch(/^error\[E_SOLVE_UNSATISFIABLE\]: cannot install 'p'/);
  });
});

/** A complete treefile that includes `include`; returns its path. */
function writeTreefile(dir: string, name: string, include: string): string {
  const file = join(dir, `top-${name}.yaml`);
  writeFileSync(file, `include: ${JSON.stringify(include)}\nref: sec/os\nrepos: [${dir}]\npackages: [p]\n`);
  return file;
}

describe.skipIf(!HAVE_RPMBUILD || !HAVE_CREATEREPO)('a postprocess-script that is not a regular file', () => {
  const tmp = useTempDir('arbor-sec-pp-');
  it('exits 2 with E_TREEFILE_INVALID before anything runs, and moves no ref', () => {
    const packages = join(tmp.path, 'packages');
    makeRepo(packages, [{ name: 'plain', files: { '/opt/plain': 'x\n' } }]);
    const repo = join(tmp.path, 'repo');
    arbor('init', '--repo', repo, '--mode', 'bare-user');
    const file = join(tmp.path, 'treefile.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        ref: 'sec/os',
        repos: [packages],
        packages: ['plain'],
        container: true,
        'postprocess-script': '/dev/zero',
      }),
    );
    const result = runCli(['compose', 'tree', '--repo', repo, file]);
    expectRefusal(result, 'E_TREEFILE_INVALID', 2);
    expect(result.stderr).toContain("postprocess-script '/dev/zero' is not a regular file but a character device");
    expect(runCli(['refs', '--repo', repo]).stdout).not.toContain('sec/os');
  });
});

describe.skipIf(!HAVE_RPMBUILD || !HAVE_CREATEREPO)('packages with paths below a symlink', () => {
  const tmp = useTempDir('arbor-sec-rpm-');
  const dir = (name: string): string => join(tmp.path, name);
  let evil = '';
  beforeAll(() => {
    // rpmbuild lists /opt/l/evil although the build root wrote it through the symlink, to /opt/real/evil.
    [evil] = makeRepo(dir('evil'), [
      {
        name: 'evil',
        files: { '/opt/real': { dir: true }, '/opt/l': { symlink: 'real' }, '/opt/l/evil': 'through the link\n' },
        extra: '%global _unpackaged_files_terminate_build 0',
      },
    ]) as [string];
    // The same split over two packages: each is sound alone; together they conflict.
    makeRepo(dir('split'), [
      { name: 'linker', files: { '/opt/real': { dir: true }, '/opt/l': { symlink: 'real' } } },
      { name: 'under', files: { '/opt/l/evil': 'below a link of another package\n' } },
    ]);
  });
  const newRepo = (name: string): string => {
    arbor('init', '--repo', dir(name), '--mode', 'bare-user');
    return dir(name);
  };
  const compose = (repo: string, name: string, repos: string, packages: string[]): CliResult => {
    const file = dir(`${name}.yaml`);
    writeFileSync(file, JSON.stringify({ ref: 'sec/os', repos: [dir(repos)], packages, container: true }));
    return runCli(['compose', 'tree', '--repo', repo, '--no-scripts', file]);
  };

  it('rpm import exits 2 with E_RPM_PATH, naming the path and the symlink above it', () => {
    const repo = newRepo('import');
    const result = runCli(['rpm', 'import', '--repo', repo, evil]);
    expectRefusal(result, 'E_RPM_PATH', 2);
    expect(result.stderr).toContain(
      `package '${evil}': file path '/opt/l/evil' lies below '/opt/l', which is a symlink to 'real'`,
    );
    expect(runCli(['refs', '--repo', repo]).stdout).toBe('');
  });

  it('compose exits 2 with E_RPM_PATH and moves no ref', () => {
    const repo = newRepo('compose-one');
    expectRefusal(compose(repo, 'one', 'evil', ['evil']), 'E_RPM_PATH', 2);
    expect(runCli(['refs', '--repo', repo]).stdout).toBe('');
  });

  it('compose exits 1 with E_COMPOSE_FILE_CONFLICT when another package owns the symlink', () => {
    const repo = newRepo('compose-split');
    const result = compose(repo, 'split', 'split', ['linker', 'under']);
    expectRefusal(result, 'E_COMPOSE_FILE_CONFLICT', 1);
    expect(result.stderr).toMatch(/\/opt\/l: (linker|under)-1-1\.noarch and (linker|under)-1-1\.noarch /);
    // Each package alone is sound: its import is kept (pkg/ refs), the tree's ref is not written.
    expect(runCli(['refs', '--repo', repo]).stdout).not.toContain('sec/os');
  });
});
