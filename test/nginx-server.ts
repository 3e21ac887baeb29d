// Debian's nginx serving a mirror tree with the shipped configuration
// (contrib/nginx/ovmf-mirror.locations.conf and the ETag map of src/serve/nginx-conf.ts), in the
// foreground, on 127.0.0.1 and a free port, with every path under a temp prefix: for the HTTP
// tests (the same assertions as for `serve`) and bench/serve.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { nginxEtagMap, nginxTestConfig } from '../src/serve/nginx-conf.js';

export const NGINX_BIN = '/usr/sbin/nginx';
export const CONTRIB_LOCATIONS = path.resolve(
  import.meta.dirname,
  '..',
  'contrib',
  'nginx',
  'ovmf-mirror.locations.conf',
);

export interface NginxServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly prefix: string;
  close(): Promise<void>;
}

/** A port free on 127.0.0.1 now (nginx cannot listen on port 0 and tell us which it got). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${log()}`);
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}: ${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts nginx on `root` (its ETag map generated now); close() stops it (SIGQUIT, then SIGKILL). */
export async function startNginx(root: string, options: { workers?: number } = {}): Promise<NginxServer> {
  const prefix = await mkdtemp(path.join(tmpdir(), 'ovmf-nginx-'));
  const etagMapFile = path.join(prefix, 'etags.map');
  await writeFile(etagMapFile, await nginxEtagMap(root));
  // Started as root, nginx runs its workers as `nobody`, which may not enter a 0700 temp dir.
  const user = process.getuid?.() === 0 ? userInfo().username : undefined;
  for (let attempt = 0; ; attempt += 1) {
    const port = await freePort();
    const conf = path.join(prefix, 'nginx.conf');
    await writeFile(
      conf,
      nginxTestConfig({
        root,
        host: '127.0.0.1',
        port,
        prefix,
        locationsFile: CONTRIB_LOCATIONS,
        etagMapFile,
        ...(options.workers === undefined ? {} : { workers: options.workers }),
        ...(user === undefined ? {} : { user }),
      }),
    );
    const child = spawn(NGINX_BIN, ['-p', prefix, '-c', conf, '-e', 'stderr'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    try {
      await waitForPort(port, child, () => log);
    } catch (error) {
      child.kill('SIGKILL');
      // Another process took the port between the probe and nginx's bind: try another one.
      if (attempt < 3 && /Address already in use/.test(log)) continue;
      await rm(prefix, { recursive: true, force: true });
      throw error;
    }
    const close = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(prefix, { recursive: true, force: true });
    };
    return { url: `http://127.0.0.1:${port}/`, port, prefix, close, [Symbol.asyncDispose]: close };
  }
}
