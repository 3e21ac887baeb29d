import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../core/errors.js';
import type { VariantTemplate } from '../edk2/variant-templates.js';
import { JobSession, variantTemplatesOnDisk } from './session.js';

const KEY = 'abcdef0123456789abcdef01';

function template(): VariantTemplate {
  const code = new Uint8Array(64).fill(1);
  const vars = new Uint8Array(16).fill(2);
  const combined = new Uint8Array(80);
  combined.set(vars, 0);
  combined.set(code, 16);
  return {
    code,
    vars,
    combined,
    gop: new Uint8Array(4),
    vbt: new Uint8Array(4),
    helperDrivers: { igdAssignment: new Uint8Array(2), gopPolicy: new Uint8Array(2) },
    jobId: 'job',
    builder: { id: 'sha256:b', ref: 'b:0' },
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'job-session-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('JobSession variant templates', () => {
  it('keeps templates in $XDG_CACHE_HOME/ovmf-build/variant-templates by default, written before dispose ends', async () => {
    const env = { XDG_CACHE_HOME: dir, HOME: dir };
    {
      await using session = new JobSession(env);
      session.variantTemplates.offer(KEY, template());
    }
    expect(await readdir(path.join(dir, 'ovmf-build', 'variant-templates'))).toEqual([`${KEY}.template`]);
    await using later = new JobSession(env);
    expect((await later.variantTemplates.load(KEY))?.jobId).toBe('job');
  });

  it('OVMF_BUILD_VARIANT_TEMPLATES=memory writes nothing', async () => {
    {
      await using session = new JobSession({ XDG_CACHE_HOME: dir, OVMF_BUILD_VARIANT_TEMPLATES: 'memory' });
      session.variantTemplates.offer(KEY, template());
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes disk, memory or nothing; anything else is a usage error', () => {
    expect(
      [{}, { OVMF_BUILD_VARIANT_TEMPLATES: '' }, { OVMF_BUILD_VARIANT_TEMPLATES: 'disk' }].map(
        variantTemplatesOnDisk,
      ),
    ).toEqual([true, true, true]);
    expect(variantTemplatesOnDisk({ OVMF_BUILD_VARIANT_TEMPLATES: 'memory' })).toBe(false);
    expect(() => new JobSession({ OVMF_BUILD_VARIANT_TEMPLATES: 'off' })).toThrow(
      new UsageError('OVMF_BUILD_VARIANT_TEMPLATES must be disk or memory, not "off"'),
    );
  });
});
