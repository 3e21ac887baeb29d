// The CLI process entry run from the sources (node --import tsx test/cli-entry.ts ...), as
// bin/ovmf-build.js runs it from dist: for tests of what only a real process has (signals,
// its own stdout and stderr file descriptors).
import { run } from '../src/cli/run.js';

await run();
