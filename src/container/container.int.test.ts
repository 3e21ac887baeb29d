// Real Podman through its Docker API (the private service connectEngine
// starts on this machine): the builder image, the locked-down run, inputs
// and outputs, abort, leftovers and the engine's CPU while streaming logs.
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine, testLogger } from '../../test/harness.js';
import { errorOf } from '../../test/rejection.js';
import { connectEngine } from './index.js';
import type { BuilderImage, ContainerEngine, RunResult, RunSpec } from './index.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const contextDir = path.join(repoRoot, 'containers/edk2-builder');
const repository = 'localhost/ovmf-build/edk2-builder';
const logger = testLogger();
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

let engine: ContainerEngine;
let docker: Docker;
let image: BuilderImage;
let tmp: string;

async function containersOfJob(jobId: string): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`ovmf-build.job=${jobId}`] } });
  return list.map((c) => c.Id);
}

/**
 * Runs `lines` (an ES module that may import pino and the container layer as `pino` and
 * `connectEngine`) in a child node process (tsx as a loader, not its wrapper CLI, so the
 * child's pid is the owner-pid on the labels).
 */
async function spawnOwner(
  name: string,
  lines: readonly string[],
): Promise<ChildProcessByStdio<null, Readable, null>> {
  const script = path.join(tmp, `${name}.mts`);
  await writeFile(
    script,
    [
      `import pino from ${JSON.stringify(path.join(repoRoot, 'node_modules/pino/pino.js'))};`,
      `import { connectEngine } from ${JSON.stringify(path.join(repoRoot, 'src/container/index.ts'))};`,
      ...lines,
    ].join('\n'),
  );
  return spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Runs a shell script in the builder image under this file's logger; `spec` gives the rest. */
function runScript(script: string, spec: Omit<RunSpec, 'image' | 'cmd' | 'logger'>): Promise<RunResult> {
  return engine.run({ image: image.ref, cmd: ['sh', '-c', script], logger, ...spec });
}

function jobId(name: string): string {
  return `test-${name}-${randomBytes(4).toString('hex')}`;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-container-int-'));
  engine = await testEngine(logger);
  docker = new Docker({ socketPath: engine.info.socketPath });
  // Built once on a fresh machine (debootstrap + apt, a few minutes), reused afterwards.
  image = await engine.ensureBuilderImage({ contextDir, repository, logger });
});

afterAll(async () => {
  await engine?.[Symbol.asyncDispose]();
  await rm(tmp, { recursive: true, force: true });
});

