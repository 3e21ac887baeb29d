// Committing a finished build container to an image (the warm workspace):
// the image id, or a coded error when the engine gives none.
import type Docker from 'dockerode';
import { OvmfBuildError } from '../core/errors.js';
import { engineFailure } from './engine-errors.js';
import { splitRef } from './image-ref.js';
import { postCommit } from './podman-quirks.js';

/** Commits `containerId` as `ref` (repository:tag) and returns the new image's id. */
export async function commitContainer(docker: Docker, containerId: string, ref: string): Promise<string> {
  const [repo, tag] = splitRef(ref);
  const details = { containerId, ref };
  const result = await postCommit(docker, { container: containerId, repo, tag }).catch((error: unknown) => {
    throw engineFailure('E_CONTAINER_COMMIT_FAILED', `committing the container as ${ref}`, error, details);
  });
  if (result.Id === undefined) {
    throw new OvmfBuildError(
      'E_CONTAINER_COMMIT_FAILED',
      `committing ${containerId} as ${ref} returned no image id`,
      details,
    );
  }
  return result.Id;
}
