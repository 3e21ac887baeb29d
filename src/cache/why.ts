// "Why did this build miss the cache?" (nx task hasher, STYLE.md "Caching"): every requested
// key's details are recorded, and a miss is explained by the inputs that differ from the
// nearest cached entry ("vbt changed: 3f1c2a9b.. -> 9a0e1b2c..").
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../core/durable-fs.js';
import {
  describeDifference,
  diffDetails,
  digestOf,
  type CacheKey,
  type CacheKeyDetails,
  type KeyDifference,
} from './key.js';
import { readRecord, type CacheEntryRecord, type CacheListing } from './entry.js';

/** Under the cache root: `<key>.json` per requested key, built or not. */
export const REQUESTS_DIR = 'requests';

export interface MissExplanation {
  /** The nearest cached entry (fewest differing inputs, newest on a tie); null when none. */
  readonly nearest: { readonly key: string; readonly createdAt: string } | null;
  readonly differences: readonly KeyDifference[];
  /** Human lines: "vbt changed: 3f1c2a9b.. -> 9a0e1b2c..". */
  readonly lines: readonly string[];
}

export async function recordRequest(root: string, key: CacheKey): Promise<void> {
  const dir = path.join(root, REQUESTS_DIR);
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(
    path.join(dir, `${key.value}.json`),
    `${JSON.stringify({ key: key.value, details: key.details })}\n`,
  );
}

export async function requestedDetails(
  root: string,
  prefix: string,
): Promise<{ key: string; details: CacheKeyDetails } | null> {
  const dir = path.join(root, REQUESTS_DIR);
  const names = (await readdir(dir).catch(() => [] as string[])).filter(
    (n) => n.endsWith('.json') && n.startsWith(prefix.toLowerCase()),
  );
  if (names.length !== 1) return null;
  try {
    const parsed = JSON.parse(await readRecord(path.join(dir, names[0] as string))) as {
      key: string;
      details: CacheKeyDetails;
    };
    return digestOf(parsed.details) === parsed.key ? parsed : null;
  } catch {
    return null;
  }
}

export function explainMiss(
  listings: readonly CacheListing[],
  details: CacheKeyDetails,
  options: { readonly excludeKey?: string } = {},
): MissExplanation {
  let best: { entry: CacheEntryRecord; differences: KeyDifference[] } | null = null;
  for (const listing of listings) {
    if (listing.entry === null || listing.key === options.excludeKey) continue;
    const differences = diffDetails(listing.entry.details, details);
    if (
      best === null ||
      differences.length < best.differences.length ||
      (differences.length === best.differences.length && listing.entry.createdAt > best.entry.createdAt)
    ) {
      best = { entry: listing.entry, differences };
    }
  }
  if (best === null) {
    return { nearest: null, differences: [], lines: ['the cache is empty: nothing to compare with'] };
  }
  return {
    nearest: { key: best.entry.key, createdAt: best.entry.createdAt },
    differences: best.differences,
    lines:
      best.differences.length === 0
        ? ['no input differs: the entry has the same key']
        : best.differences.map((difference) => describeDifference(difference)),
  };
}
