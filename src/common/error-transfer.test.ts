import { describe, expect, it } from 'vitest';
import { reportError, reviveError } from './error-transfer.js';
import { ArborError, BusyError, CorruptionError, Exit, UsageError, ioError } from './errors.js';

// What crosses a worker boundary is what structuredClone keeps.
const roundTrip = (error: unknown): Error => reviveError(structuredClone(reportError(error)));

describe('errors across a thread boundary', () => {
  it.each([
    [new CorruptionError('E_OBJECT_CORRUPT', 'file x is corrupt', { hint: 'run fsck' }), CorruptionError, Exit.Corrupt],
    [new UsageError('E_USAGE', 'bad flag'), UsageError, Exit.Usage],
    [new BusyError('E_REPO_LOCKED', 'locked'), BusyError, Exit.Busy],
    [new ArborError('E_IO', 'cannot read'), ArborError, Exit.Failed],
  ] as const)('keeps the class, code, exit and hint of %s', (error, ErrorClass, exit) => {
    const revived = roundTrip(error);
    expect(revived).toBeInstanceOf(ErrorClass);
    expect(revived).toMatchObject({ code: error.code, message: error.message, hint: error.hint, exit });
  });

  it('keeps steps and the chain of causes, errno codes included', () => {
    const errno = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const error = ioError('write object into', '/repo/tmp', errno);
    error.steps.push('importing packages');
    const revived = roundTrip(error) as ArborError;
    expect(revived).toMatchObject({ code: 'E_NO_SPACE', steps: ['importing packages'] });
    expect(revived.cause).toMatchObject({ code: 'ENOSPC', message: errno.message });
  });

  it('revives a bug as a plain Error with its stack, so it still exits 70', () => {
    const bug = new TypeError('x is undefined');
    const revived = roundTrip(bug);
    expect(revived).not.toBeInstanceOf(ArborError);
    expect(revived.stack).toBe(bug.stack);
  });
});
