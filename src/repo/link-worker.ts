// Worker thread of a hardlink checkout: performs batches of link(2) calls so two cores share the
// kernel work (link is most of a checkout's cost). Replies with the failures only.
import { linkSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface LinkFailure {
  readonly index: number;
  readonly code: string | undefined;
  readonly message: string;
}

parentPort?.on('message', (batch: { id: number; ops: [string, string][] }) => {
  const failures: LinkFailure[] = [];
  batch.ops.forEach(([object, target], index) => {
    try {
      linkSync(object, target);
    } catch (error) {
      const e = error as { code?: string; message?: string };
      failures.push({ index, code: e.code, message: String(e.message) });
    }
  });
  parentPort?.postMessage({ id: batch.id, failures });
});
