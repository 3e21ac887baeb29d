// Lists the complete EDK2 trees in a source cache directory, so the source tests can check
// what the cache holds (test-only: the product never lists its source cache).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { readSourceEntry } from '../src/edk2/source/cache.js';
import type { Edk2Source } from '../src/edk2/source.js';

export async function listCachedEdk2Sources(cacheDir: string): Promise<Edk2Source[]> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  const entries: Edk2Source[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const entry = await readSourceEntry(path.join(cacheDir, name));
    if (entry !== null) entries.push(entry);
  }
  return entries;
}
