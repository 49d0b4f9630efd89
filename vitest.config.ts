// Three tiers: unit tests beside their sources (no build needed), integration tests that spawn the
// built CLI (npm test builds first), and the QEMU boot tests. `vitest run` runs all three.
import { defineConfig } from 'vitest/config';

const BOOT = [
  'test/integration/boot-e2e.test.ts',
  'test/integration/boot-harness.test.ts',
  'test/integration/image-boot.test.ts',
  'test/integration/trial-boot.test.ts',
  'test/integration/os-e2e.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests are process- and disk-heavy; two workers match the two cores here.
    // ARBOR_TEST_WORKERS overrides it on bigger machines.
    maxWorkers: Number(process.env.ARBOR_TEST_WORKERS ?? 2),
    projects: [
      { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: BOOT } },
      { extends: true, test: { name: 'boot', include: BOOT } },
    ],
  },
});
