#!/usr/bin/env bash
# Installs everything, then runs the whole test suite (build, dependency rules, vitest) and ends
# with one plain line "N passed, N failed" (CI reads that line, not vitest's summary).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

mkdir -p reports
rm -f reports/vitest.json
npm test -- --reporter=default --reporter=json --outputFile.json=reports/vitest.json
status=$?

# shellcheck disable=SC2016 # JavaScript, not shell: nothing in it is meant to expand
node -e '
const fs = require("fs");
let passed = 0, failed = 0;
try {
  const r = JSON.parse(fs.readFileSync("reports/vitest.json", "utf8"));
  passed = r.numPassedTests; failed = r.numFailedTests;
  // A file that failed to load counts as a failure even though it ran no test.
  failed += r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
} catch { failed = 1; }
if (process.argv[1] !== "0" && failed === 0) failed = 1; // build or dependency check failed before vitest
console.log(`${passed} passed, ${failed} failed`);
' "$status"
exit $status
