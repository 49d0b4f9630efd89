// The repository config through the shared INI parser: what it returns, and E_CONFIG_INVALID
// (exit 2) naming FILE:LINE and the rule broken, never the line.
import { describe, expect, it } from 'vitest';
import { parseRepoConfig } from './config.js';

describe('parseRepoConfig', () => {
  it('reads sections and values', () => {
    const text = '[core]\nformat-version=2\nmode=bare-user\n\n[remote "a"]\nurl=http://h/r\n';
    expect(parseRepoConfig(text, '/r/config')).toEqual(
      new Map([
        [
          'core',
          new Map([
            ['format-version', '2'],
            ['mode', 'bare-user'],
          ]),
        ],
        ['remote "a"', new Map([['url', 'http://h/r']])],
      ]),
    );
  });

  it.each([
    ['a line without =', '[core]\nmode bare\n', 2, 'expected [section] or key=value'],
    ['a repeated key', '[core]\nmode=bare\nmode=archive\n', 3, "key 'mode' appears twice in its section"],
    ['a control character', '[remote "a"]\nurl=http://h/\u001b\n', 2, 'it contains a control character'],
  ])('refuses %s with E_CONFIG_INVALID (exit 2) at FILE:LINE', (_, text, line, problem) => {
    expect(() => parseRepoConfig(text, '/r/config')).toThrow(
      expect.objectContaining({ code: 'E_CONFIG_INVALID', exit: 2, message: `/r/config:${line}: ${problem}` }),
    );
  });
});
