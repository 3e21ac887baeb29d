// What a build-cache entry is on disk: entry.json's record (details, file digests, created
// time), how it is read and checked, and what a lookup or listing reports. Shared by the
// store (store.ts), the miss explanations (why.ts) and gc (gc.ts).
import { readInputText } from '../fetch/read-input.js';
import { digestOf, type CacheKeyDetails } from './key.js';

export const ENTRY_FILE = 'entry.json';
export const ENTRY_FORMAT_VERSION = 1;

export interface CacheEntryFile {
  readonly sha256: string;
  readonly sizeInBytes: number;
}

export interface CacheEntryRecord {
  readonly formatVersion: number;
  readonly key: string;
  readonly details: CacheKeyDetails;
  readonly files: Readonly<Record<string, CacheEntryFile>>;
  readonly createdAt: string;
  /** Free-form facts about the build (duration, miss explanation, builder image ref...). */
  readonly meta: Readonly<Record<string, unknown>>;
}

export interface CacheCorruption {
  /** The file that failed, or entry.json. */
  readonly file: string;
  readonly problem: string;
  readonly expected?: string;
  readonly actual?: string;
}

export type CacheLookup =
  | {
      readonly hit: true;
      readonly dir: string;
      readonly entry: CacheEntryRecord;
      /** Every file's bytes, re-hashed against entry.json. */
      readonly files: ReadonlyMap<string, Uint8Array>;
    }
  | { readonly hit: false; readonly reason: 'absent' }
  | { readonly hit: false; readonly reason: 'corrupt'; readonly corruption: CacheCorruption };

export interface CacheListing {
  readonly key: string;
  readonly dir: string;
  readonly entry: CacheEntryRecord | null;
  /** Why entry.json cannot be used (null when it parses). Files are not re-hashed by list(). */
  readonly problem: string | null;
  readonly sizeInBytes: number;
  readonly lastUsedAt: string;
}

/** An entry's own JSON record, read through the input guard (a FIFO planted there cannot hang us). */
export function readRecord(file: string): Promise<string> {
  return readInputText(file, { what: 'cache record' });
}

export function parseEntry(text: string, dirKey: string): CacheEntryRecord {
  const parsed = JSON.parse(text) as Partial<CacheEntryRecord>;
  if (parsed.formatVersion !== ENTRY_FORMAT_VERSION)
    throw new Error(`formatVersion ${String(parsed.formatVersion)}`);
  if (parsed.key !== dirKey) throw new Error(`key ${String(parsed.key)} does not match directory ${dirKey}`);
  if (typeof parsed.details !== 'object' || parsed.details === null) throw new Error('no details');
  if (digestOf(parsed.details) !== dirKey) throw new Error('details do not hash to the key');
  if (typeof parsed.files !== 'object' || parsed.files === null) throw new Error('no files');
  if (typeof parsed.createdAt !== 'string') throw new Error('no createdAt');
  return parsed as CacheEntryRecord;
}
