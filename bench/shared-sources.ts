// Benches run with a cache, config and state of their own, but unpacking Debian's EDK2 source
// again for every run would time the unpacking: the user's unpacked sources (read-only inputs
// keyed by their digest) are linked into the isolated cache instead.
import { mkdir, symlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

/** Links the user's `ovmf-build/edk2` source cache into `<cacheHome>/ovmf-build/edk2`. */
export async function linkSharedEdk2Sources(cacheHome: string): Promise<void> {
  const sharedSources = path.join(
    process.env['XDG_CACHE_HOME'] ?? path.join(homedir(), '.cache'),
    'ovmf-build',
    'edk2',
  );
  await mkdir(sharedSources, { recursive: true });
  await mkdir(path.join(cacheHome, 'ovmf-build'), { recursive: true });
  await symlink(sharedSources, path.join(cacheHome, 'ovmf-build', 'edk2'));
}
