import { describe, expect, it } from 'vitest';
import { VariantTemplates, type VariantTemplate } from './variant-templates.js';

const template = (jobId: string): VariantTemplate => ({
  code: new Uint8Array(1),
  combined: new Uint8Array(2),
  vars: new Uint8Array(1),
  gop: new Uint8Array(0),
  vbt: new Uint8Array(0),
  helperDrivers: { igdAssignment: new Uint8Array(0), gopPolicy: new Uint8Array(0) },
  jobId,
  builder: { id: 'sha256:builder', ref: 'localhost/ovmf-build/edk2-builder:0' },
  compiled: `compiled-${jobId}`,
});

describe('VariantTemplates', () => {
  it('keeps the first template of a key and wakes the builds waiting for it', async () => {
    const templates = new VariantTemplates();
    const waiting = templates.waitFor('k1', new AbortController().signal);
    const other = templates.waitFor('k2', AbortSignal.timeout(50));
    templates.offer('k1', template('clean'));
    templates.offer('k1', template('later'));
    expect(await waiting).toBe(true);
    expect(templates.get('k1')?.jobId).toBe('clean');
    // Another key's waiter is not woken; it gives up when its signal aborts.
    expect(await other).toBe(false);
    expect(templates.get('k2')).toBeUndefined();
    expect([templates.hasCompiled('compiled-clean'), templates.hasCompiled('compiled-later')]).toEqual([
      true,
      false,
    ]);
    expect(await templates.waitFor('k1', AbortSignal.abort())).toBe(true);
    expect(await templates.waitFor('k3', AbortSignal.abort())).toBe(false);
  });

  it('keeps at most four keys, dropping the oldest', () => {
    const templates = new VariantTemplates();
    for (const key of ['a', 'b', 'c', 'd', 'e']) templates.offer(key, template(key));
    expect(['a', 'b', 'c', 'd', 'e'].map((key) => templates.get(key)?.jobId ?? null)).toEqual([
      null,
      'b',
      'c',
      'd',
      'e',
    ]);
  });
});
