import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorOf } from '../../test/rejection.js';
import {
  compareVersions,
  engineCandidates,
  parseDockerHost,
  probeEngine,
  versionFromPingHeaders,
} from './discovery.js';
import { connectEngine } from './engine.js';

const logger = pino({ level: 'silent' });
const repoRoot = path.resolve(import.meta.dirname, '../..');

/** A real HTTP server on a unix socket that answers like an engine of the given API version. */
async function fakeEngine(socketPath: string, apiVersion: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === '/_ping') {
      res.end('OK');
    } else if (req.url === '/version') {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ Version: '17.03.0-ce', ApiVersion: apiVersion, Components: [{ Name: 'Engine' }] }),
      );
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}

describe('engine candidates', () => {
  it('tries DOCKER_HOST, rootful Docker, rootful Podman, rootless Podman in that order', () => {
    const env = { DOCKER_HOST: 'unix:///custom/engine.sock', XDG_RUNTIME_DIR: '/run/user/1000' };
    expect(engineCandidates(env, 'linux', '/fsroot').map((c) => [c.source, c.address])).toEqual([
      ['DOCKER_HOST', 'unix:///custom/engine.sock'],
      ['docker-rootful', '/fsroot/var/run/docker.sock'],
      ['podman-rootful', '/fsroot/run/podman/podman.sock'],
      ['podman-rootless', '/run/user/1000/podman/podman.sock'],
    ]);
  });

  it('skips what the environment does not give and the Linux-only Podman socket elsewhere', () => {
    expect(engineCandidates({}, 'darwin').map((c) => c.source)).toEqual(['docker-rootful']);
    expect(engineCandidates({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }, 'win32')).toEqual([
      { source: 'DOCKER_HOST', host: '127.0.0.1', port: 2375, address: 'tcp://127.0.0.1:2375' },
    ]);
  });

  it('refuses a DOCKER_HOST it cannot use', () => {
    expect(() => parseDockerHost('npipe:////./pipe/docker_engine')).toThrow(
      new TypeError(
        'Expected `DOCKER_HOST` to start with unix:// or tcp://, got `npipe:////./pipe/docker_engine`',
      ),
    );
    expect(() => parseDockerHost('unix://relative.sock')).toThrow(TypeError);
  });

  it('compares API versions numerically', () => {
    expect(compareVersions('1.41', '1.40')).toBe(1);
    expect(compareVersions('1.9', '1.40')).toBe(-1);
    expect(compareVersions('1.40', '1.40.0')).toBe(0);
  });
});

describe('versionFromPingHeaders', () => {
  it('reads Podman and Docker ping headers and falls back to /version otherwise', () => {
    expect(versionFromPingHeaders({ 'api-version': '1.41', 'libpod-api-version': '4.3.1' })).toEqual({
      kind: 'podman',
      version: '4.3.1',
      apiVersion: '1.41',
    });
    expect(versionFromPingHeaders({ 'api-version': '1.43', server: 'Docker/24.0.7 (linux)' })).toEqual({
      kind: 'docker',
      version: '24.0.7',
      apiVersion: '1.43',
    });
    expect(versionFromPingHeaders({ 'api-version': '1.43' })).toBeUndefined();
    expect(versionFromPingHeaders({ 'libpod-api-version': '4.3.1' })).toBeUndefined();
  });
});

