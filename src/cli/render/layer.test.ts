import { describe, expect, it } from 'vitest';
import type { Checksum } from '../../repo/index.js';
import { renderLayer } from './layer.js';

const none = {
  base: 'b'.repeat(64) as Checksum,
  added: [],
  removed: [],
  replaced: [],
  downloadBytes: 0,
  scripts: [],
  droppedVarFiles: [],
  notes: [],
  skippedRepos: [],
};

describe('renderLayer', () => {
  it('lists each change with its reason and the download size', () => {
    const out = renderLayer(
      {
        ...none,
        added: [
          {
            nevra: 'htop-3-1.noarch',
            name: 'htop',
            repo: '/srv/repo',
            path: '/srv/repo/h.rpm',
            why: 'requested',
            packageBytes: 10,
            installedBytes: 20,
          },
        ],
        removed: [{ nevra: 'vim-9-1.noarch', why: 'override remove' }],
        replaced: [{ from: 'libcore-2-1.noarch', to: 'libcore-2-2.noarch' }],
        downloadBytes: 10,
        scripts: ['htop-3-1.noarch %post'],
      },
      true,
    );
    expect(out.stdout).toBe(
      'would change:\n  add htop-3-1.noarch (requested; from /srv/repo)\n  remove vim-9-1.noarch (override remove)\n' +
        '  replace libcore-2-1.noarch with libcore-2-2.noarch\ndownload: 10 bytes\nran htop-3-1.noarch %post\n',
    );
    expect(out.stderr).toBe('');
  });
  it('says when nothing is layered any more, and warns of skipped repositories, replacements and dropped /var files on stderr', () => {
    const out = renderLayer(
      {
        ...none,
        droppedVarFiles: ['/var/lib/x/data'],
        notes: ['replacement a-1-2.noarch is inactive: the base has it'],
        skippedRepos: [{ id: 'extras', code: 'E_YUM_REPO_UNREACHABLE', message: "repository 'extras': down" }],
      },
      false,
    );
    expect(out.stdout).toBe('no package changes: the deployment is the base commit\n');
    expect(out.stderr).toBe(
      "warning: repository 'extras' skipped (skip_if_unavailable=1): error[E_YUM_REPO_UNREACHABLE]: repository 'extras': down\n" +
        'note: replacement a-1-2.noarch is inactive: the base has it\n' +
        'warning: /var/lib/x/data: a file under /var was dropped (/var belongs to the machine)\n',
    );
  });
});
