// A process that starts three idle QEMUs and waits to be killed (src/verify/qemu-process.test.ts):
// one through defaultSpawn from its main thread, one through defaultSpawn from a worker thread (as
// a command in ovmf-build's worker does), and one with a plain spawn, the control. It prints
// their pids as one JSON line once all three run.
import { spawn } from 'node:child_process';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { defaultSpawn } from '../src/verify/qemu-process.js';

const QEMU = process.argv[2] as string;
const IDLE = [
  '-machine',
  'none',
  '-nodefaults',
  '-display',
  'none',
  '-monitor',
  'none',
  '-serial',
  'none',
  '-S',
];

if (isMainThread) {
  const main = defaultSpawn(QEMU, IDLE);
  const plain = spawn(QEMU, IDLE, { stdio: 'ignore' });
  const worker = new Worker(new URL(import.meta.url), { argv: [QEMU] });
  worker.once('message', (fromWorker: number) => {
    process.stdout.write(`${JSON.stringify({ main: main.pid, worker: fromWorker, plain: plain.pid })}\n`);
  });
  setInterval(() => undefined, 60_000);
} else {
  const child = defaultSpawn(QEMU, IDLE);
  parentPort?.postMessage(child.pid);
  setInterval(() => undefined, 60_000);
}
