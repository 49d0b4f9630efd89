import { describe, expect, it } from 'vitest';
import { formatError } from './format-error.js';
import { ArborError, CorruptionError, Exit, inStep, inStepSync } from '../common/errors.js';

describe('inStep', () => {
  it('records the steps an ArborError passed through, outermost first, keeping code, exit and hint', async () => {
    const error = await inStep('compose', () =>
      inStep('importing packages', () => Promise.reject(new CorruptionError('E_RPM_CHECKSUM', 'bad', { hint: 'h' }))),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptionError);
    expect(error).toMatchObject({
      code: 'E_RPM_CHECKSUM',
      exit: Exit.Corrupt,
      hint: 'h',
      steps: ['compose', 'importing packages'],
    });
    expect(formatError(error)).toBe('error[E_RPM_CHECKSUM]: bad\n  during: compose › importing packages\nhint: h\n');
  });

  it('leaves a bug (a plain Error) as it was', () => {
    const bug = new Error('invariant');
    expect(() =>
      inStepSync('x', () => {
        throw bug;
      }),
    ).toThrow(bug);
    expect(formatError(bug)).toMatch(/^error\[E_INTERNAL\]/);
  });

  it('records a step once when the same error passes it twice', () => {
    const error = new ArborError('E_X', 'm');
    for (let i = 0; i < 2; i++) {
      try {
        inStepSync('s', () => {
          throw error;
        });
      } catch {
        // expected
      }
    }
    expect(error.steps).toEqual(['s']);
  });
});
