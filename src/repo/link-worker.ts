// Worker thread of a hardlink checkout: performs batches of link(2) calls so two cores share the
// kernel work (link is most of a checkout's cost). Replies with the failures only.
import { linkSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface LinkFailure {
  readonly object: string;
  readonly target: string;
  readonly code: string | undefined;
  readonly message: string;
}

/** `ops` alternates object and target paths: no array per link to allocate, clone and collect. */
parentPort?.on('message', (ops: string[]) => {
  const failures: LinkFailure[] = [];
  for (let i = 0; i + 1 < ops.length; i += 2) {
    const object = ops[i] as string;
    const target = ops[i + 1] as string;
    try {
      linkSync(object, target);
    } catch (error) {
      const e = error as { code?: string; message?: string };
      failures.push({ object, target, code: e.code, message: String(e.message) });
    }
  }
  parentPort?.postMessage(failures);
});
