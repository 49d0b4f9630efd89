// Running an async step over many items with a bounded number in flight (reads of many small
// objects: a few at a time hide the disk's latency, thousands at once would exhaust descriptors).

/**
 * Calls `fn` for every item, at most `limit` calls pending at once; rejects with the first failure.
 * `lane` (0 … limit−1) names the loop a call runs in, for state a lane owns alone (a transaction
 * that is not for concurrent use).
 */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, lane: number) => Promise<void>,
): Promise<void> {
  // One iterator shared by every lane: each item is taken exactly once, in order.
  const queue = items.values();
  const lane = async (index: number): Promise<void> => {
    for (let next = queue.next(); next.done !== true; next = queue.next()) await fn(next.value, index);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, (_, index) => lane(index)));
}
