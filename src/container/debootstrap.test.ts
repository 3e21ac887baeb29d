import { spawn, execFileSync } from 'node:child_process';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { errorOf } from '../../test/rejection.js';
import { tempDirPerTest } from '../../test/temp-dir.js';
import { isRunning, pidsOf } from '../../test/proc-state.js';
import { debootstrapInputs, packRootfs, runLogged } from './debootstrap.js';
import { removeDanglingServices, SERVICE_DIR_PREFIX } from './private-service.js';

const dir = tempDirPerTest('ovmf-build-debootstrap-test-');

describe('debootstrap inputs', () => {
  it('take the first bookworm deb entry of the apt configuration', async () => {
    await mkdir(path.join(dir(), 'sources.list.d'));
    const files = {
      'sources.list': 'deb-src http://src.invalid/debian bookworm main\n',
      'sources.list.d/a.sources':
        'Types: deb\nURIs: https://secure.invalid/debian\nSuites: bookworm-security\n\nTypes: deb\nURIs: https://main.invalid/debian\nSuites: bookworm\n',
      'sources.list.d/b.list': 'deb http://later.invalid/debian bookworm main\n',
      // Not a sources file name: apt ignores it, and so must the mirror choice.
      'sources.list.d/c.list.disabled': 'deb http://off.invalid/debian bookworm main\n',
    };
    for (const [name, text] of Object.entries(files)) {
      await writeFile(path.join(dir(), name), text);
    }
    expect(await debootstrapInputs(dir(), 'bookworm')).toEqual({
      suite: 'bookworm',
      variant: 'minbase',
      mirror: 'https://main.invalid/debian',
      include: ['ca-certificates'],
      arch: 'amd64',
    });
  });

  it('fail with E_IMAGE_BASE_UNAVAILABLE when no entry has the suite', async () => {
    await writeFile(path.join(dir(), 'sources.list'), 'deb http://old.invalid/debian bullseye main\n');
    expect((await errorOf(debootstrapInputs(dir(), 'bookworm'))).code).toBe('E_IMAGE_BASE_UNAVAILABLE');
  });
});

describe('packRootfs', () => {
  it('keeps owners, modes, symlinks and hardlinks, and skips fifos', async () => {
    const root = path.join(dir(), 'rootfs');
    await mkdir(path.join(root, 'usr/bin'), { recursive: true });
    await writeFile(path.join(root, 'usr/bin/tool'), 'ELF', { mode: 0o4755 });
    await link(path.join(root, 'usr/bin/tool'), path.join(root, 'usr/bin/tool2'));
    await symlink('usr/bin', path.join(root, 'bin'));
    execFileSync('mkfifo', [path.join(root, 'usr/fifo')]);
    const seen: string[] = [];
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      seen.push(
        `${header.type} ${header.name} ${header.mode.toString(8)} ${header.uid}:${header.gid} ${header.linkname ?? ''}`.trim(),
      );
      stream.resume();
      stream.on('end', () => next());
    });
    const done = new Promise<void>((resolve) => extract.on('finish', () => resolve()));
    packRootfs(root).pipe(extract as unknown as NodeJS.WritableStream);
    await done;
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    expect(seen).toEqual([
      `symlink bin 777 ${uid}:${gid} usr/bin`,
      `directory usr 755 ${uid}:${gid}`,
      `directory usr/bin 755 ${uid}:${gid}`,
      `file usr/bin/tool 4755 ${uid}:${gid}`,
      `link usr/bin/tool2 4755 ${uid}:${gid} usr/bin/tool`,
    ]);
  });
});

