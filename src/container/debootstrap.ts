// A Debian base image without a registry: debootstrap a minimal rootfs from
// the host's own apt mirror, pack it with tar-stream and import it through
// the engine API (POST /images/create?fromSrc=-).
import { spawn } from 'node:child_process';
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { AbortError, OvmfBuildError } from '../core/errors.js';
import { diesWithParentTree, locate } from '../core/exec-path.js';
import type { ErrorCode } from '../core/error-codes.js';
import { findMirror } from './apt-sources.js';
import { rootfsImportOptions } from './podman-quirks.js';
import type { AptSource } from './apt-sources.js';
import { LineSplitter, TailBuffer } from './line-splitter.js';
import { addEntry, addFileFromDisk, packFrom } from './tar.js';
import type { Pack } from './tar.js';

export interface DebootstrapInputs {
  readonly suite: string;
  readonly variant: 'minbase';
  readonly mirror: string;
  readonly include: readonly string[];
  readonly arch: string;
}

/** Reads sources.list and sources.list.d (*.list, *.sources) under `aptDir` in apt's order. */
export async function readAptSourceFiles(aptDir: string): Promise<{ name: string; text: string }[]> {
  const files: { name: string; text: string }[] = [];
  const main = path.join(aptDir, 'sources.list');
  await readFile(main, 'utf8').then(
    (text) => files.push({ name: main, text }),
    () => undefined,
  );
  const partsDir = path.join(aptDir, 'sources.list.d');
  const names = await readdir(partsDir).catch(() => [] as string[]);
  for (const name of names.sort()) {
    if (name.endsWith('.list') || name.endsWith('.sources')) {
      const full = path.join(partsDir, name);
      files.push({ name: full, text: await readFile(full, 'utf8') });
    }
  }
  return files;
}

export async function debootstrapInputs(aptDir: string, suite: string): Promise<DebootstrapInputs> {
  const mirror: AptSource | undefined = findMirror(await readAptSourceFiles(aptDir), suite);
  if (mirror === undefined) {
    throw new OvmfBuildError(
      'E_IMAGE_BASE_UNAVAILABLE',
      `no \`deb\` entry for suite ${suite} in ${aptDir}/sources.list or sources.list.d: cannot debootstrap a base image`,
      { aptDir, suite },
    );
  }
  return {
    suite,
    variant: 'minbase',
    mirror: mirror.uri,
    // An https mirror needs the CA bundle inside the image for the builder's apt-get.
    include: mirror.uri.startsWith('https:') ? ['ca-certificates'] : [],
    arch: 'amd64',
  };
}

/**
 * Runs `command args` confined (diesWithParentTree), its output lines logged at debug, and
 * resolves with its exit code and last lines; an abort kills the whole tree and rejects with
 * E_ABORTED. Exported for tests.
 */
export function runLogged(
  command: string,
  args: readonly string[],
  logger: Logger,
  signal: AbortSignal | undefined,
): Promise<{ exitCode: number; tail: string[] }> {
  return new Promise((resolve, reject) => {
    // In namespaces of its own, dying with this process (core/exec-path.ts): a kill -9 of
    // ovmf-build mid-bootstrap leaves no dpkg running and no mount inside the temp directory.
    // A missing command is spawned as given, so that its ENOENT says so (unshare would exit 127).
    const found = locate(command, process.env);
    const confined = found === undefined ? { command, args } : diesWithParentTree(found, args, process.env);
    // An abort kills with SIGKILL: unshare ignores SIGTERM while it waits for its child, and
    // its death is what takes the namespace down (nothing is left to unmount outside it).
    const child = spawn(confined.command, [...confined.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      signal,
      killSignal: 'SIGKILL',
    });
    const tail = new TailBuffer(30);
    const splitter = (): LineSplitter =>
      new LineSplitter((line) => {
        tail.push(line);
        logger.debug({ [path.basename(command)]: line });
      });
    const out = splitter();
    const err = splitter();
    child.stdout.on('data', (chunk: Buffer) => out.write(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.write(chunk));
    child.once('error', (error) =>
      reject(
        error.name === 'AbortError'
          ? new AbortError(`${command} aborted`)
          : new OvmfBuildError('E_IMAGE_BASE_UNAVAILABLE', `cannot run ${command}: ${error.message}`, {
              command,
            }),
      ),
    );
    child.once('close', (code) => {
      out.end();
      err.end();
      resolve({ exitCode: code ?? -1, tail: tail.lines() });
    });
  });
}

/**
 * Packs a rootfs for import: ownership and modes as on disk, hardlinks kept
 * as links; device nodes, sockets and fifos skipped (the runtime provides /dev).
 */
export function packRootfs(root: string): Readable {
  const seen = new Map<string, string>();
  const walk = async (pack: Pack, relativeDir: string): Promise<void> => {
    for (const name of (await readdir(path.join(root, relativeDir))).sort()) {
      const relative = relativeDir === '' ? name : `${relativeDir}/${name}`;
      const full = path.join(root, relative);
      const stat = await lstat(full);
      const base = {
        name: relative,
        mode: stat.mode & 0o7777,
        uid: stat.uid,
        gid: stat.gid,
        mtime: stat.mtime,
      };
      if (stat.isDirectory()) {
        await addEntry(pack, { ...base, type: 'directory' });
        await walk(pack, relative);
      } else if (stat.isSymbolicLink()) {
        await addEntry(pack, { ...base, type: 'symlink', linkname: await readlink(full) });
      } else if (stat.isFile()) {
        const key = `${stat.dev}:${stat.ino}`;
        const first = stat.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          await addEntry(pack, { ...base, type: 'link', linkname: first, size: 0 });
          continue;
        }
        if (stat.nlink > 1) {
          seen.set(key, relative);
        }
        await addFileFromDisk(pack, { ...base, type: 'file', size: stat.size }, full);
      }
    }
  };
  return packFrom((pack) => walk(pack, '')) as unknown as Readable;
}

