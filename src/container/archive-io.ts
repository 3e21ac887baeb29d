// Archives in and out of a build container: every input (files and host trees)
// in one putArchive extracted at '/', owned by the builder user, and the
// outputs fetched with getArchive into memory, bounded and refused when unsafe.
import path from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { OvmfBuildError } from '../core/errors.js';
import { engineFailure, isNotFound, unlessNotFound } from './engine-errors.js';
import { addEntry, extractInMemory, ownedHeader, packFrom, packHostTree, walkHostTree } from './tar.js';
import type { RunSpec } from './types.js';

/** The builder image's `builder` user: inputs are writable by the build. */
const BUILDER_OWNER = { uid: 1000, gid: 1000 };
const DEFAULT_MAX_OUTPUT_BYTES = 512 * 1024 * 1024;

/** Directories that must be created (not already in the image) for the inputs, parents first. */
async function missingDirectories(container: Docker.Container, wanted: readonly string[]): Promise<string[]> {
  const known = new Map<string, boolean>([['/', true]]);
  const exists = async (dir: string): Promise<boolean> => {
    const cached = known.get(dir);
    if (cached !== undefined) {
      return cached;
    }
    const present = await unlessNotFound(
      container.infoArchive({ path: dir }).then(() => true),
      false,
    );
    known.set(dir, present);
    return present;
  };
  const missing = new Set<string>();
  for (const dir of wanted) {
    const chain: string[] = [];
    for (let d = path.posix.normalize(dir); d !== '/'; d = path.posix.dirname(d)) {
      chain.unshift(d);
    }
    for (const d of chain) {
      if (missing.has(d)) {
        continue;
      }
      // A missing parent means every child is missing too: no need to ask.
      const parentMissing = missing.has(path.posix.dirname(d));
      if (parentMissing || !(await exists(d))) {
        missing.add(d);
      }
    }
  }
  return [...missing].sort();
}

/** Puts all inputs in one archive extracted at '/', owned by uid/gid 1000; existing directories are left as they are. */
export async function putInputs(container: Docker.Container, spec: RunSpec): Promise<void> {
  const files = spec.files ?? [];
  const directories = spec.directories ?? [];
  if (files.length === 0 && directories.length === 0) {
    return;
  }
  // Walk every host tree first: an unsafe entry is refused before any byte reaches the container.
  const trees = await Promise.all(
    directories.map(async (dir) => ({
      dir,
      entries: await walkHostTree(dir.hostDir, { exclude: dir.exclude ?? [] }),
    })),
  );
  const wanted = [
    ...files.map((file) => path.posix.dirname(file.path)),
    ...directories.map((dir) => path.posix.normalize(dir.containerDir)),
  ];
  const missing = await missingDirectories(container, wanted);
  const pack = packFrom(async (pack) => {
    for (const dir of missing) {
      await addEntry(pack, ownedHeader(dir.slice(1), 'directory', 0o755, BUILDER_OWNER));
    }
    for (const file of files) {
      await addEntry(
        pack,
        ownedHeader(file.path.slice(1), 'file', file.mode ?? 0o644, BUILDER_OWNER),
        file.data,
      );
    }
    for (const { dir, entries } of trees) {
      await packHostTree(
        pack,
        dir.hostDir,
        entries,
        path.posix.normalize(dir.containerDir).slice(1),
        BUILDER_OWNER,
      );
    }
  });
  await container.putArchive(pack as unknown as NodeJS.ReadableStream, {
    path: '/',
    ...(spec.signal === undefined ? {} : { abortSignal: spec.signal }),
  });
}

/** Attempts at one output's archive when the engine answers with an empty body. */
const EMPTY_ARCHIVE_ATTEMPTS = 3;
const EMPTY_ARCHIVE_RETRY_MS = 1_000;

/** One output's archive, unpacked in memory; `bodyBytes` 0 means the engine sent no archive at all. */
async function fetchOutput(
  container: Docker.Container,
  outputPath: string,
  maxTotalBytes: number,
): Promise<{ files: Map<string, Uint8Array>; bodyBytes: number }> {
  const details = { path: outputPath, containerId: container.id };
  let stream: Readable;
  try {
    stream = (await container.getArchive({ path: outputPath })) as Readable;
  } catch (error) {
    throw isNotFound(error)
      ? new OvmfBuildError(
          'E_CONTAINER_OUTPUT_MISSING',
          `output ${outputPath} does not exist in the container`,
          details,
        )
      : engineFailure('E_CONTAINER_OUTPUT_FAILED', `fetching output ${outputPath}`, error, details);
  }
  let bodyBytes = 0;
  // Counted beside the unpacking (a second 'data' listener sees the same chunks).
  stream.on('data', (chunk: Buffer) => {
    bodyBytes += chunk.length;
  });
  const files = await extractInMemory(stream, { maxTotalBytes });
  return { files, bodyBytes };
}

/**
 * Fetches `spec.outputs` into memory, keyed by path relative to each output's parent.
 * Throws E_CONTAINER_OUTPUT_MISSING, E_CONTAINER_OUTPUT_DUPLICATE (one name from two
 * outputs), E_CONTAINER_OUTPUT_FAILED (the engine kept answering with an empty body), or the
 * archive's own E_ARCHIVE_* errors.
 *
 * A tar of even an empty directory has a header and two end blocks (1.5 KiB), so a 200 with an
 * empty body is a broken answer, not an empty output: it is asked again. Seen under heavy load
 * (nightly at concurrency 2 beside other work): a build whose script had collected its files came
 * back with no outputs; tar-stream ends an empty stream without an error.
 */
export async function fetchOutputs(
  container: Docker.Container,
  spec: RunSpec,
): Promise<Map<string, Uint8Array>> {
  const outputs = new Map<string, Uint8Array>();
  let remaining = spec.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  for (const outputPath of spec.outputs ?? []) {
    let fetched = await fetchOutput(container, outputPath, remaining);
    for (let attempt = 2; fetched.bodyBytes === 0 && attempt <= EMPTY_ARCHIVE_ATTEMPTS; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, EMPTY_ARCHIVE_RETRY_MS));
      fetched = await fetchOutput(container, outputPath, remaining);
    }
    if (fetched.bodyBytes === 0) {
      throw new OvmfBuildError(
        'E_CONTAINER_OUTPUT_FAILED',
        `the engine answered ${EMPTY_ARCHIVE_ATTEMPTS} times with an empty archive for output ${outputPath}`,
        { path: outputPath, containerId: container.id, attempts: EMPTY_ARCHIVE_ATTEMPTS },
      );
    }
    const { files } = fetched;
    for (const [name, data] of files) {
      if (outputs.has(name)) {
        throw new OvmfBuildError(
          'E_CONTAINER_OUTPUT_DUPLICATE',
          `output entry \`${name}\` appears in two outputs`,
          { entry: name, reason: 'duplicate entry' },
        );
      }
      outputs.set(name, data);
      remaining -= data.byteLength;
    }
  }
  return outputs;
}
