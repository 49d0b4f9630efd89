// Objects a describe block's beforeAll fills in and its tests read, typed as complete.

/**
 * An empty object typed as `T`, for beforeAll to fill in: vitest runs every test of the block
 * after it, so each test sees every entry set. The one place where tests narrow `{}` to a full type.
 */
export function filledInBeforeAll<T extends object>(): T {
  const empty: object = {};
  return empty as T;
}
