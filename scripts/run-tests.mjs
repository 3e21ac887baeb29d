#!/usr/bin/env node
// Runs the unit project, then the integration project with its files side by side (they share
// one setup, test/global-setup.ts, and take the warm workspace from test/harness.ts, so their
// order does not matter), and prints one closing line `N passed, N failed, N skipped` summed
// over both, so CI can read the outcome. Before it: the wall time of each project and of each
// integration file, and the number of clean EDK2 builds the run made (each one appends a line to
// the file named by OVMF_BUILD_TEST_CLEAN_BUILDS), so runs can be compared build for build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/**
 * Integration files at once. Most of them wait (QEMU under TCG, the engine, a lock); the few
 * EDK2 builds use both cores only while compiling. More workers than files waiting for the
 * warm workspace (four) so the waiting never holds back the files that need no build.
 */
const INTEGRATION_WORKERS = process.env['OVMF_BUILD_TEST_INT_WORKERS'] ?? '8';

// `--project <name>` runs that project alone; other arguments go to vitest.
const extra = process.argv.slice(2);
const only = extra.indexOf('--project');
const selected = only === -1 ? null : extra.splice(only, 2)[1];
const dir = mkdtempSync(path.join(tmpdir(), 'ovmf-build-tests-'));
const cleanBuildLog = path.join(dir, 'clean-builds.log');
const runs = [
  ['unit', ['--project', 'unit']],
  ['integration', ['--project', 'integration', `--maxWorkers=${INTEGRATION_WORKERS}`]],
].filter(([name]) => selected === null || name === selected);
const totals = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
let exitCode = 0;
try {
  for (const [name, args] of runs) {
    const report = path.join(dir, `${name}.json`);
    const started = performance.now();
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
      { stdio: 'inherit', env: { ...process.env, OVMF_BUILD_TEST_CLEAN_BUILDS: cleanBuildLog } },
    );
    const wallSeconds = (performance.now() - started) / 1000;
    if (result.status !== 0) exitCode = result.status ?? 1;
    let summary;
    try {
      summary = JSON.parse(readFileSync(report, 'utf8'));
    } catch {
      totals.failed += 1; // the runner died before writing its report
      exitCode ||= 1;
      lines.push(`${name}: ${wallSeconds.toFixed(0)} s wall, no report`);
      continue;
    }
    lines.push(`${name}: ${wallSeconds.toFixed(0)} s wall, ${summary.numTotalTestSuites} suites`);
    if (name === 'integration') {
      const files = (summary.testResults ?? [])
        .map((file) => ({
          file: path.relative(process.cwd(), file.name),
          seconds: (file.endTime - file.startTime) / 1000,
          status: file.status,
        }))
        .sort((a, b) => b.seconds - a.seconds);
      for (const file of files) {
        lines.push(`  ${file.seconds.toFixed(0).padStart(5)} s  ${file.file} (${file.status})`);
      }
    }
    totals.passed += summary.numPassedTests;
    // A file that fails to load has no failed test but a failed suite: count it too.
    const brokenFiles = summary.numFailedTests === 0 ? (summary.numFailedTestSuites ?? 0) : 0;
    totals.failed += summary.numFailedTests + brokenFiles;
    totals.skipped += summary.numPendingTests + summary.numTodoTests;
  }
  const cleanBuilds = existsSync(cleanBuildLog)
    ? readFileSync(cleanBuildLog, 'utf8').split('\n').filter(Boolean)
    : [];
  lines.push(`clean EDK2 builds: ${cleanBuilds.length}`);
  for (const line of cleanBuilds) lines.push(`  ${line}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const line of lines) console.log(line);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(exitCode || (totals.failed > 0 ? 1 : 0));
