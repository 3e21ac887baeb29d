#!/usr/bin/env node
// Runs the static checks, the unit project and the integration project (as two vitest
// processes), and prints one closing line `N passed, N failed, N skipped` summed over all, so CI
// can read the outcome. Before it: the wall time of each part, the number of clean EDK2 builds
// the run made (each one appends a line to the file named by OVMF_BUILD_TEST_CLEAN_BUILDS), so runs can
// be compared build for build, and the machine's CPU time over the run split into normal
// priority, niced, system and idle (/proc/stat), which says whether the run was bound by its
// critical path or by its CPU work.
//
// Why two integration processes: on two cores a clean EDK2 build takes both cores, so the two
// clean builds of the run (test/build.int.test.ts, then test/reproducible.int.test.ts, which
// waits for build.int's marker) go one after the other in the "builds" part, while the "rest"
// part (QEMU under TCG, the engine, warm builds) runs beside them. Files of the rest that need
// the default warm workspace wait for build.int's marker in the shared run directory
// (test/harness.ts), so neither part depends on the other's order, and each file still runs
// alone (harness). build.int holds only what needs its clean build; the builds from the
// workspace it commits are in the rest (test/build-warm.int.test.ts).
//
// Priority: the chain of clean builds is the run's critical path (measured: ~1,740 s of a
// ~1,780 s run), and everything else has slack. So the builds part runs at normal priority and
// every other part (static checks, unit project, rest) under `nice -n 10`
// (OVMF_BUILD_TEST_NICE, 0 turns it off). Children inherit it: QEMU, CLI processes, and the
// rest's own `podman system service` (test/global-setup.ts starts one per vitest process when
// no engine socket exists) and its conmon. Nice does not reach across CPU cgroups, though: every
// container is a cgroup of its own, weighed against the other containers by its CPU shares (a
// clean build measured about 15 min beside the rest's warm builds, each container at the default 1024,
// against ~6 min alone). So the low-priority parts also run their builds with
// OVMF_BUILD_CPU_SHARES=128 (src/jobs/stage-build.ts), while the builds part's clean-build
// containers keep the engine's 1024. The niced
// parts still get every cycle the builds leave idle (engine setup, EDK2's single-threaded
// AutoGen, I/O), and a core to themselves once the builds are done.
//
// Order: everything starts at once. The builds part first; beside it the static checks (each a
// test that can fail; none needs to hold the builds back), then the unit project (its output
// shown live); and the rest, whose global setup first waits for the builds part's (so on a cold
// machine no niced process makes the EDK2 source or the builder image under a lock the builds
// wait on) and whose files that need the workspace wait for build.int's marker, so the longest
// of them, test/nightly.int.test.ts, starts as soon as the workspace exists. The two integration
// parts' output is held back and printed in one piece each.
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
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/** Files whose subject is a clean EDK2 build: never two at once on two cores. */
const BUILD_FILES = ['test/build.int.test.ts', 'test/reproducible.int.test.ts'];
/** The file that builds the default warm workspace clean (test/global-setup.ts). */
const PRODUCER = 'test/build.int.test.ts';
/**
 * Files of the rest at once. Three: most of the rest waits for the workspace, then runs a chain
 * of long files (nightly.int ~600 s, verify-boot.int ~300 s, build-warm.int ~290 s, queue.int
 * ~220 s, ovmf-e2e.int ~170 s), mostly waiting on QEMU (one core each) or on niced containers.
 */
const REST_WORKERS = process.env['OVMF_BUILD_TEST_INT_WORKERS'] ?? '3';
/** Niceness of every part but the builds part (see the header); 0: no change. */
const NICE = Number(process.env['OVMF_BUILD_TEST_NICE'] ?? '10');
if (!Number.isInteger(NICE) || NICE < 0 || NICE > 19) {
  console.error(
    `OVMF_BUILD_TEST_NICE must be an integer from 0 to 19, got ${process.env['OVMF_BUILD_TEST_NICE']}`,
  );
  process.exit(2);
}
/**
 * The CPU shares of the low-priority parts' build containers (the engine's default is 1024): about
 * the weight ratio of nice 10 to nice 0 (110 : 1024).
 */