describe('bootstrapBaseImage', () => {
  it.runIf(process.getuid?.() === 0)('refuses to run debootstrap without root (as uid 65534)', async () => {
    const { chmod } = await import('node:fs/promises');
    await chmod(dir(), 0o755);
    const script = path.join(dir(), 'child.mts');
    const module = path.resolve(import.meta.dirname, 'debootstrap.ts');
    await writeFile(
      script,
      [
        `import { bootstrapBaseImage } from ${JSON.stringify(module)};`,
        'const logger = { debug() {}, info() {} };',
        "const inputs = { suite: 'bookworm', variant: 'minbase', mirror: 'http://mirror.invalid/debian', include: [], arch: 'amd64' };",
        "try { await bootstrapBaseImage({ docker: null, inputs, ref: 'localhost/x:y', logger }); console.log('ran'); }",
        'catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message })); }',
      ].join('\n'),
    );
    await chmod(script, 0o644);
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      uid: 65_534,
      gid: 65_534,
      env: { PATH: process.env['PATH'] ?? '', HOME: dir() },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    await new Promise((resolve) => child.on('close', resolve));
    expect(JSON.parse(stdout)).toEqual({
      code: 'E_IMAGE_BASE_UNAVAILABLE',
      message:
        'no Debian base image is available and bootstrapping one with debootstrap needs root: pull a base image ' +
        '(`podman pull debian:bookworm-slim`) or run this once as root',
    });
  });
});

const quiet = { debug() {}, info() {} } as unknown as Parameters<typeof runLogged>[2];

describe('runLogged, the way debootstrap runs', () => {
  it('resolves with the exit code and the last lines printed', async () => {
    const result = await runLogged(
      'sh',
      ['-c', 'for i in $(seq 1 40); do echo line $i; done; exit 3'],
      quiet,
      undefined,
    );
    expect(result.exitCode).toBe(3);
    expect(result.tail).toEqual(Array.from({ length: 30 }, (_, i) => `line ${i + 11}`));
  });

  it('a command that is not installed is E_IMAGE_BASE_UNAVAILABLE, cannot run', async () => {
    const error = await errorOf(runLogged('ovmf-build-no-such-tool', [], quiet, undefined));
    expect([error.code, error.message]).toEqual([
      'E_IMAGE_BASE_UNAVAILABLE',
      'cannot run ovmf-build-no-such-tool: spawn ovmf-build-no-such-tool ENOENT',
    ]);
  });

  it.runIf(process.getuid?.() === 0)(
    'an abort kills the whole tree at once (unshare ignores SIGTERM) and rejects with E_ABORTED',
    async () => {
      const controller = new AbortController();
      const run = runLogged('sh', ['-c', 'sleep 331 & sleep 332'], quiet, controller.signal);
      let sleeps = new Map<string, number>();
      const deadline = Date.now() + 10_000;
      while (sleeps.size < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        sleeps = pidsOf('sleep', ['331', '332']);
      }
      try {
        expect([...sleeps.keys()].sort()).toEqual(['331', '332']);
        controller.abort();
        expect((await errorOf(run)).code).toBe('E_ABORTED');
        const gone = Date.now() + 5_000;
        while ([...sleeps.values()].some(isRunning) && Date.now() < gone)
          await new Promise((r) => setTimeout(r, 20));
        expect([...sleeps.values()].map(isRunning)).toEqual([false, false]);
      } finally {
        for (const pid of sleeps.values()) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    },
  );
});

describe('removeDanglingServices', () => {
  it('removes service dirs of dead owners and keeps those of live ones', async () => {
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid;
    await new Promise((resolve) => dead.on('exit', resolve));
    const gone = path.join(dir(), `${SERVICE_DIR_PREFIX}gone`);
    const alive = path.join(dir(), `${SERVICE_DIR_PREFIX}alive`);
    const orphanNoOwner = path.join(dir(), `${SERVICE_DIR_PREFIX}noowner`);
    const justCreated = path.join(dir(), `${SERVICE_DIR_PREFIX}new`);
    for (const d of [gone, alive, orphanNoOwner, justCreated]) {
      await mkdir(d);
    }
    // A dir without owner file is only abandoned once it is old: a live process may be between mkdtemp and writeFile.
    const { utimes } = await import('node:fs/promises');
    await utimes(orphanNoOwner, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    await writeFile(path.join(gone, 'owner.json'), JSON.stringify({ ownerPid: deadPid, ownerStart: null }));
    await writeFile(
      path.join(alive, 'owner.json'),
      JSON.stringify({ ownerPid: process.pid, ownerStart: null }),
    );
    await mkdir(path.join(dir(), 'unrelated'));
    expect(removeDanglingServices(dir()).sort()).toEqual([gone, orphanNoOwner].sort());
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(dir())).sort()).toEqual([
      `${SERVICE_DIR_PREFIX}alive`,
      `${SERVICE_DIR_PREFIX}new`,
      'unrelated',
    ]);
  });
});
