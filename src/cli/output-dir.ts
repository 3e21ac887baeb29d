// The output directory of a command that builds or downloads (--out of the main command,
// `build`, `nightly`, `worker` and `pull`), checked before any work: a path that is a file, or
// runs through one, or lies in a directory this user cannot write, used to fail only when the
// artifact was published or the files written, after a build of minutes. The check is the first
// existing directory on the path: the rest is created then.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { OvmfBuildError } from '../core/errors.js';

/**
 * How messages name the output directory: `--out` when the user gave it, else the command's
 * default, the artifact store (./artifacts: the main command, nightly, worker) or the output
 * directory (.: build, pull).
 */
export function outputDirLabel(outGiven: boolean, kind: 'artifact store' | 'output directory'): string {
  if (outGiven) return '--out';
  return kind === 'artifact store'
    ? 'the artifact store (no --out: ./artifacts)'
    : 'the output directory (no --out: .)';
}

/**
 * Resolves when `dir` is a directory this user can write, or does not exist yet and its nearest
 * existing ancestor is such a directory. E_OUTPUT_NOT_DIRECTORY when the path or an ancestor is
 * something else (a file, a device); E_OUTPUT_NOT_WRITABLE when that directory refuses writes
 * (permissions, a read-only file system). `option` names the flag in the messages.
 */
export async function checkOutputDirectory(dir: string, option = '--out'): Promise<void> {
  const absolute = path.resolve(dir);
  for (let at = absolute; ; at = path.dirname(at)) {
    const info = await stat(at).catch((error: NodeJS.ErrnoException) => {
      // ENOENT: not there yet (created later); ENOTDIR: an ancestor is not a directory, found above.
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
      throw new OvmfBuildError(
        'E_OUTPUT_NOT_WRITABLE',
        `${option} ${dir}: cannot read ${at}: ${error.message}`,
        {
          path: dir,
          at,
          errno: error.code,
        },
      );
    });
    if (info === null) {
      if (path.dirname(at) === at) return; // nothing of the path exists, not even the root
      continue;
    }
    if (!info.isDirectory()) {
      const what = info.isFile() ? 'a file' : 'not a directory';
      throw new OvmfBuildError(
        'E_OUTPUT_NOT_DIRECTORY',
        at === absolute
          ? `${option} ${dir} is ${what}; give a directory (it is created if missing)`
          : `${option} ${dir} cannot be created: ${at} is ${what}`,
        { path: dir, at },
      );
    }
    try {
      await access(at, constants.W_OK | constants.X_OK);
    } catch (error) {
      const errno = (error as NodeJS.ErrnoException).code;
      throw new OvmfBuildError(
        'E_OUTPUT_NOT_WRITABLE',
        `${option} ${dir}: ${at === absolute ? 'the directory' : `its nearest existing directory ${at}`} ` +
          `cannot be written (${errno === 'EROFS' ? 'read-only file system' : (errno ?? 'refused')}); ` +
          'choose another directory',
        { path: dir, at, errno },
        { cause: error },
      );
    }
    return;
  }
}
