// Child process for test/nightly-processes.test.ts: one nightly runner with the stand-in job,
// so two of them can race and one can be killed with SIGKILL. Prints the summary as JSON.
import { appendFile, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { runNightly } from '../src/nightly/runner.js';
import { exitCodeOf, silentLogger, StandInJob, standInRecipe } from './nightly-stand-in.js';

const [stateDir, root, buildMs, names, runId, barrier] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string | undefined,
];
if (barrier !== undefined) {
  // Both runners start the matrix only once both run, so the race does not depend on start-up times.
  await appendFile(barrier, `${process.pid}\n`);
  while ((await readFile(barrier, 'utf8')).trim().split('\n').length < 2) await sleep(20);
}
const { summary } = await runNightly({
  recipes: names.split(',').map((name) => standInRecipe(name)),
  job: new StandInJob({ root, buildMs: Number(buildMs) }),
  stateDir,
  exitCodeOf,
  signal: new AbortController().signal,
  logger: silentLogger,
  runId,
  lockPollMs: 50,
});
process.stdout.write(`${JSON.stringify(summary)}\n`);