describe('engine and builder image', () => {
  it('found or started a Podman engine speaking a current Docker API', () => {
    expect(engine.info.kind).toBe('podman');
    expect(Number(engine.info.apiVersion.split('.')[1])).toBeGreaterThanOrEqual(40);
  });

  it('discovers the real engine in order: DOCKER_HOST, then the well-known sockets', async () => {
    const fsRoot = path.join(tmp, 'fsroot');
    await mkdir(path.join(fsRoot, 'var/run'), { recursive: true });
    await mkdir(path.join(fsRoot, 'run/podman'), { recursive: true });
    await mkdir(path.join(fsRoot, 'xdg/podman'), { recursive: true });
    const socket = engine.info.socketPath;
    await symlink(socket, path.join(fsRoot, 'run/podman/podman.sock'));
    await symlink(socket, path.join(fsRoot, 'xdg/podman/podman.sock'));
    const connect = async (env: NodeJS.ProcessEnv): Promise<string> => {
      await using found = await connectEngine({
        env,
        logger,
        fileSystemRoot: fsRoot,
        startPrivateService: false,
      });
      expect(found.info.kind).toBe('podman');
      return `${found.info.source} ${found.info.socketPath}`;
    };
    const xdg = path.join(fsRoot, 'xdg');
    expect(await connect({ DOCKER_HOST: `unix://${socket}`, XDG_RUNTIME_DIR: xdg })).toBe(
      `DOCKER_HOST ${socket}`,
    );
    expect(await connect({ DOCKER_HOST: `unix://${tmp}/none.sock`, XDG_RUNTIME_DIR: xdg })).toBe(
      `podman-rootful ${fsRoot}/run/podman/podman.sock`,
    );
    await rm(path.join(fsRoot, 'run/podman/podman.sock'));
    expect(await connect({ XDG_RUNTIME_DIR: xdg })).toBe(`podman-rootless ${xdg}/podman/podman.sock`);
    await symlink(socket, path.join(fsRoot, 'var/run/docker.sock'));
    expect(await connect({ XDG_RUNTIME_DIR: xdg })).toBe(`docker-rootful ${fsRoot}/var/run/docker.sock`);
  });

  it('reuses an unchanged recipe by its digest tag', async () => {
    const again = await engine.ensureBuilderImage({ contextDir, repository, logger });
    // On a cold machine the first call made the base image (source 'debootstrap'); from then
    // on it is found locally.
    expect(again).toEqual({ ...image, built: false, baseImage: { ...image.baseImage, source: 'local' } });
    expect(image.ref).toMatch(/^localhost\/ovmf-build\/edk2-builder:[0-9a-f]{16}$/);
    expect(await engine.imageId(image.ref)).toBe(image.id);
    expect(image.details.files['Containerfile']).toBe(
      `644:${sha256(await readFile(path.join(contextDir, 'Containerfile')))}`,
    );
  });

  it('makes a new image for a changed recipe', async () => {
    const changed = path.join(tmp, 'changed-context');
    await cp(contextDir, changed, { recursive: true });
    await writeFile(
      path.join(changed, 'Containerfile'),
      `${await readFile(path.join(changed, 'Containerfile'), 'utf8')}# changed by a test\n`,
    );
    const other = await engine.ensureBuilderImage({ contextDir: changed, repository, logger });
    try {
      expect(other.built).toBe(true);
      expect(other.ref).not.toBe(image.ref);
      expect(other.details.context).not.toBe(image.details.context);
      expect(other.details.baseImage).toBe(image.details.baseImage);
    } finally {
      await engine.removeImage(other.ref);
    }
    expect(await engine.imageId(other.ref)).toBeNull();
    expect(await engine.imageId(image.ref)).toBe(image.id);
  });
});

