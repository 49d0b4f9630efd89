// Which user the fetch helper runs as, from /etc/passwd and /etc/group texts.
import { describe, expect, it } from 'vitest';
import { resolveFetchUser } from './fetch-privsep.js';

const PASSWD =
  'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\nfetchers:x:900:\n';

describe('resolveFetchUser', () => {
  it.each([
    ['nobody and its login group', { user: 'nobody' }, { uid: 65534, gid: 65534 }],
    ['a named group', { user: 'daemon', group: 'fetchers' }, { uid: 1, gid: 900 }],
    ['numbers not in the files', { user: '4000', group: '4001' }, { uid: 4000, gid: 4001 }],
    ['a listed uid and its login group', { user: '1' }, { uid: 1, gid: 1 }],
  ])('resolves %s', (_what, settings, expected) => {
    expect(resolveFetchUser(settings, PASSWD, GROUP)).toEqual(expected);
  });

  it.each([
    ['an unknown user', { user: 'ghost' }, 'E_FETCH_USER_UNKNOWN', "user 'ghost' does not exist"],
    ['an unknown group', { user: 'nobody', group: 'ghosts' }, 'E_FETCH_USER_UNKNOWN', "group 'ghosts'"],
    ['a number without a login group', { user: '4000' }, 'E_FETCH_USER_UNKNOWN', "'4000'"],
    ['root', { user: 'root' }, 'E_CONFIG_INVALID', 'uid 0, gid 0'],
    ['group 0', { user: 'nobody', group: 'root' }, 'E_CONFIG_INVALID', 'gid 0'],
  ])('refuses %s', (_what, settings, code, mention) => {
    expect(() => resolveFetchUser(settings, PASSWD, GROUP)).toThrow(
      expect.objectContaining({ code, message: expect.stringContaining(mention) }),
    );
  });
});
