import { describe, expect, it } from 'vitest';
import { parseRequest, routeOf } from './protocol.js';
import { decodeSemaphore, emptySemaphore, encodeSemaphore, lock, unlock } from './semaphore.js';

describe('semaphore', () => {
  it('locks recursively up to the slots, and unlocks only a holder', () => {
    let sem = emptySemaphore(2);
    const step = (id: string) => {
      const r = lock(sem, id, 2, 100);
      sem = r.next;
      return r.outcome;
    };
    expect([step('a'), step('a'), step('b'), step('c')]).toEqual(['acquired', 'held', 'acquired', 'full']);
    expect(sem.holders).toEqual([
      { id: 'a', since: 100 },
      { id: 'b', since: 100 },
    ]);
    expect(unlock(sem, 'c').released).toBe(false);
    const r = unlock(sem, 'a');
    expect(r).toEqual({ released: true, next: { slots: 2, holders: [{ id: 'b', since: 100 }] } });
  });

  it('lowering the slots evicts nobody but refuses newcomers', () => {
    const sem = {
      slots: 3,
      holders: [
        { id: 'a', since: 1 },
        { id: 'b', since: 2 },
      ],
    };
    expect(lock(sem, 'c', 1, 5).outcome).toBe('full');
    expect(lock(sem, 'a', 1, 5)).toEqual({ outcome: 'held', next: { ...sem, slots: 1 } });
  });

  it('round-trips, and refuses stored values this version did not write', () => {
    const sem = { slots: 2, holders: [{ id: 'a', since: 1.5 }] };
    expect(decodeSemaphore(encodeSemaphore(sem))).toEqual(sem);
    for (const bad of [
      'x',
      'null',
      '{"version":2,"slots":1,"holders":[]}',
      '{"version":1,"slots":-1,"holders":[]}',
      '{"version":1,"slots":1,"holders":[{"id":"","since":1}]}',
      '{"version":1,"slots":1,"holders":[{"id":"a","since":"1"}]}',
      '{"version":1,"slots":2,"holders":[{"id":"a","since":1},{"id":"a","since":2}]}',
    ])
      expect(decodeSemaphore(bad)).toBeNull();
  });
});

describe('protocol', () => {
  it('routes the two endpoints and refuses the rest', () => {
    expect(routeOf('POST', '/v1/pre-reboot')).toBe('pre-reboot');
    expect(routeOf('POST', '/v1/steady-state')).toBe('steady-state');
    expect(() => routeOf('GET', '/v1/pre-reboot')).toThrow(
      expect.objectContaining({ kind: 'method_not_allowed', status: 405 }),
    );
    expect(() => routeOf('POST', '/v1/pre-reboot/')).toThrow(
      expect.objectContaining({ kind: 'not_found', status: 404 }),
    );
  });

  it('reads client_params and refuses what the specification rules out', () => {
    const body = (p: unknown) => JSON.stringify({ client_params: p });
    expect(parseRequest('pre-reboot', 'true', body({ id: 'n1', group: 'workers.eu-1' }))).toEqual({
      op: 'pre-reboot',
      id: 'n1',
      group: 'workers.eu-1',
    });
    for (const [header, text, kind] of [
      [undefined, body({ id: 'a', group: 'g' }), 'bad_header'],
      [['true', 'true'], body({ id: 'a', group: 'g' }), 'bad_header'],
      ['true', body({ id: 'a' }), 'bad_body'],
      ['true', body({ id: 'a', group: 'g_1' }), 'bad_body'],
      ['true', body({ id: 'a\nb', group: 'g' }), 'bad_body'],
      ['true', body({ id: 'x'.repeat(257), group: 'g' }), 'bad_body'],
      ['true', body({ id: 7, group: 'g' }), 'bad_body'],
      ['true', '[]', 'bad_body'],
    ] as const)
      expect(() => parseRequest('steady-state', header as string | string[] | undefined, text)).toThrow(
        expect.objectContaining({ kind }),
      );
  });
});
