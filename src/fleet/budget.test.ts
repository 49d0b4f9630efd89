import { describe, expect, it } from 'vitest';
import { budgetExceeded, parseFailureBudget } from './budget.js';
import { parseRequest } from './protocol.js';

describe('failure budget', () => {
  it('reads counts and percentages', () => {
    expect(parseFailureBudget(['2'])).toEqual({ failures: 2, percent: null });
    expect(parseFailureBudget(['3', '10%'])).toEqual({ failures: 3, percent: 10 });
    for (const bad of ['0', '101%', 'x', '-1', '2.5'])
      expect(() => parseFailureBudget([bad])).toThrow(/--failure-budget/);
  });

  it('is exceeded by either limit, never without a failure', () => {
    const both = { failures: 3, percent: 10 };
    expect(budgetExceeded(both, 0, 100)).toBe(false);
    expect(budgetExceeded(both, 2, 100)).toBe(false);
    expect(budgetExceeded(both, 3, 100)).toBe(true);
    expect(budgetExceeded(both, 2, 10)).toBe(true);
    expect(budgetExceeded({ failures: null, percent: 50 }, 1, 2)).toBe(false);
    expect(budgetExceeded({ failures: null, percent: 50 }, 2, 3)).toBe(true);
  });

  it('parses a trial report and refuses a malformed one', () => {
    const body = (report: unknown) => JSON.stringify({ client_params: { id: 'a', group: 'g' }, report });
    const commit = 'a'.repeat(64);
    expect(parseRequest('report', 'true', body({ commit, outcome: 'failed', check: 'web' }))).toEqual({
      op: 'report',
      id: 'a',
      group: 'g',
      report: { commit, version: null, outcome: 'failed', check: 'web' },
    });
    for (const bad of [
      undefined,
      { commit, outcome: 'ok' },
      { commit: 'x', outcome: 'failed' },
      { commit, outcome: 'failed', check: 'a\nb' },
    ])
      expect(() => parseRequest('report', 'true', body(bad))).toThrow(expect.objectContaining({ kind: 'bad_body' }));
  });
});
