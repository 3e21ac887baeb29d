// The engine's 404s and other failures as dockerode reports them, from a real
// HTTP server on 127.0.0.1 standing in for the engine's API.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, OvmfBuildError } from '../core/errors.js';
import { engineFailure, engineStatus, isAbort, isNotFound, unlessNotFound } from './engine-errors.js';

let server: http.Server;
let docker: Docker;

beforeAll(async () => {
  // 404 for /images/<name>/json and /containers/<id>/archive, 409 for DELETE, 500 elsewhere.
  server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    const status =
      req.url?.includes('/json') || req.url?.includes('/archive') ? 404 : req.method === 'DELETE' ? 409 : 500;
    res.writeHead(status).end(JSON.stringify({ message: `answer ${status}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  docker = new Docker({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, protocol: 'http' });
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );

describe('isNotFound', () => {
  it('is true for the engine 404 of a missing image and a missing container path', async () => {
    const image = await rejection(docker.getImage('localhost/none:0').inspect());
    const archive = await rejection(docker.getContainer('abc').infoArchive({ path: '/none' }));
    expect([isNotFound(image), engineStatus(image)]).toEqual([true, 404]);
    expect([isNotFound(archive), engineStatus(archive)]).toEqual([true, 404]);
  });

  it('is false for other statuses, plain errors and non-errors', async () => {
    const conflict = await rejection(docker.getImage('in-use').remove());
    expect([isNotFound(conflict), engineStatus(conflict)]).toEqual([false, 409]);
    expect([isNotFound(new Error('x')), engineStatus(new Error('x'))]).toEqual([false, undefined]);
    expect([isNotFound(null), isNotFound(undefined), isNotFound('404')]).toEqual([false, false, false]);
  });
});

describe('unlessNotFound', () => {
  it('turns a 404 into the given value and rethrows anything else', async () => {
    expect(await unlessNotFound(docker.getImage('localhost/none:0').inspect(), null)).toBeNull();
    const conflict = await rejection(unlessNotFound(docker.getImage('in-use').remove(), null));
    expect(engineStatus(conflict)).toBe(409);
    expect(await unlessNotFound(Promise.resolve('value'), null)).toBe('value');
  });
});

describe('engineFailure', () => {
  it('codes an engine error with its message and keeps it as the cause', async () => {
    const raw = await rejection(docker.getImage('in-use').remove());
    const failure = engineFailure('E_IMAGE_REMOVE_FAILED', 'removing in-use', raw, { ref: 'in-use' });
    expect(failure).toBeInstanceOf(OvmfBuildError);
    expect((failure as OvmfBuildError).toJSON()).toEqual({
      code: 'E_IMAGE_REMOVE_FAILED',
      message: `removing in-use failed: ${(raw as Error).message}`,
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
