// Seeded fuzzing of the RPM reader with mutated fixture packages: it must only ever return a
// result or throw an ArborError, and never hang. Replay a failure with SEED=<seed>.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArborError } from '../../src/common/errors.js';
import { readPayload, readRpmHead } from '../../src/rpm-compose/index.js';
import { Random, seedFromEnv } from '../support/random.js';
import { useTempDir } from '../support/temp.js';
import { HAVE_RPMBUILD, PAYLOADS, buildRpm, layoutOf, resign } from './rpm-fixtures.js';

const SEED = seedFromEnv();
const CASES_PER_FIXTURE = Number(process.env.RPM_FUZZ_CASES ?? 300);
const CASE_TIMEOUT_MS = 10_000;

async function readWhole(path: string): Promise<void> {
  const head = await readRpmHead(path);
  for await (const entry of readPayload(head)) if (entry.content) for await (const _ of entry.content);
}

describe.skipIf(!HAVE_RPMBUILD)(`the RPM reader on mutated packages (seed ${SEED})`, () => {
  const dir = useTempDir('arbor-rpm-fuzz-');
  const fixtures = new Map<string, Buffer>();
  beforeAll(() => {
    fixtures.set('basic', readFileSync(buildRpm('basic.spec', dir.path)));
    for (const [compressor, payload] of PAYLOADS)
      fixtures.set(compressor, readFileSync(buildRpm('payload.spec', dir.path, { compressor, payload })));
  });

  it.each(['basic', ...PAYLOADS.map(([c]) => c)])(
    '%s: every mutation reads or fails with an ArborError',
    async (name) => {
      const random = new Random(SEED).derive(name);
      const original = fixtures.get(name)!;
      const { headerStart, payloadStart } = layoutOf(original);
      const outcomes = { ok: 0, refused: 0 };
      for (let i = 0; i < CASES_PER_FIXTURE; i++) {
        let bytes: Buffer = Buffer.from(original);
        const kind = random.pick(['flip', 'flip-header-resigned', 'flip-payload', 'truncate', 'insert'] as const);
        if (kind === 'truncate') {
          bytes = bytes.subarray(0, random.int(0, bytes.length - 1));
        } else if (kind === 'insert') {
          const at = random.int(0, bytes.length);
          bytes = Buffer.concat([bytes.subarray(0, at), random.bytes(random.int(1, 16)), bytes.subarray(at)]);
        } else {
          // Re-signed header edits get past the digests to the decoders behind them.
          const [from, to] =
            kind === 'flip'
              ? [0, bytes.length - 1]
              : kind === 'flip-payload'
                ? [payloadStart, bytes.length - 1]
                : [headerStart, payloadStart - 1];
          for (let n = random.int(1, 4); n > 0; n--) bytes[random.int(from, to)] = random.int(0, 255);
          if (kind === 'flip-header-resigned') bytes = resign(bytes, original);
        }
        const path = join(dir.path, `${name}-${i}.rpm`);
        writeFileSync(path, bytes);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`case ${i} (${kind}) of ${name} hung`)), CASE_TIMEOUT_MS);
        });
        try {
          await Promise.race([readWhole(path), timeout]);
          outcomes.ok++;
        } catch (error) {
          if (!(error instanceof ArborError))
            throw new Error(`case ${i} (${kind}) of ${name} (seed ${SEED}) threw a non-ArborError`, { cause: error });
          outcomes.refused++;
        } finally {
          clearTimeout(timer);
        }
      }
      expect(outcomes.ok + outcomes.refused).toBe(CASES_PER_FIXTURE);
      expect(outcomes.refused).toBeGreaterThan(0);
    },
  );
});
