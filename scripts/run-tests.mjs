#!/usr/bin/env node
// Runs the unit project, then the integration project one file at a time (they
// share one container engine, EDK2 builds and QEMU), and prints one closing line
// `N passed, N failed, N skipped` summed over both, so CI can read the outcome.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const extra = process.argv.slice(2);
const dir = mkdtempSync(path.join(tmpdir(), 'ovmf-build-tests-'));
const runs = [
  ['unit', ['--project', 'unit']],
  ['integration', ['--project', 'integration', '--no-file-parallelism']],
];
const totals = { passed: 0, failed: 0, skipped: 0 };
let exitCode = 0;
try {
  for (const [name, args] of runs) {
    const report = path.join(dir, `${name}.json`);
    const result = spawnSync(
      'npx',
      [
        'vitest',
        'run',
        ...args,
        '--reporter=default',
        '--reporter=json',
        `--outputFile.json=${report}`,
        ...extra,
      ],
      { stdio: 'inherit' },
    );
    if (result.status !== 0) exitCode = result.status ?? 1;
    let summary;
    try {
      summary = JSON.parse(readFileSync(report, 'utf8'));
    } catch {
      totals.failed += 1; // the runner died before writing its report
      exitCode ||= 1;
      continue;
    }
    totals.passed += summary.numPassedTests;
    // A file that fails to load has no failed test but a failed suite: count it too.
    const brokenFiles = summary.numFailedTests === 0 ? (summary.numFailedTestSuites ?? 0) : 0;
    totals.failed += summary.numFailedTests + brokenFiles;
    totals.skipped += summary.numPendingTests + summary.numTodoTests;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(exitCode || (totals.failed > 0 ? 1 : 0));
