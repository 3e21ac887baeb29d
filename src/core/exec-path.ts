// Starting helper programs: finding one on PATH, and making a child die with the thread that
// started it. The second is util-linux's `setpriv --pdeathsig KILL` (essential in Debian), which
// sets PR_SET_PDEATHSIG and executes the program under the same pid, so the kernel kills it even
// when ovmf-build is killed with SIGKILL and no exit hook runs. Used for the private Podman
// service (container/private-service.ts), QEMU (verify/qemu-process.ts) and 7z
// (vendor/bounded-child.ts); debootstrap, which starts a tree of its own and mounts, runs in
// namespaces of its own as well (diesWithParentTree).
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** `file` exists and this process may execute it. */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds an executable on PATH, or undefined. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** `name` as a path to run: checked as given when it has a `/`, else looked up on PATH; undefined when not found. */
export function locate(name: string, env: NodeJS.ProcessEnv): string | undefined {
  return name.includes('/') ? (isExecutable(name) ? name : undefined) : findOnPath(name, env);
}

/**
 * The command line that runs `file args` so that it dies with the calling thread: through
 * setpriv on Linux when it is on PATH, else `file args` as given (the caller's own clean-up is
 * then all there is).
 */
export function diesWithParent(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): { readonly command: string; readonly args: readonly string[] } {
  const setpriv = process.platform === 'linux' ? findOnPath('setpriv', env) : undefined;
  return setpriv === undefined
    ? { command: file, args }
    : { command: setpriv, args: ['--pdeathsig', 'KILL', '--', file, ...args] };
}

/**
 * As diesWithParent, for a program that starts children of its own and mounts file systems
 * (debootstrap: dpkg in a chroot, /proc and /sys mounted in the target): it runs as the first
 * process of a new PID namespace and in a private mount namespace (util-linux `unshare --pid
 * --fork --kill-child --mount`). When ovmf-build dies, setpriv's signal kills unshare, whose
 * --kill-child kills the namespace's first process, and the kernel then kills every process
 * in the namespace; its mounts go with the namespace, so none is left inside a temp directory
 * that is later removed. Needs root (CAP_SYS_ADMIN); without unshare, diesWithParent alone.
 */
export function diesWithParentTree(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): { readonly command: string; readonly args: readonly string[] } {
  const unshare = process.platform === 'linux' ? findOnPath('unshare', env) : undefined;
  return unshare === undefined
    ? diesWithParent(file, args, env)
    : diesWithParent(
        unshare,
        [
          '--pid',
          '--fork',
          '--kill-child',
          '--mount',
          '--propagation',
          'private',
          '--mount-proc',
          '--',
          file,
          ...args,
        ],
        env,
      );
}
