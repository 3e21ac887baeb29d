import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SAMPLE_KEY_DETAILS as DETAILS } from '../../test/cache-key-details.js';
import {
  abbreviate,
  canonicalJson,
  computeCacheKey,
  describeDifference,
  diffDetails,
  type CacheKeyDetails,
} from './key.js';

describe('canonicalJson', () => {
  it('sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: undefined, b: 2 } })).toBe(
      '{"a":{"b":2,"d":[true,null,"x"]},"b":1}',
    );
    expect(canonicalJson({ x: 1, y: 2 })).toBe(canonicalJson({ y: 2, x: 1 }));
  });

  it('refuses values JSON cannot carry faithfully', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow('Expected a finite number, got `NaN`');
    expect(() => canonicalJson(() => 1)).toThrow('Expected a JSON value, got `function`');
  });
});

describe('computeCacheKey', () => {
  it('is the sha256 of the sorted JSON of the details', () => {
    const text =
      `{"buildLogicVersion":"1","builderImage":"sha256:${'c'.repeat(64)}","edk2Source":"${'a'.repeat(64)}",` +
      `"flags":"${'d'.repeat(64)}","gop":"${'e'.repeat(64)}","machine":"q35","overlay":"${'b'.repeat(64)}",` +
      `"rom":"${'f'.repeat(64)}","target":"DEBUG","vbt":"${'3f1c2a9b'.repeat(8)}"}`;
    const key = computeCacheKey(DETAILS);
    expect(key.value).toBe(createHash('sha256').update(text).digest('hex'));
    expect(key.details).toEqual(DETAILS);
  });

  it('changes when any single input changes', () => {
    const base = computeCacheKey(DETAILS).value;
    const values = new Set([base]);
    for (const name of Object.keys(DETAILS) as (keyof CacheKeyDetails)[]) {
      values.add(computeCacheKey({ ...DETAILS, [name]: `${DETAILS[name]}x` }).value);
    }
    expect(values.size).toBe(11);
  });

  it('refuses a missing or empty input', () => {
    expect(() => computeCacheKey({ ...DETAILS, rom: '' })).toThrow(
      'Expected `details.rom` to be a non-empty string, got ``',
    );
    const { vbt: _vbt, ...withoutVbt } = DETAILS;
    expect(() => computeCacheKey(withoutVbt as CacheKeyDetails)).toThrow('`details.vbt`');
  });
});

describe('diffDetails and describeDifference', () => {
  it('names exactly the inputs that differ, in input order', () => {
    const requested = { ...DETAILS, vbt: '9a0e1b2c'.repeat(8), machine: 'i440fx' };
    const differences = diffDetails(DETAILS, requested);
    expect(differences).toEqual([
      { input: 'vbt', cached: '3f1c2a9b'.repeat(8), requested: '9a0e1b2c'.repeat(8) },
      { input: 'machine', cached: 'q35', requested: 'i440fx' },
    ]);
    expect(differences.map((d) => describeDifference(d))).toEqual([
      'vbt changed: 3f1c2a9b.. -> 9a0e1b2c..',
      'machine changed: q35 -> i440fx',
    ]);
  });

  it('abbreviates digests and image ids but not short values', () => {
    expect(abbreviate(`sha256:${'c'.repeat(64)}`)).toBe('cccccccc..');
    expect(abbreviate('DEBUG')).toBe('DEBUG');
    expect(abbreviate(null)).toBe('(none)');
  });
});