const LOW_PRIORITY_CPU_SHARES = 128;

/** coreutils' nice, when on PATH (it is wherever the integration tests can run). */
const NICE_BINARY = (process.env['PATH'] ?? '')
  .split(path.delimiter)
  .filter((dir) => dir !== '')
  .map((dir) => path.join(dir, 'nice'))
  .find((file) => existsSync(file));

/** The command line of `npx <args>`, under `nice -n NICE` when `lowPriority` (and NICE > 0). */
function npx(args, lowPriority) {
  if (!lowPriority || NICE === 0) return ['npx', args];
  if (NICE_BINARY === undefined) {
    console.error('run-tests: nice not found on PATH; the parts beside the builds run at normal priority');
    return ['npx', args];
  }
  return [NICE_BINARY, ['-n', String(NICE), 'npx', ...args]];
}

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

/**
 * Runs one vitest process (niced when `lowPriority`); its console output goes to `logFile` when
 * given (printed later).
 */
function vitest(name, args, logFile, lowPriority) {
  const report = path.join(dir, `${name}.json`);
  const started = performance.now();
  return new Promise((resolve) => {
    const [command, commandArgs] = npx(
      [
        'vitest',
        'run',
        ...args,
        '--reporter=default',
        '--reporter=json',
        `--outputFile.json=${report}`,
        ...extra,
      ],
      lowPriority,
    );
    const child = spawn(command, commandArgs, {
      stdio: logFile === undefined ? 'inherit' : ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        OVMF_BUILD_TEST_CLEAN_BUILDS: cleanBuildLog,
        OVMF_BUILD_TEST_RUN_DIR: runDir,
        OVMF_BUILD_TEST_WORKSPACE_PRODUCER: PRODUCER,
        // Each container is a CPU cgroup of its own, weighed against its siblings by its shares,
        // whatever the nice of the processes in it: the low-priority parts' builds ask for less.
        ...(lowPriority && NICE !== 0 ? { OVMF_BUILD_CPU_SHARES: String(LOW_PRIORITY_CPU_SHARES) } : {}),
      },
    });
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

/** Runs one static check (niced: it is not on the critical path) with its output held back; printed only when it fails. */
function check(name, args) {
  const started = performance.now();
  return new Promise((resolve) => {
    const [command, commandArgs] = npx(args, true);
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
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

/**
 * The machine's CPU time so far by kind, in seconds, from /proc/stat (Linux; null elsewhere):
 * `normal` is user time at nice <= 0 (here: the builds part and everything else on the machine),
 * `niced` user time at nice > 0 (the parts run under nice, their containers included), `system`
 * kernel time, `idle` idle and I/O wait. Their difference over the run says whether a run was
 * bound by its critical path (idle left) or by the CPU work itself (no idle left), which decides
 * what can still make it faster.
 */
function cpuTimes() {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
    // USER_HZ is 100 on every Linux architecture Node runs on (sysconf(_SC_CLK_TCK)).
    return {
      normal: user / 100,
      niced: nice / 100,
      system: (system + irq + softirq + steal) / 100,
      idle: (idle + iowait) / 100,
    };
  } catch {
    return null;
  }
}
const cpuAtStart = cpuTimes();

const totals = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
/** Each failed test and suite, with the start of its message: printed last, where CI's tail shows it. */
const failures = [];
let exitCode = 0;
function account(result) {
  if (result.status !== 0) exitCode = result.status ?? 1;
  if (result.summary === null) {
    totals.failed += 1;
    exitCode ||= 1;
    lines.push(`${result.name}: ${result.wallSeconds.toFixed(0)} s wall, no report`);
    failures.push(`${result.name}: the runner wrote no report (exit ${result.status})`);
    return;
  }
  const { summary } = result;
  lines.push(`${result.name}: ${result.wallSeconds.toFixed(0)} s wall, ${summary.numTotalTestSuites} suites`);
  totals.passed += summary.numPassedTests;
  // A file that fails to load has no failed test but a failed suite: count it too.
  const brokenFiles = summary.numFailedTests === 0 ? (summary.numFailedTestSuites ?? 0) : 0;
  totals.failed += summary.numFailedTests + brokenFiles;
  totals.skipped += summary.numPendingTests + summary.numTodoTests;
  for (const file of summary.testResults ?? []) {
    const relative = path.relative(process.cwd(), file.name ?? '');
    const failedTests = (file.assertionResults ?? []).filter((test) => test.status === 'failed');
    for (const test of failedTests) {
      failures.push(
        `${result.name} | ${relative} > ${test.fullName}\n${firstLines(test.failureMessages?.join('\n') ?? '')}`,
      );
    }
    if (failedTests.length === 0 && file.status === 'failed') {
      failures.push(`${result.name} | ${relative} (the file failed)\n${firstLines(file.message ?? '')}`);
    }
  }
}

/** The first lines of a failure message, indented, without ANSI colours or the runner's own stack frames. */
function firstLines(message) {
  return (
    message
      // eslint-disable-next-line no-control-regex -- ANSI colour codes start with ESC
      .replace(/\u001b\[[0-9;]*m/g, '')
      .split('\n')
      .filter((line) => !/node_modules|^\s*at new Promise/.test(line))
      .slice(0, 12)
      .map((line) => `    ${line}`)
      .join('\n')
  );
}

/** The static checks one after the other, then the unit project: one chain beside the builds. */
async function staticThenUnit() {
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
        failures.push(`${name} failed (its output is above)`);
        totals.failed += 1;
        exitCode ||= 1;
      }
    }
  }
  if (runUnit) account(await vitest('unit', ['--project', 'unit'], undefined, runIntegration));
}

const runUnit = selected === null || selected === 'unit';
const runIntegration = selected === null || selected === 'integration';
try {
  const started = performance.now();
  const buildsLog = path.join(dir, 'integration-builds.log');
  const restLog = path.join(dir, 'integration-rest.log');
  if (runIntegration) {
    lines.push(
      NICE === 0 || NICE_BINARY === undefined
        ? 'priority: every part at normal priority'
        : `priority: builds part at normal priority; static checks, unit and rest under nice -n ${NICE}`,
    );
  }
  const builds = runIntegration
    ? vitest(
        'integration (builds)',
        ['--project', 'integration', '--maxWorkers=2', ...BUILD_FILES],
        buildsLog,
        false,
      )
    : null;
  const rest = runIntegration
    ? vitest(
        'integration (rest)',
        ['--project', 'integration', `--maxWorkers=${REST_WORKERS}`, ...restFiles()],
        restLog,
        true,
      )
    : null;
  await staticThenUnit();
  if (builds !== null && rest !== null) {
    const [buildsResult, restResult] = await Promise.all([builds, rest]);
    for (const log of [buildsLog, restLog]) if (existsSync(log)) process.stdout.write(readFileSync(log));
    account(buildsResult);
    account(restResult);
    // Both parts start together: the integration project's wall time is the longer of the two.
    lines.push(
      `integration: ${Math.max(buildsResult.wallSeconds, restResult.wallSeconds).toFixed(0)} s wall (both parts)`,
    );
  }
  const cleanBuilds = existsSync(cleanBuildLog)
    ? readFileSync(cleanBuildLog, 'utf8').split('\n').filter(Boolean)
    : [];
  lines.push(`all parts: ${((performance.now() - started) / 1000).toFixed(0)} s wall`);
  const cpuAtEnd = cpuTimes();
  if (cpuAtStart !== null && cpuAtEnd !== null) {
    const used = (kind) => (cpuAtEnd[kind] - cpuAtStart[kind]).toFixed(0);
    lines.push(
      `machine CPU over the run (all processes, containers included): ${used('normal')} s user at normal priority, ` +
        `${used('niced')} s user niced, ${used('system')} s system, ${used('idle')} s idle (${availableParallelism()} cores)`,
    );
  }
  lines.push(`clean EDK2 builds: ${cleanBuilds.length}`);
  for (const line of cleanBuilds) lines.push(`  ${line}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const line of lines) console.log(line);
if (failures.length > 0) {
  console.log(`failed (${failures.length}):`);
  for (const failure of failures) console.log(`  ${failure}`);
}
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(exitCode || (totals.failed > 0 ? 1 : 0));
