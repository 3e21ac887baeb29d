// Podman's departures from the Docker API, each behind one named function so
// it can be deleted here, with its callers going back to the plain call, once
// Podman no longer needs it. Measured with Podman 4.3.1 (Debian 12, runc)
// through its Docker-compatible API (../shared/BUILD-NOTES.md).
import type Docker from 'dockerode';
import { hostHardLimits } from './ulimits.js';
import type { Ulimit } from './ulimits.js';

/** Exit detection when the event-based wait was registered too late for a very short container. */
const EXIT_POLL_MS = 2_000;

/**
 * Podman 4.x compat API refuses a bare 64-hex image id as an image name ("no such
 * image"); the `sha256:` digest form works on Docker and Podman alike.
 */
export function imageName(ref: string): string {
  return /^[0-9a-f]{64}$/.test(ref) ? `sha256:${ref}` : ref;
}

/**
 * Query of `POST /images/create?fromSrc=-` that imports a rootfs as `ref`. Podman 4.3
 * ignores `tag=`, so the tag rides inside `repo=` (Docker accepts that too); without
 * `changes=CMD` Podman's imported image has no default command.
 */
export function rootfsImportOptions(ref: string): { repo: string; changes: string } {
  return { repo: ref, changes: 'CMD ["/bin/bash"]' };
}

/**
 * `POST /commit?container=&repo=&tag=`. Podman 4.3 answers a bodiless POST with
 * `Decode(): EOF` (dockerode's container.commit sends none); an empty JSON object
 * works everywhere. Resolves to the engine's answer ({Id}).
 */
export function postCommit(
  docker: Docker,
  query: { readonly container: string; readonly repo: string; readonly tag: string },
): Promise<{ Id?: string }> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: '/commit?',
        method: 'POST',
        options: { _query: query, _body: {} },
        allowEmpty: true,
        statusCodes: { 200: true, 201: true, 404: 'no such container', 500: 'server error' },
      } as never,
      (error: unknown, data: unknown) => (error ? reject(error as Error) : resolve(data as { Id?: string })),
    );
  });
}

/**
 * Ulimits clamped to this process's hard limits. Above them, rootless Podman (runc)
 * fails the start with `error setting rlimit ... operation not permitted` instead of
 * lowering them; a limit the host does not report is left out.
 */
export function ulimitsWithinHostLimits(wanted: Readonly<Record<string, number>>): Ulimit[] {
  const hard = hostHardLimits();
  const result: Ulimit[] = [];
  for (const [name, value] of Object.entries(wanted)) {
    const limit = Math.min(value, hard.get(name) ?? Number.NaN);
    if (Number.isFinite(limit) && limit > 0) {
      result.push({ Name: name, Soft: limit, Hard: limit });
    }
  }
  return result;
}

/**
 * Registers the wait for the container's exit; call it BEFORE `start()` and await the
 * returned function's promise after. Podman 4.x keeps its service at ~100% of a core
 * for as long as a condition-less `POST /containers/{id}/wait` is open, so the
 * event-based `condition=next-exit` wait is used. next-exit never answers for a
 * container that exited before the request reached the engine, so an inspect poll
 * covers that case. Polling stops (and the promise never settles) once `signal` fires.
 */
export function registerExitWait(container: Docker.Container, signal: AbortSignal): () => Promise<number> {
  const waited = container
    .wait({ condition: 'next-exit', abortSignal: signal })
    .then((result: { StatusCode?: number }) => Number(result.StatusCode ?? -1));
  waited.catch(() => undefined);
  return () => Promise.race([waited, pollExit(container, signal)]);
}

async function pollExit(container: Docker.Container, signal: AbortSignal): Promise<number> {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS));
    if (signal.aborted) {
      return new Promise<number>(() => undefined);
    }
    const info = await container.inspect().catch(() => undefined);
    const state = info?.State;
    if (
      state !== undefined &&
      !state.Running &&
      state.Status !== 'created' &&
      state.Status !== 'configured'
    ) {
      return state.ExitCode;
    }
  }
}
