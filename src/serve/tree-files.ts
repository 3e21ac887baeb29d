// The files of a mirror tree as served: regular files only, no dotfile or dot-directory (the
// mirror's state in .mirror/), no symlink. Shared by the nginx ETag map and `mirror push`.
import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

export interface TreeFile {
  /** '/'-separated, relative to the root, no leading '/'. */
  readonly relativePath: string;
  readonly absolutePath: string;
  readonly stat: Stats;
}

/** Every servable file under `root`, in path order. */
export async function listTreeFiles(root: string): Promise<TreeFile[]> {
  const files: TreeFile[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (entry.name.startsWith('.')) continue;
      const absolutePath = path.join(dir, entry.name);
      const relativePath = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) await walk(absolutePath, relativePath);
      else if (entry.isFile()) files.push({ relativePath, absolutePath, stat: await lstat(absolutePath) });
    }
  };
  await walk(root, '');
  return files;
}
