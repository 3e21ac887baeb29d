// A process that starts three idle `sleep`s and waits to be killed (test/vendor.test.ts): two
// through runBounded, as 7z runs (one under prlimit, one without a file size cap), and one with
// a plain spawn, the control. Each sleeps a length of its own, so the test tells them apart by
// their command lines. It prints "ready" once all three are started.
import { spawn } from 'node:child_process';
import { runBounded } from '../src/vendor/bounded-child.js';

const options = { timeoutMs: 600_000, maxOutputBytes: 1024 };
runBounded('sleep', ['301'], options).catch(() => undefined);
runBounded('sleep', ['302'], { ...options, maxFileBytes: 1 << 20 }).catch(() => undefined);
spawn('sleep', ['303'], { stdio: 'ignore' });
process.stdout.write('ready\n');
setInterval(() => undefined, 60_000);
