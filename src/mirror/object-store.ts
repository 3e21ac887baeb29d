// The immutable objects of a mirror tree, by-hash/sha256/<hex>: an object appears only whole
// and checked (its bytes land in .mirror/staging, their size and sha256 are checked, fsync,
// then one rename), so a killed sync leaves at most a staging file that the next one resumes.
import { copyFile, link, lstat, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath, randomSuffix } from '../core/durable-fs.js';
import { DownloadError } from '../fetch/errors.js';
import { sha256OfRegularFile } from '../publish/safe-read.js';
import { MIRROR_LAYOUT } from './index-types.js';

export interface ObjectRef {
  readonly sha256: string;
  readonly size: number;
}

export async function statSize(file: string): Promise<number> {
  return (await stat(file)).size;
}

export function objectPath(root: string, sha256: string): string {
  return path.join(root, ...MIRROR_LAYOUT.byHashDir.split('/'), sha256);
}

export function stagingDir(root: string): string {
  return path.join(root, MIRROR_LAYOUT.stateDir, 'staging');
}

/** True when by-hash holds the object as a regular file of the right size (its digest was checked on the way in). */
export async function hasObject(root: string, object: ObjectRef): Promise<boolean> {
  const info = await lstat(objectPath(root, object.sha256)).catch(() => null);
  return info !== null && info.isFile() && info.size === object.size;
}

/**
 * Moves a complete staging file into by-hash after checking its size and sha256; a wrong file is
 * removed (so a resume does not build on it) and refused with E_DOWNLOAD_DIGEST_MISMATCH.
 */
export async function commitObject(
  root: string,
  object: ObjectRef,
  staged: string,
  from: string,
): Promise<void> {
  const size = await statSize(staged);
  const digest = await sha256OfRegularFile(staged);
  if (size !== object.size || digest !== object.sha256) {
    await rm(staged, { force: true });
    throw new DownloadError(
      'E_DOWNLOAD_DIGEST_MISMATCH',
      `${from}: got ${size} bytes with sha256 ${digest}, the index says ${object.size} bytes with ${object.sha256}`,
      { url: from, expected: object.sha256, actual: digest, expectedBytes: object.size, sizeInBytes: size },
    );
  }
  await fsyncPath(staged);
  const final = objectPath(root, object.sha256);
  await mkdir(path.dirname(final), { recursive: true });
  await rename(staged, final);
  await fsyncPath(path.dirname(final));
}

/** Copies a local file into staging (for `mirror index` from a store), then commits it. */
export async function importLocalObject(root: string, object: ObjectRef, source: string): Promise<void> {
  const staged = path.join(stagingDir(root), `${object.sha256}.${randomSuffix()}.copy`);
  await mkdir(path.dirname(staged), { recursive: true });
  try {
    await copyFile(source, staged);
    await commitObject(root, object, staged, source);
  } finally {
    await rm(staged, { force: true });
  }
}

/**
 * Puts the object's bytes at `dest` (a new name): a hard link to the by-hash file when the file
 * system allows (no second copy of a 4 MiB firmware), else a copy.
 */
export async function placeObject(root: string, sha256: string, dest: string): Promise<void> {
  const source = objectPath(root, sha256);
  try {
    await link(source, dest);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw error;
    await copyFile(source, dest);
  }
}
