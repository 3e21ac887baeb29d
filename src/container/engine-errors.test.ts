// The engine's 404s and other failures as dockerode reports them, from a real
// HTTP server on 127.0.0.1 standing in for the engine's API (test/engine-stand-in.ts).
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngineStandIn } from '../../test/engine-stand-in.js';
import type { EngineStandIn } from '../../test/engine-stand-in.js';
import { errorOf } from '../../test/rejection.js';
import { AbortError, OvmfBuildError } from '../core/errors.js';
import { engineFailure, engineStatus, isAbort, isNotFound, unlessNotFound } from './engine-errors.js';

let standIn: EngineStandIn;
let docker: Docker;

beforeAll(async () => {
  // 404 for /images/<name>/json and /containers/<id>/archive, 409 for DELETE, 500 elsewhere.
  standIn = await startEngineStandIn(({ url, method }) => {
    const status = url.includes('/json') || url.includes('/archive') ? 404 : method === 'DELETE' ? 409 : 500;
    return { status, body: { message: `answer ${status}` } };
  });
  docker = new Docker({ host: '127.0.0.1', port: standIn.port, protocol: 'http' });
});

afterAll(() => standIn.close());

describe('isNotFound', () => {
  it('is true for the engine 404 of a missing image and a missing container path', async () => {
    const image = await errorOf(docker.getImage('localhost/none:0').inspect());
    const archive = await errorOf(docker.getContainer('abc').infoArchive({ path: '/none' }));
    expect([isNotFound(image), engineStatus(image)]).toEqual([true, 404]);
    expect([isNotFound(archive), engineStatus(archive)]).toEqual([true, 404]);
  });

  it('is false for other statuses, plain errors and non-errors', async () => {
    const conflict = await errorOf(docker.getImage('in-use').remove());
    expect([isNotFound(conflict), engineStatus(conflict)]).toEqual([false, 409]);
    expect([isNotFound(new Error('x')), engineStatus(new Error('x'))]).toEqual([false, undefined]);
    expect([isNotFound(null), isNotFound(undefined), isNotFound('404')]).toEqual([false, false, false]);
  });
});

describe('unlessNotFound', () => {
  it('turns a 404 into the given value and rethrows anything else', async () => {
    expect(await unlessNotFound(docker.getImage('localhost/none:0').inspect(), null)).toBeNull();
    const conflict = await errorOf(unlessNotFound(docker.getImage('in-use').remove(), null));
    expect(engineStatus(conflict)).toBe(409);
    expect(await unlessNotFound(Promise.resolve('value'), null)).toBe('value');
  });
});

describe('engineFailure', () => {
  it('codes an engine error with its message and keeps it as the cause', async () => {
    const raw = await errorOf(docker.getImage('in-use').remove());
    const failure = engineFailure('E_IMAGE_REMOVE_FAILED', 'removing in-use', raw, { ref: 'in-use' });
    expect(failure).toBeInstanceOf(OvmfBuildError);
    expect((failure as OvmfBuildError).toJSON()).toEqual({
      code: 'E_IMAGE_REMOVE_FAILED',
      message: `removing in-use failed: ${raw.message}`,
      details: { ref: 'in-use' },
    });
    expect((failure as Error).cause).toBe(raw);
  });

  it('passes our own errors and aborts through unchanged', () => {
    const ours = new OvmfBuildError('E_CONTAINER_OUTPUT_MISSING', 'missing');
    const aborted = AbortSignal.abort().reason as Error;
    expect(engineFailure('E_CONTAINER_START_FAILED', 'x', ours, {})).toBe(ours);
    expect(engineFailure('E_CONTAINER_START_FAILED', 'x', aborted, {})).toBe(aborted);
    expect([isAbort(aborted), isAbort(new AbortError()), isAbort(new Error('x'))]).toEqual([
      true,
      true,
      false,
    ]);
  });
});
