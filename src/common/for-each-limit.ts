// Running an async step over many items with a bounded number in flight (reads of many small
// objects: a few at a time hide the disk's latency, thousands at once would exhaust descriptors).

/** Calls `fn` for every item, at most `limit` calls pending at once; rejects with the first failure. */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
