// Per-user directories (XDG Base Directory Specification 0.8): environment passed in,
// never read from process.env here, so tests give their own temp dirs.
import { homedir } from 'node:os';
import path from 'node:path';

const APP = 'ovmf-build';

function base(env: NodeJS.ProcessEnv, variable: string, fallback: readonly string[]): string {
  const value = env[variable];
  // The spec says a relative path in these variables is invalid and must be ignored.
  if (value !== undefined && value !== '' && path.isAbsolute(value)) return value;
  return path.join(env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir(), ...fallback);
}

/** `$XDG_CACHE_HOME/ovmf-build` or `~/.cache/ovmf-build`. */
export function userCacheDir(env: NodeJS.ProcessEnv): string {
  return path.join(base(env, 'XDG_CACHE_HOME', ['.cache']), APP);
}

/** `$XDG_CONFIG_HOME/ovmf-build` or `~/.config/ovmf-build` (the signing key lives here). */
export function userConfigDir(env: NodeJS.ProcessEnv): string {
  return path.join(base(env, 'XDG_CONFIG_HOME', ['.config']), APP);
}

/** `$XDG_STATE_HOME/ovmf-build` or `~/.local/state/ovmf-build` (job logs live here). */
export function userStateDir(env: NodeJS.ProcessEnv): string {
  return path.join(base(env, 'XDG_STATE_HOME', ['.local', 'state']), APP);
}

/** The build cache root: `<user cache dir>/cache`. */
export function buildCacheDir(env: NodeJS.ProcessEnv): string {
  return path.join(userCacheDir(env), 'cache');
}
