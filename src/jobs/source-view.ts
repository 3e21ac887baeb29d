// A hard-linked view of an EDK2 source tree without the symlinks that point outside it.
// Debian's edk2 tree carries EmulatorPkg/Unix/Host/X11IncludeHack -> /opt/X11/include,
// which the container layer refuses to ship (E_INPUT_UNSAFE_ENTRY) unless told to skip it,
// and OvmfPkg never uses it. The job falls back to this view only when the build refuses
// the tree for that reason. Files are hard links (no copy, same bytes, read only by
// convention like the source itself); the view is built in a temp dir and renamed into
// place, one per source digest.
import {
  copyFile,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import type { Edk2Source } from '../edk2/source.js';
import { randomSuffix } from '../core/durable-fs.js';
import { symlinkLeavesTree } from '../core/path-inside.js';

const COMPLETE_MARKER = '.ovmf-build-view-complete';

export interface SourceView {
  readonly source: Edk2Source;
  /** Symlinks left out, relative to the tree root. */
  readonly skipped: readonly string[];
  readonly created: boolean;
}

async function mirror(from: string, to: string, relative: string, skipped: string[]): Promise<void> {
  await mkdir(path.join(to, relative), { recursive: true });
  for (const entry of await readdir(path.join(from, relative), { withFileTypes: true })) {
    const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
    const source = path.join(from, child);
    const target = path.join(to, child);
    if (entry.isDirectory()) {
      await mirror(from, to, child, skipped);
    } else if (entry.isSymbolicLink()) {
      const pointsTo = await readlink(source);
      if (symlinkLeavesTree(child, pointsTo)) {
        skipped.push(child);
      } else {
        await symlink(pointsTo, target);
      }
    } else if (entry.isFile()) {
      try {
        await link(source, target);
      } catch {
        // Another file system (EXDEV) or no hard links allowed: copy instead.
        await copyFile(source, target);
      }
    }
    // Sockets, fifos and devices are not source; left out.
  }
}

export async function safeSourceView(source: Edk2Source, viewsDir: string): Promise<SourceView> {
  const root = path.join(viewsDir, source.digest);
  const done = async (created: boolean): Promise<SourceView> => {
    const info = JSON.parse(await readFile(path.join(root, COMPLETE_MARKER), 'utf8')) as {
      skipped: string[];
    };
    return { source: { ...source, dir: path.join(root, 'src') }, skipped: info.skipped, created };
  };
  if (
    await stat(path.join(root, COMPLETE_MARKER)).then(
      () => true,
      () => false,
    )
  )
    return done(false);
  await mkdir(viewsDir, { recursive: true });
  const tmp = `${root}.tmp-${process.pid}-${randomSuffix()}`;
  try {
    const skipped: string[] = [];
    await mirror(source.dir, path.join(tmp, 'src'), '', skipped);
    await writeFile(path.join(tmp, COMPLETE_MARKER), JSON.stringify({ digest: source.digest, skipped }));
    try {
      await rename(tmp, root);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      await rm(tmp, { recursive: true, force: true });
      return done(false);
    }
    return done(true);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** For tests: true when `file` inside the view is a hard link of the source's file. */
export async function sameInode(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([lstat(a), lstat(b)]);
  return x.ino === y.ino && x.dev === y.dev;
}
