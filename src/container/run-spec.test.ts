// RunSpec validation: what is refused before the engine is asked for anything.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { validateRunSpec } from './run-spec.js';
import type { RunSpec } from './types.js';

const base: RunSpec = {
  image: 'localhost/x:1',
  cmd: ['true'],
  jobId: 'job',
  purpose: 'test',
  logger: pino({ level: 'silent' }),
};

describe('validateRunSpec', () => {
  it('accepts a complete spec with absolute input paths', () => {
    expect(() =>
      validateRunSpec({
        ...base,
        files: [{ path: '/edk2/a.bin', data: new Uint8Array(1) }],
        directories: [{ hostDir: '.', containerDir: '/edk2/src' }],
        user: '1000:1000',
      }),
    ).not.toThrow();
  });

  it.each([
    [{ jobId: '' }, 'Expected `jobId` and `purpose` to be non-empty strings (they label the container)'],
    [{ purpose: '' }, 'Expected `jobId` and `purpose` to be non-empty strings (they label the container)'],
    [{ cmd: [] }, 'Expected `cmd` to be a non-empty array, got `[]`'],
    [
      { files: [{ path: 'rel/a', data: new Uint8Array() }] },
      'Expected input file path to be absolute without `..`, got `rel/a`',
    ],
    [
      { files: [{ path: '/edk2/../etc/passwd', data: new Uint8Array() }] },
      'Expected input file path to be absolute without `..`, got `/edk2/../etc/passwd`',
    ],
    [
      { directories: [{ hostDir: '.', containerDir: '/a/../..' }] },
      'Expected `containerDir` to be absolute without `..`, got `/a/../..`',
    ],
  ] as [Partial<RunSpec>, string][])('refuses %j with a TypeError', (change, message) => {
    expect(() => validateRunSpec({ ...base, ...change })).toThrow(new TypeError(message));
  });

  it.each(['0', '0:0', 'root', 'root:root', ':1000'])('refuses user %s without allowRoot', (user) => {
    let error: unknown;
    try {
      validateRunSpec({ ...base, user });
    } catch (caught) {
      error = caught;
    }
    expect((error as { toJSON(): unknown }).toJSON()).toEqual({
      code: 'E_CONTAINER_ROOT_REFUSED',
      message: `refusing to run a container as \`${user}\` without allowRoot`,
      details: { user },
    });
    expect(() => validateRunSpec({ ...base, user, allowRoot: true })).not.toThrow();
  });
});