describe('run', () => {
  it('runs locked down: no network, uid 1000, limits, no capabilities, no-new-privileges', async () => {
    const id = jobId('lockdown');
    const out: string[] = [];
    const probe = [
      'id -u; id -g',
      'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
      'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max',
      'grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs):" /proc/self/status | tr -d "\\t"',
      "python3 -c \"import socket\ntry:\n socket.create_connection(('192.0.2.1', 80), timeout=5)\nexcept OSError as e:\n print('connect errno', e.errno)\"",
    ].join('; ');
    const result = await runScript(probe, {
      jobId: id,
      purpose: 'lockdown-test',
      limits: { memoryBytes: 300 * 1024 * 1024, pids: 321 },
      onLine: (line, stream) => out.push(`${stream}: ${line}`),
    });
    expect(result.exitCode).toBe(0);
    expect(out).toEqual([
      'stdout: 1000',
      'stdout: 1000',
      'stdout: lo',
      `stdout: ${300 * 1024 * 1024}`,
      'stdout: 321',
      'stdout: CapPrm:0000000000000000',
      'stdout: CapEff:0000000000000000',
      'stdout: CapBnd:0000000000000000',
      'stdout: NoNewPrivs:1',
      // ENETUNREACH: the container has only a loopback interface.
      'stdout: connect errno 101',
    ]);
    expect(result.tailLines).toEqual(out.map((l) => l.replace(/^stdout: /, '')));
    expect(await containersOfJob(id)).toEqual([]);
  });

  it('gives the container the CPU weight asked for (limits.cpuShares, OVMF_BUILD_CPU_SHARES)', async () => {
    const id = jobId('cpu-shares');
    const out: string[] = [];
    const result = await runScript(
      'cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight',
      {
        jobId: id,
        purpose: 'cpu-shares-test',
        limits: { cpuShares: 256 },
        onLine: (line) => out.push(line),
      },
    );
    expect(result.exitCode).toBe(0);
    // cgroup v1 keeps the shares; on v2 the runtime writes cpu.weight = 1 + (shares - 2) * 9999 / 262142.
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    expect(out).toEqual([v2 ? String(1 + Math.floor(((256 - 2) * 9999) / 262_142)) : '256']);
    expect(await containersOfJob(id)).toEqual([]);
  });

  it('puts files and trees in owned by 1000 and fetches outputs byte-exact', async () => {
    const tree = path.join(tmp, 'tree');
    await mkdir(path.join(tree, 'sub/deeper'), { recursive: true });
    const blob = randomBytes(3 * 1024 * 1024 + 17);
    const small = randomBytes(4097);
    await writeFile(path.join(tree, 'sub/deeper/blob.bin'), blob);
    await writeFile(path.join(tree, 'tool.sh'), '#!/bin/sh\necho tool ran\n', { mode: 0o755 });
    await symlink('deeper/blob.bin', path.join(tree, 'sub/link'));
    const out: string[] = [];
    const script = [
      'set -e',
      'stat -c "%n %u:%g %a" /edk2 /edk2/in /edk2/in/sub/deeper/blob.bin /edk2/in/tool.sh /opt/new /opt/new/deep /opt/new/deep/small.bin /tmp /tmp/x.txt',
      'readlink /edk2/in/sub/link',
      '/edk2/in/tool.sh',
      'mkdir -p /edk2/out/FV',
      'cp /edk2/in/sub/deeper/blob.bin /edk2/out/FV/OVMF_CODE.fd',
      'cp /opt/new/deep/small.bin /edk2/out/FV/OVMF_VARS.fd',
      'echo report > /edk2/out/report.txt',
    ].join('\n');
    const result = await runScript(script, {
      jobId: jobId('io'),
      purpose: 'io-test',
      files: [
        { path: '/opt/new/deep/small.bin', data: small, mode: 0o600 },
        { path: '/tmp/x.txt', data: new TextEncoder().encode('x\n') },
      ],
      directories: [{ hostDir: tree, containerDir: '/edk2/in' }],
      outputs: ['/edk2/out/FV', '/edk2/out/report.txt'],
      onLine: (line) => out.push(line),
    });
    expect(out).toEqual([
      '/edk2 1000:1000 755',
      '/edk2/in 1000:1000 755',
      '/edk2/in/sub/deeper/blob.bin 1000:1000 644',
      '/edk2/in/tool.sh 1000:1000 755',
      '/opt/new 1000:1000 755',
      '/opt/new/deep 1000:1000 755',
      '/opt/new/deep/small.bin 1000:1000 600',
      // An existing system directory keeps its owner and mode.
      '/tmp 0:0 1777',
      '/tmp/x.txt 1000:1000 644',
      'deeper/blob.bin',
      'tool ran',
    ]);
    expect(result.exitCode).toBe(0);
    expect([...result.outputs.keys()].sort()).toEqual(['FV/OVMF_CODE.fd', 'FV/OVMF_VARS.fd', 'report.txt']);
    expect(sha256(result.outputs.get('FV/OVMF_CODE.fd') ?? new Uint8Array())).toBe(sha256(blob));
    expect(sha256(result.outputs.get('FV/OVMF_VARS.fd') ?? new Uint8Array())).toBe(sha256(small));
    expect(new TextDecoder().decode(result.outputs.get('report.txt'))).toBe('report\n');
  });

  it('refuses a symlink in the outputs with E_ARCHIVE_UNSAFE_ENTRY and removes the container', async () => {
    const id = jobId('unsafe-output');
    const error = await errorOf(
      runScript('mkdir -p /edk2/out && echo data > /edk2/out/a && ln -s /etc/shadow /edk2/out/b', {
        jobId: id,
        purpose: 'unsafe-output-test',
        outputs: ['/edk2/out'],
      }),
    );
    expect(error.code).toBe('E_ARCHIVE_UNSAFE_ENTRY');
    expect(error.details).toEqual({
      entry: 'out/b',
      reason: 'entry type symlink is not allowed',
      type: 'symlink',
      linkname: '/etc/shadow',
    });
    expect(await containersOfJob(id)).toEqual([]);
  });

  it('returns a non-zero exit code with the tail of the log and no outputs', async () => {
    const id = jobId('fail');
    const result = await runScript(
      'for i in $(seq 1 250); do echo "line $i"; done; echo "error: module X failed" >&2; exit 3',
      { jobId: id, purpose: 'fail-test', outputs: ['/edk2'] },
    );
    expect(result.exitCode).toBe(3);
    expect(result.outputs.size).toBe(0);
    expect(result.tailLines).toHaveLength(200);
    expect(result.tailLines.at(-1)).toBe('error: module X failed');
    expect(result.tailLines[0]).toBe('line 52');
    expect(await containersOfJob(id)).toEqual([]);
  });

  it('refuses root unless allowed, before creating anything', async () => {
    const id = jobId('root');
    const error = await errorOf(
      engine.run({ image: image.ref, cmd: ['id'], user: '0:0', jobId: id, purpose: 'root-test', logger }),
    );
    expect(error.code).toBe('E_CONTAINER_ROOT_REFUSED');
    expect(await containersOfJob(id)).toEqual([]);
    const allowed = await engine.run({
      image: image.ref,
      cmd: ['id', '-u'],
      user: '0:0',
      allowRoot: true,
      jobId: id,
      purpose: 'root-test',
      logger,
    });
    expect(allowed.tailLines).toEqual(['0']);
  });

  it('names a missing image and a command that cannot start with coded errors, leaving nothing behind', async () => {
    const id = jobId('bad');
    const missing = await errorOf(
      engine.run({
        image: 'localhost/ovmf-build/no-such-image:0',
        cmd: ['true'],
        jobId: id,
        purpose: 'bad-test',
        logger,
      }),
    );
    expect({ code: missing.code, message: missing.message }).toEqual({
      code: 'E_IMAGE_NOT_FOUND',
      message: 'image localhost/ovmf-build/no-such-image:0 is not in the engine',
    });
    const unstartable = await errorOf(
      engine.run({ image: image.ref, cmd: ['/no/such/binary'], jobId: id, purpose: 'bad-test', logger }),
    );
    expect(unstartable.code).toBe('E_CONTAINER_START_FAILED');
    expect(unstartable.message).toMatch(/^starting the container failed: .*\/no\/such\/binary/);
    expect(await containersOfJob(id)).toEqual([]);
  });

  it('commits the container to an image on request, after handing the outputs to onOutputs', async () => {
    const ref = `localhost/ovmf-build/test-commit:${randomBytes(4).toString('hex')}`;
    const handed: ReadonlyMap<string, Uint8Array>[] = [];
    const result = await runScript(
      'echo committed > /edk2/marker; mkdir -p /edk2/out; printf early > /edk2/out/early.txt',
      {
        jobId: jobId('commit'),
        purpose: 'commit-test',
        commitAs: ref,
        outputs: ['/edk2/out'],
        onOutputs: (outputs) => handed.push(outputs),
      },
    );
    try {
      expect(result.exitCode).toBe(0);
      expect(handed).toHaveLength(1);
      expect(handed[0]).toBe(result.outputs);
      const early = [...result.outputs].find(([name]) => name.endsWith('early.txt'))?.[1];
      expect(new TextDecoder().decode(early)).toBe('early');
      expect(result.committedImageId).toMatch(/^(sha256:)?[0-9a-f]{64}$/);
      expect((await engine.imageId(ref))?.replace(/^sha256:/, '')).toBe(
        result.committedImageId?.replace(/^sha256:/, ''),
      );
      const check = await engine.run({
        image: ref,
        cmd: ['cat', '/edk2/marker'],
        jobId: jobId('commit'),
        purpose: 'commit-test',
        logger,
      });
      expect(check.tailLines).toEqual(['committed']);
    } finally {
      await engine.removeImage(ref);
    }
  });

  it('an abort mid-run stops and removes the container and throws E_ABORTED', async () => {
    const id = jobId('abort');
    const controller = new AbortController();
    let seenWhileRunning: string[] = [];
    const started = performance.now();
    const error = await errorOf(
      engine.run({
        image: image.ref,
        cmd: ['sh', '-c', 'echo started; exec sleep 300'],
        jobId: id,
        purpose: 'abort-test',
        logger,
        signal: controller.signal,
        onLine: (line) => {
          if (line === 'started') {
            void containersOfJob(id).then((ids) => {
              seenWhileRunning = ids;
              controller.abort(new Error('test abort'));
            });
          }
        },
      }),
    );
    expect(error.code).toBe('E_ABORTED');
    expect(seenWhileRunning).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(await containersOfJob(id)).toEqual([]);
  });
});

