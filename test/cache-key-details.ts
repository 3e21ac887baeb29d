// One set of cache-key details for the cache's unit tests: every input a distinct, readable
// digest, and a vbt digest whose abbreviation (3f1c2a9b..) the miss-explanation tests quote.
import type { CacheKeyDetails } from '../src/cache/key.js';

export const SAMPLE_KEY_DETAILS: CacheKeyDetails = {
  edk2Source: 'a'.repeat(64),
  overlay: 'b'.repeat(64),
  builderImage: `sha256:${'c'.repeat(64)}`,
  flags: 'd'.repeat(64),
  target: 'DEBUG',
  gop: 'e'.repeat(64),
  vbt: '3f1c2a9b'.repeat(8),
  machine: 'q35',
  rom: 'f'.repeat(64),
  buildLogicVersion: '1',
};
