// What the build integration files (test/build.int.test.ts, test/build-warm.int.test.ts) ask
// of the engine besides building: the containers a job left behind, listed by label straight
// from the Docker API (the independent view of what the container layer should have removed),
// and a build that must fail with that list. One copy for both files.
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import type { ContainerEngine } from '../src/container/index.js';
import { buildOvmf, type BuildOvmfOptions } from '../src/edk2/build.js';
import { errorOf } from './rejection.js';

/** A job id of a build test: `test-build-<name>-<8 hex>`, so leftovers name their test. */
export const buildJobId = (name: string): string => `test-build-${name}-${randomBytes(4).toString('hex')}`;

/** Dockerode on the engine's socket (the engine object hides the raw API on purpose). */
export function dockerOf(engine: ContainerEngine): Docker {
  return new Docker({ socketPath: engine.info.socketPath });
}

/** Ids of every container (running or not) labelled with this job id. */
export async function containersOfJob(docker: Docker, jobId: string): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`ovmf-build.job=${jobId}`] } });
  return list.map((container) => container.Id);
}

/** The inputs every build of a file shares; each failing build adds its own options. */
export type BuildBase = Omit<BuildOvmfOptions, 'jobId'>;

/** A build of `base` (plus `options`) that must fail: its error and the job's containers after it. */
export async function failedBuild(
  base: BuildBase,
  name: string,
  options: Partial<BuildOvmfOptions> = {},
): Promise<{ error: Awaited<ReturnType<typeof errorOf>>; containers: string[] }> {
  const jobId = buildJobId(name);
  const error = await errorOf(buildOvmf({ ...base, jobId, ...options }));
  return { error, containers: await containersOfJob(dockerOf(base.engine), jobId) };
}