describe('leftovers', () => {
  it('removes the container of a SIGKILLed owner, found by label, and keeps a live owner’s', async () => {
    const id = jobId('killed-owner');
    const child = await spawnOwner('owner', [
      "const logger = pino({ level: 'silent' });",
      `const engine = await connectEngine({ env: { DOCKER_HOST: ${JSON.stringify(`unix://${engine.info.socketPath}`)} }, logger, startPrivateService: false });`,
      `await engine.run({ image: ${JSON.stringify(image.ref)}, cmd: ['sh', '-c', 'echo ready; exec sleep 300'], jobId: ${JSON.stringify(id)}, purpose: 'owner-test', logger,`,
      "  onLine: (line) => { if (line === 'ready') console.log(`READY ${process.pid}`); } });",
    ]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const liveId = jobId('live-owner');
    const controller = new AbortController();
    let live: Promise<unknown> | undefined;
    try {
      const ownerPid = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          const match = /READY (\d+)/.exec(chunk.toString());
          if (match?.[1] !== undefined) {
            resolve(Number(match[1]));
          }
        });
        child.once('exit', () => reject(new Error('owner exited before its container was ready')));
      });
      expect(ownerPid).toBe(child.pid);
      // A live owner (this process, mid-run) must not lose its container to a cleanup.
      live = engine
        .run({
          image: image.ref,
          cmd: ['sh', '-c', 'exec sleep 300'],
          jobId: liveId,
          purpose: 'live-owner-test',
          logger,
          signal: controller.signal,
        })
        .catch((error: unknown) => error);
      for (let i = 0; (await containersOfJob(liveId)).length === 0 && i < 100; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const orphans = await containersOfJob(id);
      expect(orphans).toHaveLength(1);
      child.kill('SIGKILL');
      await exited;
      expect(await containersOfJob(id)).toEqual(orphans);
      // Scoped to the test's jobs so that other runs' leftovers on this machine do not change the answer.
      expect(await engine.removeLeftovers({ jobId: liveId })).toEqual([]);
      expect(await engine.removeLeftovers({ jobId: id })).toEqual(orphans);
      expect(await containersOfJob(id)).toEqual([]);
      expect(await containersOfJob(liveId)).toHaveLength(1);
    } finally {
      child.kill('SIGKILL');
      controller.abort();
    }
    expect(((await live) as { code?: string }).code).toBe('E_ABORTED');
    expect(await containersOfJob(liveId)).toEqual([]);
  });
});

