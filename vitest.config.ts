// Unit tests sit beside their sources; integration tests spawn the built CLI (npm test builds first).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests are process- and disk-heavy; two workers match the two cores here.
    maxWorkers: 2,
  },
});
