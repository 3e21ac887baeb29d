import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../core/errors.js';
import { smallTemplate } from '../../test/variant-template-fixture.js';
import { JobSession, variantTemplatesOnDisk } from './session.js';

const KEY = 'abcdef0123456789abcdef01';

const template = (): ReturnType<typeof smallTemplate> => smallTemplate('job', 1, { code: 64, vars: 16 });

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