describe('private service', () => {
  it('dies with its owner even on SIGKILL, and cleanup removes the dangling socket dir', async () => {
    const fsRoot = await mkdtemp(path.join(tmp, 'empty-root-'));
    const child = await spawnOwner('service-owner', [
      `const engine = await connectEngine({ env: { PATH: process.env.PATH }, logger: pino({ level: 'silent' }), fileSystemRoot: ${JSON.stringify(fsRoot)} });`,
      'console.log(JSON.stringify(engine.info));',
      'setInterval(() => undefined, 1_000);',
    ]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const info = await new Promise<{ source: string; socketPath: string; servicePid: number }>(
      (resolve, reject) => {
        let text = '';
        child.stdout.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('\n')) {
            resolve(JSON.parse(text) as { source: string; socketPath: string; servicePid: number });
          }
        });
        child.once('exit', () => reject(new Error('service owner exited early')));
      },
    );
    expect(info.source).toBe('podman-private-service');
    const alive = (pid: number): boolean => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    expect(alive(info.servicePid)).toBe(true);
    child.kill('SIGKILL');
    await exited;
    for (let i = 0; alive(info.servicePid) && i < 100; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(alive(info.servicePid)).toBe(false);
    const serviceDir = path.dirname(info.socketPath);
    expect(existsSync(serviceDir)).toBe(true);
    await engine.removeLeftovers({ jobId: 'no-such-job' });
    expect(existsSync(serviceDir)).toBe(false);
  });
});

