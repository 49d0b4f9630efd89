// Pure parts of the HTTP fetcher: where a redirect may lead, and the stuck-transfer watchdog.
import { describe, expect, it } from 'vitest';
import { ArborError } from '../common/errors.js';
import { Watchdog, redirectTarget } from './fetch.js';

const refusal = (chain: string[], location: string | undefined): string => {
  try {
    redirectTarget(chain, location, 302);
  } catch (error) {
    if (error instanceof ArborError && error.code === 'E_FETCH_FAILED') return error.message;
    throw error;
  }
  throw new Error('not refused');
};

describe('redirectTarget', () => {
  it.each([
    ['a relative path', 'http://a/repo/summary', '/mirror/summary', 'http://a/mirror/summary'],
    ['a relative name', 'http://a/repo/summary', 'other', 'http://a/repo/other'],
    ['another host', 'http://a/x', 'http://b:8080/y', 'http://b:8080/y'],
    ['http to https', 'http://a/x', 'https://a/x', 'https://a/x'],
    ['https to https, dropping a fragment', 'https://a/x', 'https://b/y#f', 'https://b/y'],
  ])('follows %s', (_what, from, location, to) => {
    expect(redirectTarget([from], location, 301)).toBe(to);
  });

  it.each([
    ['https to http', ['https://a/x'], 'http://a/x', 'redirects from https to http'],
    ['another scheme', ['http://a/x'], 'file:///etc/passwd', 'which is not http(s)'],
    ['no Location', ['http://a/x'], undefined, 'has no Location'],
    ['a loop', ['http://a/x', 'http://a/y'], '/x', 'redirect loop: http://a/x -> http://a/y -> http://a/x'],
    [
      'a sixth hop',
      ['http://a/0', 'http://a/1', 'http://a/2', 'http://a/3', 'http://a/4', 'http://a/5'],
      '/6',
      'more than 5 redirects',
    ],
  ])('refuses %s', (_what, chain, location, message) => {
    expect(refusal(chain, location)).toContain(message);
  });
});

describe('Watchdog', () => {
  it('aborts a transfer slower than the limit over the window, naming the limit', async () => {
    const dog = new Watchdog({ lowSpeedBytesPerSecond: 1000, lowSpeedTimeMs: 200, requestTimeoutMs: 0 });
    const destroyed = new Promise<Error | undefined>((resolve) => dog.watch({ destroy: resolve }));
    dog.received(10);
    expect((await destroyed)?.message).toBe('slower than 1000 B/s for 0.2 s');
    expect(dog.reason).toBe('slower than 1000 B/s for 0.2 s');
  });

  it('lets a transfer at the limit run, and ends it at the request timeout', async () => {
    const dog = new Watchdog({ lowSpeedBytesPerSecond: 1000, lowSpeedTimeMs: 200, requestTimeoutMs: 600 });
    const feed = setInterval(() => dog.received(100), 50);
    const destroyed = new Promise<Error | undefined>((resolve) => dog.watch({ destroy: resolve }));
    try {
      expect((await destroyed)?.message).toBe('not done within the 0.6 s request timeout');
    } finally {
      clearInterval(feed);
      dog.stop();
    }
  });
});
