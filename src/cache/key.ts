// A cache key is `{ value, details }` (STYLE.md, after nx/Bazel): `details` holds the digest
// of every input that changes the output, `value` is the digest of their canonical JSON, so
// a miss can be explained input by input.
import { sha256 } from '../core/digest.js';

/**
 * Every input that changes the built firmware, in the order they are reported:
 * - edk2Source: digest of the EDK2 source tree or archive
 * - overlay: digest of containers/edk2-overlay and of the DSC/FDF patch logic version
 * - builderImage: the builder image id
 * - flags: digest of the canonical JSON of the build flags
 * - target: DEBUG | RELEASE
 * - gop, vbt: sha256 of the inputs
 * - machine: q35 | i440fx
 * - rom: digest of the ROM inputs (a user ROM's sha256, or device id + generator version)
 * - buildLogicVersion: bumped whenever the way inputs become outputs changes
 */
export const CACHE_KEY_INPUTS = [
  'edk2Source',
  'overlay',
  'builderImage',
  'flags',
  'target',
  'gop',
  'vbt',
  'machine',
  'rom',
  'buildLogicVersion',
] as const;

export type CacheKeyInput = (typeof CACHE_KEY_INPUTS)[number];
export type CacheKeyDetails = Readonly<Record<CacheKeyInput, string>>;

export interface CacheKey {
  /** sha256 of canonicalJson(details). */
  readonly value: string;
  readonly details: CacheKeyDetails;
}

/** One input whose digest differs between a cached entry and a request. */
export interface KeyDifference {
  readonly input: string;
  /** The value in the cached entry (null when the entry lacks it). */
  readonly cached: string | null;
  /** The value in the request (null when the request lacks it). */
  readonly requested: string | null;
}

/**
 * JSON with object keys sorted at every level and no whitespace, so equal values give
 * equal text whatever order their properties were created in (RFC 8785 style for the
 * subset we use: strings, finite numbers, booleans, null, arrays, plain objects).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`Expected a finite number, got \`${String(value)}\``);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, item]) => `${JSON.stringify(k)}:${canonicalJson(item)}`).join(',')}}`;
  }
  throw new TypeError(`Expected a JSON value, got \`${typeof value}\``);
}

/** sha256 of the canonical JSON of a value (used for the flags input and for the key itself). */
export function digestOf(value: unknown): string {
  return sha256(canonicalJson(value));
}

/** Builds the key; every input must be a non-empty string. */
export function computeCacheKey(details: CacheKeyDetails): CacheKey {
  const clean: Record<string, string> = {};
  for (const input of CACHE_KEY_INPUTS) {
    const value = (details as Record<string, unknown>)[input];
    if (typeof value !== 'string' || value === '') {
      throw new TypeError(`Expected \`details.${input}\` to be a non-empty string, got \`${String(value)}\``);
    }
    clean[input] = value;
  }
  const frozen = Object.freeze(clean) as CacheKeyDetails;
  return { value: digestOf(frozen), details: frozen };
}

/** The inputs whose values differ, in CACHE_KEY_INPUTS order, then any unknown names sorted. */
export function diffDetails(
  cached: Readonly<Record<string, string>>,
  requested: Readonly<Record<string, string>>,
): KeyDifference[] {
  const known: readonly string[] = CACHE_KEY_INPUTS;
  const extra = [...new Set([...Object.keys(cached), ...Object.keys(requested)])]
    .filter((name) => !known.includes(name))
    .sort();
  const differences: KeyDifference[] = [];
  for (const input of [...known, ...extra]) {
    const a = cached[input] ?? null;
    const b = requested[input] ?? null;
    if (a !== b) differences.push({ input, cached: a, requested: b });
  }
  return differences;
}

/** "3f1c2a9b.." for long digests, the value itself for short ones ("q35", "DEBUG"). */
export function abbreviate(value: string | null, length = 8): string {
  if (value === null) return '(none)';
  const bare = value.startsWith('sha256:') ? value.slice('sha256:'.length) : value;
  return /^[0-9a-f]{16,}$/.test(bare) ? `${bare.slice(0, length)}..` : value;
}

/** "vbt changed: 3f1c2a9b.. -> 9a0e1b2c.." */
export function describeDifference(difference: KeyDifference): string {
  return `${difference.input} changed: ${abbreviate(difference.cached)} -> ${abbreviate(difference.requested)}`;
}