describe('probing real sockets', () => {
  let dir: string;
  const servers: http.Server[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-discovery-test-'));
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
    await rm(dir, { recursive: true, force: true });
  });

  it('classifies a current engine, an old one and a missing socket', async () => {
    servers.push(await fakeEngine(path.join(dir, 'new.sock'), '1.41'));
    servers.push(await fakeEngine(path.join(dir, 'old.sock'), '1.24'));
    const at = (name: string) => ({ source: 'test', socketPath: path.join(dir, name), address: name });
    expect(await probeEngine(at('new.sock'), 1_000)).toEqual({
      status: 'ok',
      version: { kind: 'docker', version: '17.03.0-ce', apiVersion: '1.41' },
    });
    expect(await probeEngine(at('old.sock'), 1_000)).toEqual({
      status: 'too-old',
      version: { kind: 'docker', version: '17.03.0-ce', apiVersion: '1.24' },
    });
    expect(await probeEngine(at('none.sock'), 1_000)).toMatchObject({ status: 'unreachable' });
  });

  it('connectEngine takes the first answering candidate and reports its source', async () => {
    const fsRoot = path.join(dir, 'root');
    await mkdir(path.join(fsRoot, 'run/podman'), { recursive: true });
    servers.push(await fakeEngine(path.join(fsRoot, 'run/podman/podman.sock'), '1.41'));
    await using engine = await connectEngine({
      env: { DOCKER_HOST: `unix://${dir}/nothing.sock` },
      logger,
      fileSystemRoot: fsRoot,
      startPrivateService: false,
    });
    expect(engine.info).toEqual({
      kind: 'docker',
      version: '17.03.0-ce',
      apiVersion: '1.41',
      source: 'podman-rootful',
      socketPath: path.join(fsRoot, 'run/podman/podman.sock'),
    });
    expect(engine.serviceCpuSeconds()).toBeNull();
  });

  it('E_ENGINE_TOO_OLD names the engine and the versions', async () => {
    servers.push(await fakeEngine(path.join(dir, 'old.sock'), '1.24'));
    const error = await errorOf(
      connectEngine({
        env: { DOCKER_HOST: `unix://${dir}/old.sock` },
        logger,
        fileSystemRoot: dir,
        startPrivateService: false,
      }),
    );
    expect(error.code).toBe('E_ENGINE_TOO_OLD');
    expect(error.message).toBe(
      `the engine at unix://${dir}/old.sock (docker 17.03.0-ce) speaks Docker API 1.24; ovmf-build needs 1.40 or later`,
    );
  });

  it('E_ENGINE_NOT_FOUND lists every candidate tried', async () => {
    const error = await errorOf(
      connectEngine({
        env: { DOCKER_HOST: `unix://${dir}/nothing.sock`, XDG_RUNTIME_DIR: dir, PATH: dir },
        logger,
        fileSystemRoot: dir,
      }),
    );
    expect(error.code).toBe('E_ENGINE_NOT_FOUND');
    const tried = error.details['tried'] as { source: string; address: string; outcome: string }[];
    expect(tried.map((t) => [t.source, t.address])).toEqual([
      ['DOCKER_HOST', `unix://${dir}/nothing.sock`],
      ['docker-rootful', `${dir}/var/run/docker.sock`],
      ['podman-rootful', `${dir}/run/podman/podman.sock`],
      ['podman-rootless', `${dir}/podman/podman.sock`],
      ['podman-private-service', 'podman on PATH'],
    ]);
    expect(tried.at(-1)?.outcome).toBe('no podman binary on PATH');
  });

  it.runIf(process.getuid?.() === 0)(
    'E_ENGINE_PERMISSION_DENIED for a socket the user may not open (run as uid 65534)',
    async () => {
      await chmod(dir, 0o755);
      const socketPath = path.join(dir, 'private.sock');
      servers.push(await fakeEngine(socketPath, '1.41'));
      await chmod(socketPath, 0o600);
      const script = path.join(dir, 'child.mts');
      await writeFile(
        script,
        [
          `import { connectEngine } from ${JSON.stringify(path.join(repoRoot, 'src/container/engine.ts'))};`,
          'const logger = { debug() {}, info() {}, warn() {}, child() { return logger; } };',
          'try {',
          `  await connectEngine({ env: { DOCKER_HOST: ${JSON.stringify(`unix://${socketPath}`)} }, logger, fileSystemRoot: ${JSON.stringify(dir)}, startPrivateService: false });`,
          "  console.log(JSON.stringify({ code: 'connected' }));",
          '} catch (error) {',
          '  console.log(JSON.stringify({ code: error.code, message: error.message }));',
          '}',
        ].join('\n'),
      );
      await chmod(script, 0o644);
      const child = spawn(path.join(repoRoot, 'node_modules/.bin/tsx'), [script], {
        uid: 65_534,
        gid: 65_534,
        env: { PATH: process.env['PATH'] ?? '', HOME: dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exitCode = await new Promise((resolve) => child.on('close', resolve));
      expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: '' });
      const result = JSON.parse(stdout) as { code: string; message: string };
      expect(result.code).toBe('E_ENGINE_PERMISSION_DENIED');
      expect(result.message).toContain(`permission denied on the engine socket unix://${socketPath}`);
    },
  );
});
