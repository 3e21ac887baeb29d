// Validation of a RunSpec before anything is created in the engine: labels
// present, a command, absolute input paths without `..`, and no root unless
// the caller asked for it.
import path from 'node:path';
import { OvmfBuildError } from '../core/errors.js';
import type { RunSpec } from './types.js';

/** The user a container runs as when the spec names none (the builder image's `builder`). */
export const DEFAULT_USER = '1000:1000';

/** uid part of 'uid[:gid]' / 'name[:group]'. */
function isRootUser(user: string): boolean {
  const name = user.split(':')[0] ?? '';
  return name === '0' || name === 'root' || name === '';
}

function isSafeContainerPath(containerPath: string): boolean {
  return path.posix.isAbsolute(containerPath) && !containerPath.split('/').includes('..');
}

/** Throws TypeError for a malformed spec and E_CONTAINER_ROOT_REFUSED for root without `allowRoot`. */
export function validateRunSpec(spec: RunSpec): void {
  if (spec.jobId === '' || spec.purpose === '') {
    throw new TypeError('Expected `jobId` and `purpose` to be non-empty strings (they label the container)');
  }
  if (spec.cmd.length === 0) {
    throw new TypeError('Expected `cmd` to be a non-empty array, got `[]`');
  }
  for (const file of spec.files ?? []) {
    if (!isSafeContainerPath(file.path)) {
      throw new TypeError(`Expected input file path to be absolute without \`..\`, got \`${file.path}\``);
    }
  }
  for (const dir of spec.directories ?? []) {
    if (!isSafeContainerPath(dir.containerDir)) {
      throw new TypeError(
        `Expected \`containerDir\` to be absolute without \`..\`, got \`${dir.containerDir}\``,
      );
    }
  }
  const user = spec.user ?? DEFAULT_USER;
  if (isRootUser(user) && spec.allowRoot !== true) {
    throw new OvmfBuildError(
      'E_CONTAINER_ROOT_REFUSED',
      `refusing to run a container as \`${user}\` without allowRoot`,
      { user },
    );
  }
}
