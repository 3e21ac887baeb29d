// What an unpacked EDK2 tree must hold, and the clean-ups applied to our copy of it (quirk
// fixes, git metadata), never to the user's files.
import { cp, readdir, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { symlinkLeavesTree } from '../../core/path-inside.js';
import { Edk2Error } from '../errors.js';
import { DSC_PATH, FDF_PATH } from '../layout.js';
import { exists } from './files.js';

/** Symlinks whose target is absolute or leaves the tree, workspace-relative, sorted. */
async function escapingSymlinks(root: string, relative = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(path.join(root, relative), { withFileTypes: true })) {
    const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isSymbolicLink()) {
      if (symlinkLeavesTree(child, await readlink(path.join(root, child)))) found.push(child);
    } else if (entry.isDirectory()) {
      found.push(...(await escapingSymlinks(root, child)));
    }
  }
  return found.sort();
}

/**
 * EDK2 quirk fixes applied to the unpacked copy (never to the user's files):
 * - Debian's orig tarball ships BaseTools/Source/C/BrotliCompress/brotli empty (a git submodule
 *   in upstream); the same brotli sources are in MdeModulePkg's BrotliCustomDecompressLib.
 * - Symlinks that point outside the tree (EmulatorPkg/Unix/Host/X11IncludeHack -> /opt/X11/include)
 *   are removed: no OvmfPkg module uses them and the container layer refuses to copy them.
 */
export async function applySourceQuirks(root: string): Promise<string[]> {
  const applied: string[] = [];
  for (const link of await escapingSymlinks(root)) {
    await rm(path.join(root, link));
    applied.push(`removed symlink ${link} (points outside the tree)`);
  }
  const target = path.join(root, 'BaseTools/Source/C/BrotliCompress/brotli');
  const donor = path.join(root, 'MdeModulePkg/Library/BrotliCustomDecompressLib/brotli');
  const targetEmpty = !(await exists(target)) || (await readdir(target)).length === 0;
  if (targetEmpty && (await exists(donor)) && (await readdir(donor)).length > 0) {
    await cp(donor, target, { recursive: true });
    applied.push(
      'BaseTools/Source/C/BrotliCompress/brotli <- MdeModulePkg/Library/BrotliCustomDecompressLib/brotli',
    );
  }
  return applied;
}

/** Throws E_EDK2_NOT_A_SOURCE_TREE unless `root` holds what an OVMF build needs. */
export async function assertEdk2Tree(root: string, origin: string): Promise<void> {
  const missing: string[] = [];
  for (const file of ['edksetup.sh', 'BaseTools/GNUmakefile', DSC_PATH, FDF_PATH]) {
    if (!(await exists(path.join(root, file)))) missing.push(file);
  }
  if (missing.length > 0) {
    throw new Edk2Error(
      'E_EDK2_NOT_A_SOURCE_TREE',
      `${origin} is not an EDK2 tree: missing ${missing.join(', ')}`,
      {
        origin,
        missing,
      },
    );
  }
}

/** Removes `.git` files and directories (the commit id is recorded; builds need no history). */
export async function removeGitMetadata(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.name === '.git') await rm(full, { recursive: true, force: true });
    else if (entry.isDirectory()) await removeGitMetadata(full);
  }
}
