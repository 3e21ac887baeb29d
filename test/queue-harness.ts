// Real parts for the BullMQ tests (test/queue*.int.test.ts): a redis-server of the test's own on
// 127.0.0.1 and a free port (no persistence), `ovmf-build worker` processes (bin/ovmf-build.js,
// the compiled CLI users run) with their JSON event lines, and an HTTP mirror in front of the
// corpus mirror that answers 503 to chosen requests (a transient download failure, for real).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, get, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from './corpus.js';

/** A port nobody listens on right now (the kernel's pick for port 0). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

export interface RedisServer extends AsyncDisposable {
  readonly url: string;
}

/** redis-server on 127.0.0.1 and a free port, without RDB or AOF files; stopped on dispose. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(
    'redis-server to accept connections',
    () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited ${child.exitCode}:\n${output}`);
      return output.includes('Ready to accept connections') ? true : undefined;
    },
    10_000,
  );
  return {
    url: `redis://127.0.0.1:${port}`,
    [Symbol.asyncDispose]: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    },
  };
}

/** One `ovmf-build worker --json` process and the events it printed. */
export interface WorkerProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Parsed stdout lines (QueueWorkerEvent objects), in order. */
  readonly events: Record<string, unknown>[];
  readonly stderr: () => string;
  /** The exit code (null when killed by a signal), once the process ended and its stdout and stderr were read to the end. */
  readonly exited: Promise<number | null>;
}

export async function startWorker(
  args: readonly string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv },
): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'bin', 'ovmf-build.js'), 'worker', ...args, '--json'],
    {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const events: Record<string, unknown>[] = [];
  let pending = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // --json promises one object per line: keep what broke that for the assertions to show.
        events.push({ type: 'not-json', line });
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close', not 'exit': a child's last lines (the 'returned' event written just before it exits)
  // may still be in the pipe when 'exit' comes, and a loaded machine reads them later.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    await waitFor(
      'the worker to be ready',
      () => {
        if (child.exitCode !== null) throw new Error(`worker exited ${child.exitCode}:\n${stderr}`);
        return events.some((e) => e['type'] === 'ready') ? true : undefined;
      },
      60_000,
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    child,
    pid: child.pid as number,
    events,
    stderr: () => stderr,
    exited,
    [Symbol.asyncDispose]: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

export interface FlakyMirror extends AsyncDisposable {
  readonly baseUrl: string;
  /** Status codes answered per request path, in order. */
  readonly answers: Map<string, number[]>;
  /** Answer 503 to the requests of `path` numbered in `requestNumbers` (1 = its first request). */
  failRequests(path: string, requestNumbers: readonly number[]): void;
}

/** A mirror in front of another that answers 503 to the requests it is told to fail. */
export async function serveFlakyMirror(targetBaseUrl: string): Promise<FlakyMirror> {
  const answers = new Map<string, number[]>();
  const failing = new Map<string, readonly number[]>();
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    const seen = answers.get(url) ?? [];
    answers.set(url, seen);
    if (failing.get(url)?.includes(seen.length + 1)) {
      seen.push(503);
      res.writeHead(503, { 'retry-after': '0' }).end('try again later');
      return;
    }
    get(`${targetBaseUrl}${url}`, (upstream) => {
      seen.push(upstream.statusCode ?? 0);
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    }).on('error', () => res.writeHead(502).end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answers,
    failRequests: (requestPath, numbers) => failing.set(requestPath, numbers),
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