describe('engine CPU while streaming logs', () => {
  it('streams 50k lines over ~20 s line by line at a small engine CPU cost', async () => {
    const cpuBefore = engine.serviceCpuSeconds();
    const producer = [
      'import sys, time',
      'for i in range(50000):',
      "    sys.stdout.write(f'line {i:05d} ' + 'x' * 60 + '\\n')",
      '    if i % 250 == 249:',
      '        sys.stdout.flush()',
      '        time.sleep(0.1)',
    ].join('\n');
    let count = 0;
    let last = '';
    let ordered = true;
    /** The first line that is neither the expected one nor a cut of it, with its position. */
    let firstMismatch: { at: number; line: string } | null = null;
    /**
     * Lines that arrived as a strict prefix of the expected line, in place. Podman 4.3 follows a
     * k8s-file log with nxadm/tail, which can return a line the writer is still appending to as
     * it stands and drop the rest (nxadm/tail issues 20 and 55, fixed by its CompleteLines
     * option; podman issue 21914). One CI run of 3 December got 50,000 lines, the last one right,
     * and one not in order. A rehearsal of 4 December got 49,999 lines: line 21264 was missing and
     * the next one stood in its place. The likely cause, not checked in Podman's source, is the
     * same cut falling inside the k8s-file entry's own header (timestamp, stream, tag), so that
     * neither half parses as an entry. Our splitter cuts only lines over 64 KiB, and all of their
     * pieces arrive (line-splitter.test.ts), so a cut in place, or one line missing with the next
     * one right after, is the engine's; anything else (reordered, repeated, other lines) fails.
     * The cut can fall right after the header: the rehearsal of f6847f3 (5 December) got line
     * 10792 as an empty line in place, and all 50,000 lines in order around it.
     */
    const cutByEngine: { at: number; line: string }[] = [];
    /** Line `i` exactly as the producer above writes it. */
    const producedLine = (i: number): string => `line ${String(i).padStart(5, '0')} ${'x'.repeat(60)}`;
    const result = await engine.run({
      image: image.ref,
      cmd: ['python3', '-c', producer],
      jobId: jobId('stream'),
      purpose: 'stream-test',
      logger,
      onLine: (line) => {
        const expected = producedLine(count);
        if (line !== expected) {
          if (expected.startsWith(line)) {
            cutByEngine.push({ at: count, line });
          } else if (line === producedLine(count + 1)) {
            // The expected line was lost whole (see above): count it as the engine's cut.
            cutByEngine.push({ at: count, line: '' });
            count += 1;
          } else {
            ordered = false;
            firstMismatch ??= { at: count, line: line.slice(0, 120) };
          }
        }
        count += 1;
        last = line;
      },
    });
    const cpuAfter = engine.serviceCpuSeconds();
    expect(result.exitCode).toBe(0);
    if (cutByEngine.length > 0) {
      console.log(
        `lines the engine's log reader cut short (podman issue 21914): ${JSON.stringify(cutByEngine)}`,
      );
    }
    expect(cutByEngine.length).toBeLessThanOrEqual(3);
    expect({ count, ordered, firstMismatch, last: last.slice(0, 10) }).toEqual({
      count: 50_000,
      ordered: true,
      firstMismatch: null,
      last: 'line 49999',
    });
    if (cpuBefore !== null && cpuAfter !== null) {
      const used = cpuAfter - cpuBefore;
      console.log(
        `engine CPU while streaming 50k lines in ${(result.durationMs / 1000).toFixed(1)} s: ${used.toFixed(2)} s ` +
          `(${((100 * used * 1000) / result.durationMs).toFixed(1)}% of one core)`,
      );
      // The condition-less wait alone would cost ~100% of a core for the whole run.
      expect(used * 1000).toBeLessThan(result.durationMs * 0.5);
    } else {
      expect(engine.info.source).not.toBe('podman-private-service');
    }
  });
});
