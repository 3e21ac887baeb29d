#!/usr/bin/env node
// Runs the static checks, the unit project and the integration project (as two vitest
// processes), and prints one closing line `N passed, N failed, N skipped` summed over all, so CI
// can read the outcome. Before it: the wall time of each part and the number of clean EDK2 builds
// the run made (each one appends a line to the file named by OVMF_BUILD_TEST_CLEAN_BUILDS), so runs can
// be compared build for build.
//
// Why two integration processes: on two cores a clean EDK2 build takes both cores, so the three
// clean builds of the run (test/build.int.test.ts, then test/reproducible.int.test.ts) go one
// after the other in the "builds" part, while the "rest" part (QEMU under TCG, the engine, warm
// builds: mostly one core or waiting) runs beside them. Files of the rest that need the default
// warm workspace wait for build.int's marker in the shared run directory (test/harness.ts), so
// neither part depends on the other's order, and each file still runs alone (harness).
//
// The static checks (typecheck, lint, format) run here too, beside the builds part, instead of
// before it in `npm test`: each is a test that can fail, and none needs to hold the builds back.
//
// Order: the builds part starts first, because its chain of clean builds is the run's critical
// path; the unit project runs beside its start (engine checks, source unpacking and EDK2's
// single-threaded AutoGen leave a core idle), and the rest starts once the unit project is done
// (most of its files wait for build.int's workspace anyway). The unit output is shown live; the
// two integration parts are held back and printed in one piece each.
import { spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  globSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/** Files whose subject is a clean EDK2 build: never two at once on two cores. */
const BUILD_FILES = ['test/build.int.test.ts', 'test/reproducible.int.test.ts'];
/** The file that builds the default warm workspace clean (test/global-setup.ts). */
const PRODUCER = 'test/build.int.test.ts';
/** Files of the rest at once: QEMU under TCG takes about one core each. */
const REST_WORKERS = process.env['OVMF_BUILD_TEST_INT_WORKERS'] ?? '2';

// `--project <name>` runs that part alone (unit, integration); other arguments go to vitest.
const extra = process.argv.slice(2);
const only = extra.indexOf('--project');
const selected = only === -1 ? null : extra.splice(only, 2)[1];
const dir = mkdtempSync(path.join(tmpdir(), 'ovmf-build-tests-'));
const cleanBuildLog = path.join(dir, 'clean-builds.log');
const runDir = path.join(dir, 'int-run');
mkdirSync(runDir);

/** The integration files that are not BUILD_FILES (vitest's --exclude does not reach a project's files). */
function restFiles() {
  return globSync(['src/**/*.int.test.ts', 'test/**/*.int.test.ts', 'test/**/*.e2e.test.ts'])
    .filter((file) => !BUILD_FILES.includes(file))
    .sort();
}

/** Runs one vitest process; its console output goes to `logFile` when given (printed later). */
function vitest(name, args, logFile) {
  const report = path.join(dir, `${name}.json`);
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(
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
      {
        stdio: logFile === undefined ? 'inherit' : ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          OVMF_BUILD_TEST_CLEAN_BUILDS: cleanBuildLog,
          OVMF_BUILD_TEST_RUN_DIR: runDir,
          OVMF_BUILD_TEST_WORKSPACE_PRODUCER: PRODUCER,
        },
      },
    );
    if (logFile !== undefined) {
      const out = createWriteStream(logFile);
      child.stdout.pipe(out);
      child.stderr.pipe(out);
    }
    child.on('close', (status) => {
      const wallSeconds = (performance.now() - started) / 1000;
      let summary = null;
      try {
        summary = JSON.parse(readFileSync(report, 'utf8'));
      } catch {
        // the runner died before writing its report: counted as a failure below
      }
      resolve({ name, status, wallSeconds, summary, logFile });
    });
  });
}

/** The static checks: each runs to the end, and a failing one counts as one failed test. */
const STATIC_CHECKS = [
  ['typecheck', ['tsc', '--noEmit']],
  ['lint', ['eslint', '.']],
  ['format', ['prettier', '--check', '.']],
];

/** Runs one static check with its output held back; printed only when it fails. */
function check(name, args) {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = [];
    child.stdout.on('data', (chunk) => output.push(chunk));
    child.stderr.on('data', (chunk) => output.push(chunk));
    child.on('close', (status) => {
      resolve({
        name,
        status,
        wallSeconds: (performance.now() - started) / 1000,
        output: Buffer.concat(output),
      });
    });
  });
}

const totals = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
let exitCode = 0;
function account(result) {
  if (result.status !== 0) exitCode = result.status ?? 1;
  if (result.summary === null) {
    totals.failed += 1;
    exitCode ||= 1;
    lines.push(`${result.name}: ${result.wallSeconds.toFixed(0)} s wall, no report`);
    return;
  }
  const { summary } = result;
  lines.push(`${result.name}: ${result.wallSeconds.toFixed(0)} s wall, ${summary.numTotalTestSuites} suites`);
  totals.passed += summary.numPassedTests;
  // A file that fails to load has no failed test but a failed suite: count it too.
  const brokenFiles = summary.numFailedTests === 0 ? (summary.numFailedTestSuites ?? 0) : 0;
  totals.failed += summary.numFailedTests + brokenFiles;
  totals.skipped += summary.numPendingTests + summary.numTodoTests;
}

try {
  const runUnit = selected === null || selected === 'unit';
  const runIntegration = selected === null || selected === 'integration';
  const started = performance.now();
  const buildsLog = path.join(dir, 'integration-builds.log');
  const restLog = path.join(dir, 'integration-rest.log');
  const builds = runIntegration
    ? vitest(
        'integration (builds)',
        ['--project', 'integration', '--maxWorkers=2', ...BUILD_FILES],
        buildsLog,
      )
    : null;
  if (selected === null) {
    for (const [name, args] of STATIC_CHECKS) {
      const result = await check(name, args);
      lines.push(
        `${name}: ${result.wallSeconds.toFixed(0)} s wall, ${result.status === 0 ? 'ok' : 'FAILED'}`,
      );
      if (result.status === 0) {
        totals.passed += 1;
      } else {
        process.stdout.write(result.output);
        totals.failed += 1;
        exitCode ||= 1;
      }
    }
  }
  if (runUnit) account(await vitest('unit', ['--project', 'unit']));
  if (builds !== null) {
    const rest = await vitest(
      'integration (rest)',
      ['--project', 'integration', `--maxWorkers=${REST_WORKERS}`, ...restFiles()],
      restLog,
    );
    const buildsResult = await builds;
    for (const log of [buildsLog, restLog]) if (existsSync(log)) process.stdout.write(readFileSync(log));
    account(buildsResult);
    account(rest);
    lines.push(
      `integration: ${((performance.now() - started) / 1000).toFixed(0)} s wall (both parts, from the start of the builds part)`,
    );
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