/** Reads a JSON-lines progress stream (import, build, pull) and returns its messages; throws on {error}. */
export async function readProgress(
  stream: Readable,
  onMessage: (message: Record<string, unknown>) => void,
  code: ErrorCode,
  what: string,
): Promise<void> {
  const tail = new TailBuffer(40);
  let failure: string | undefined;
  const splitter = new LineSplitter((line) => {
    if (line.trim() === '') {
      return;
    }
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      tail.push(line);
      return;
    }
    if (typeof message['stream'] === 'string') {
      for (const part of message['stream'].split('\n')) {
        if (part !== '') {
          tail.push(part);
        }
      }
    }
    if (message['error'] !== undefined && message['error'] !== '') {
      failure = String(message['error']);
    }
    onMessage(message);
  });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    splitter.write(chunk);
  }
  splitter.end();
  if (failure !== undefined) {
    throw new OvmfBuildError(code, `${what} failed: ${failure}`, { error: failure, tailLines: tail.lines() });
  }
}

export interface BootstrapOptions {
  readonly docker: Docker;
  readonly inputs: DebootstrapInputs;
  /** Full reference to import as, e.g. localhost/ovmf-build/debian-base:bookworm-<digest>. */
  readonly ref: string;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** @default os.tmpdir() */
  readonly tmpDir?: string;
}

/** debootstraps, imports and returns the image id. Needs root on the host. */
export async function bootstrapBaseImage(options: BootstrapOptions): Promise<string> {
  const { docker, inputs, ref, logger, signal } = options;
  if (process.getuid?.() !== 0) {
    throw new OvmfBuildError(
      'E_IMAGE_BASE_UNAVAILABLE',
      'no Debian base image is available and bootstrapping one with debootstrap needs root: pull a base image ' +
        '(`podman pull debian:bookworm-slim`) or run this once as root',
      { ref },
    );
  }
  const work = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'ovmf-build-debootstrap-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    const args = [
      `--variant=${inputs.variant}`,
      `--arch=${inputs.arch}`,
      ...(inputs.include.length > 0 ? [`--include=${inputs.include.join(',')}`] : []),
      inputs.suite,
      rootfs,
      inputs.mirror,
    ];
    const started = performance.now();
    logger.info({ args }, 'debootstrapping a base image (no registry reachable)');
    const result = await runLogged('debootstrap', args, logger, signal);
    if (result.exitCode !== 0) {
      throw new OvmfBuildError(
        'E_IMAGE_BASE_UNAVAILABLE',
        `debootstrap exited with ${result.exitCode}: ${result.tail.slice(-5).join(' | ')}`,
        { exitCode: result.exitCode, tailLines: result.tail },
      );
    }
    // Downloaded .debs and package lists only grow the image; the builder's apt-get update fetches fresh lists.
    for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      for (const name of await readdir(path.join(rootfs, dir)).catch(() => [] as string[])) {
        if (name !== 'partial' && name !== 'lock') {
          await rm(path.join(rootfs, dir, name), { recursive: true, force: true });
        }
      }
    }
    const debootstrapMs = performance.now() - started;
    const stream = (await docker.importImage(packRootfs(rootfs), {
      ...rootfsImportOptions(ref),
      ...(signal === undefined ? {} : { abortSignal: signal }),
    } as object)) as Readable;
    await readProgress(stream, () => undefined, 'E_IMAGE_IMPORT_FAILED', `importing ${ref}`);
    const image = await docker
      .getImage(ref)
      .inspect()
      .catch(() => undefined);
    if (image === undefined) {
      throw new OvmfBuildError(
        'E_IMAGE_IMPORT_FAILED',
        `imported base image ${ref} is not in the engine afterwards`,
        {
          ref,
        },
      );
    }
    logger.info(
      {
        ref,
        id: image.Id,
        debootstrapMs: Math.round(debootstrapMs),
        totalMs: Math.round(performance.now() - started),
        sizeInBytes: image.Size,
      },
      'base image bootstrapped and imported',
    );
    return image.Id;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
