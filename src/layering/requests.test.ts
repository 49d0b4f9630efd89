import { describe, expect, it } from 'vitest';
import {
  NO_REQUESTS,
  addPackages,
  addRemovals,
  addReplacements,
  formatLayerRequests,
  parseLayerRequests,
  removePackages,
  resetOverrides,
} from './requests.js';

const SHA = 'a'.repeat(64);
const SHA2 = 'b'.repeat(64);
const groups = (entries: Record<string, Record<string, string>>): Map<string, Map<string, string>> =>
  new Map(Object.entries(entries).map(([g, keys]) => [g, new Map(Object.entries(keys))]));

describe('layering requests in the origin', () => {
  it("reads rpm-ostree's groups and keys, lists ended by ';'", () => {
    const extra = groups({
      packages: { requested: 'htop;strace >= 6;', 'requested-local': `${SHA}:agent-1.0-1.noarch;` },
      overrides: { remove: 'vim-minimal;', 'replace-local': `${SHA2}:libcore-2.0-2.noarch;` },
    });
    expect(parseLayerRequests(extra, 'x.origin')).toEqual({
      packages: ['htop', 'strace >= 6'],
      localPackages: [{ sha256: SHA, nevra: 'agent-1.0-1.noarch' }],
      removals: ['vim-minimal'],
      replacements: [{ sha256: SHA2, nevra: 'libcore-2.0-2.noarch' }],
    });
  });

  it('writes them back equal, keeps other groups and keys, and drops emptied ones', () => {
    const extra = groups({ packages: { requested: 'htop;', other: 'kept' }, custom: { k: 'v' } });
    const requests = parseLayerRequests(extra, 'x');
    const written = formatLayerRequests(extra, requests);
    expect(written).toEqual(extra);
    expect(formatLayerRequests(extra, NO_REQUESTS)).toEqual(
      groups({ packages: { other: 'kept' }, custom: { k: 'v' } }),
    );
    expect(formatLayerRequests(new Map(), NO_REQUESTS)).toEqual(new Map());
  });

  it.each([
    ['packages', 'requested', ';bad\u0001;'],
    ['packages', 'requested-local', 'nothex:agent-1-1.noarch;'],
    ['overrides', 'replace-local', `${SHA}:with space;`],
    ['overrides', 'remove', '-leading-dash;'],
  ])('refuses a malformed [%s] %s with E_ORIGIN_INVALID (exit 3), naming the entry', (group, key, value) => {
    const run = (): unknown => parseLayerRequests(groups({ [group]: { [key]: value } }), 'x.origin');
    expect(run).toThrow(expect.objectContaining({ code: 'E_ORIGIN_INVALID', exit: 3 }));
    expect(run).toThrow(`entry 1 of [${group}] ${key}`);
  });
});

describe('editing the requests', () => {
  const local = { sha256: SHA, nevra: 'agent-1.0-1.noarch' };

  it('adds names and files once, and refuses what is already layered', () => {
    const r = addPackages(NO_REQUESTS, ['htop', 'htop'], [local]);
    expect(r).toEqual({ ...NO_REQUESTS, packages: ['htop'], localPackages: [local] });
    expect(() => addPackages(r, ['htop'], [])).toThrow(expect.objectContaining({ code: 'E_LAYER_REQUESTED' }));
    expect(() => addPackages(r, ['agent'], [])).toThrow(expect.objectContaining({ code: 'E_LAYER_REQUESTED' }));
    expect(() => addPackages(r, [], [local])).toThrow(expect.objectContaining({ code: 'E_LAYER_REQUESTED' }));
  });

  it.each([['foo;bar'], ['-x'], [' htop'], ['a\u0001']])('refuses %j as a name with E_USAGE (exit 2)', (name) => {
    expect(() => addPackages(NO_REQUESTS, [name], [])).toThrow(expect.objectContaining({ code: 'E_USAGE', exit: 2 }));
    expect(() => addRemovals(NO_REQUESTS, [name])).toThrow(expect.objectContaining({ code: 'E_USAGE', exit: 2 }));
  });

  it('uninstalls by name or NEVRA, and refuses what is not layered', () => {
    const r = addPackages(NO_REQUESTS, ['htop'], [local]);
    expect(removePackages(r, ['agent', 'htop'])).toEqual(NO_REQUESTS);
    expect(removePackages(r, ['agent-1.0-1.noarch']).localPackages).toEqual([]);
    expect(() => removePackages(r, ['vim'])).toThrow(expect.objectContaining({ code: 'E_LAYER_NOT_REQUESTED' }));
  });

  it('replaces a base package with one file per name, the latest winning, and resets overrides', () => {
    const newer = { sha256: SHA2, nevra: 'libcore-2.0-3.noarch' };
    let r = addReplacements(NO_REQUESTS, [{ sha256: SHA, nevra: 'libcore-2.0-2.noarch' }]);
    r = addReplacements(r, [newer]);
    expect(r.replacements).toEqual([newer]);
    expect(() => addReplacements(r, [newer, newer])).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    r = addRemovals(r, ['vim-minimal']);
    expect(() => addRemovals(r, ['vim-minimal'])).toThrow(expect.objectContaining({ code: 'E_LAYER_REQUESTED' }));
    expect(resetOverrides(r, ['libcore'], false)).toEqual({ ...NO_REQUESTS, removals: ['vim-minimal'] });
    expect(resetOverrides(r, [], true)).toEqual(NO_REQUESTS);
    expect(() => resetOverrides(r, ['bash'], false)).toThrow(
      expect.objectContaining({ code: 'E_LAYER_NOT_REQUESTED' }),
    );
  });
});
