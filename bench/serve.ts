// Benchmark: `ovmf-build serve` against Debian's nginx (contrib/nginx config, one worker) on the
// same mirror tree, on loopback, in the same run, with wrk (bounded: 2 threads, 10 s per case).
// Small file: index.json (64 connections); large file: a 4 MiB OVMF_CODE.fd (16 connections).
// Prints requests/s, MB/s (10^6 bytes) and serve/nginx ratios, and checks serve against the
// goals of issue 13 item 8 on this 2-core machine: >= 5,000 req/s on the index and >= 125 MB/s
// (a saturated 1 Gbit/s link) on the large file. The load average is printed: wrk, the server
// and anything else running share the cores, so figures from a busy machine are lower bounds.
// Run: npm run bench:serve   (BENCH_SERVE_SECONDS=N shortens or lengthens each case, max 30)
import { execFile, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../test/corpus.js';
import { startNginx } from '../test/nginx-server.js';
import { LARGE_FILE_BYTES, makeServeTree } from '../test/serve-tree.js';

const BIN = path.join(REPO_ROOT, 'bin', 'ovmf-build.js');
const SECONDS = Math.min(30, Math.max(1, Number(process.env['BENCH_SERVE_SECONDS'] ?? 10) || 10));
const GOAL_INDEX_RPS = 5_000;
const GOAL_LARGE_MBPS = 125;

interface Measured {
  readonly requestsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly non2xx: number;
}

/** One wrk run; MB/s from wrk's own byte count ("N requests in Ts, X read" is rounded, Transfer/sec too). */
async function wrk(url: string, connections: number, sizeInBytes: number): Promise<Measured> {
  const { stdout } = await promisify(execFile)('wrk', [
    '-t2',
    `-c${connections}`,
    `-d${SECONDS}s`,
    '--timeout',
    '10s',
    url,
  ]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  if (!Number.isFinite(rps)) throw new Error(`cannot read wrk's output:\n${stdout}`);
  return { requestsPerSecond: rps, megabytesPerSecond: (rps * sizeInBytes) / 1e6, non2xx };
}

/** `ovmf-build serve` as users run it (dist/), on a free port; resolves with its URL. */
async function startServe(root: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'serve', root, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const found = /at (http:\/\/\S+)/.exec(output)?.[1];
      if (found !== undefined) resolve(found);
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
  });
  return {
    url,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const load = (): string =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

const tree = await makeServeTree('ovmf-bench-serve-');
const serve = await startServe(tree.root);
const nginx = await startNginx(tree.root, { workers: 1 });
try {
  const indexBytes = statSync(path.join(tree.root, 'index.json')).size;
  console.log(
    `bench:serve  tree: index.json ${indexBytes} bytes, ${tree.largeFile} ${LARGE_FILE_BYTES} bytes`,
  );
  console.log(`wrk -t2, ${SECONDS} s per case; load average before: ${load()}`);
  const rows: Array<[string, Measured, Measured]> = [];
  for (const [label, file, connections, size] of [
    ['index.json (small)', 'index.json', 64, indexBytes],
    ['OVMF_CODE.fd (4 MiB)', tree.largeFile, 16, LARGE_FILE_BYTES],
  ] as const) {
    const ours = await wrk(new URL(file, serve.url).href, connections, size);
    const theirs = await wrk(new URL(file, nginx.url).href, connections, size);
    rows.push([`${label}, ${connections} conn`, ours, theirs]);
  }
  console.log('');
  console.log('| file | serve req/s | serve MB/s | nginx req/s | nginx MB/s | serve/nginx |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [label, ours, theirs] of rows) {
    console.log(
      `| ${label} | ${ours.requestsPerSecond.toFixed(0)} | ${ours.megabytesPerSecond.toFixed(1)} | ${theirs.requestsPerSecond.toFixed(0)} | ${theirs.megabytesPerSecond.toFixed(1)} | ${(ours.requestsPerSecond / theirs.requestsPerSecond).toFixed(2)} |`,
    );
  }
  const [small, large] = rows;
  const errors = rows.flatMap(([label, ours, theirs]) =>
    ours.non2xx + theirs.non2xx > 0 ? [`${label}: ${ours.non2xx} + ${theirs.non2xx} non-2xx`] : [],
  );
  const checks = [
    [`index >= ${GOAL_INDEX_RPS} req/s`, (small?.[1].requestsPerSecond ?? 0) >= GOAL_INDEX_RPS],
    [`large file >= ${GOAL_LARGE_MBPS} MB/s`, (large?.[1].megabytesPerSecond ?? 0) >= GOAL_LARGE_MBPS],
    ['every response 2xx', errors.length === 0],
  ] as const;
  console.log('');
  for (const [goal, ok] of checks) console.log(`${ok ? 'PASS' : 'FAIL'}  serve: ${goal}`);
  for (const error of errors) console.log(`  ${error}`);
  console.log(`load average after: ${load()}`);
  if (checks.some(([, ok]) => !ok)) process.exitCode = 1;
} finally {
  await serve.stop();
  await nginx.close();
  await rm(tree.dir, { recursive: true, force: true });
}
