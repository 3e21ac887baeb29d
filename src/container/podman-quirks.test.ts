// The Podman adapter's requests as an engine receives them (a real HTTP server
// on 127.0.0.1 standing in for the API): the commit's `{}` body and query, the
// image-id form and the rootfs import query.
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngineStandIn } from '../../test/engine-stand-in.js';
import type { EngineStandIn, SeenRequest } from '../../test/engine-stand-in.js';
import { commitContainer } from './commit.js';
import { imageName, postCommit, rootfsImportOptions } from './podman-quirks.js';

let standIn: EngineStandIn;
let docker: Docker;
let seen: SeenRequest[];
let answer: { status: number; body: unknown } = { status: 201, body: {} };

beforeAll(async () => {
  standIn = await startEngineStandIn(() => answer);
  seen = standIn.seen;
  docker = new Docker({ host: '127.0.0.1', port: standIn.port, protocol: 'http' });
});

afterAll(() => standIn.close());

describe('postCommit', () => {
  it('POSTs /commit with container, repo and tag in the query and a `{}` JSON body', async () => {
    seen.length = 0;
    answer = { status: 201, body: { Id: `sha256:${'a'.repeat(64)}` } };
    expect(await postCommit(docker, { container: 'c0ffee', repo: 'localhost/ws', tag: 't1' })).toEqual({
      Id: `sha256:${'a'.repeat(64)}`,
    });
    expect(seen).toHaveLength(1);
    const request = seen[0] as SeenRequest;
    const url = new URL(request.url, 'http://engine');
    expect({
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: request.contentType,
      body: request.body,
    }).toEqual({
      method: 'POST',
      path: '/commit',
      query: { container: 'c0ffee', repo: 'localhost/ws', tag: 't1' },
      contentType: 'application/json',
      body: '{}',
    });
  });

  it('commitContainer splits the ref and codes an engine failure or a missing id', async () => {
    seen.length = 0;
    answer = { status: 201, body: { Id: 'img' } };
    expect(await commitContainer(docker, 'c1', 'localhost:5000/ovmf/ws:abc')).toBe('img');
    expect(Object.fromEntries(new URL(seen[0]?.url ?? '', 'http://engine').searchParams)).toEqual({
      container: 'c1',
      repo: 'localhost:5000/ovmf/ws',
      tag: 'abc',
    });
    answer = { status: 201, body: {} };
    await expect(commitContainer(docker, 'c1', 'localhost/ws:abc')).rejects.toMatchObject({
      code: 'E_CONTAINER_COMMIT_FAILED',
      message: 'committing c1 as localhost/ws:abc returned no image id',
      details: { containerId: 'c1', ref: 'localhost/ws:abc' },
    });
    answer = { status: 404, body: { message: 'no such container' } };
    const missing = commitContainer(docker, 'gone', 'localhost/ws:abc');
    await expect(missing).rejects.toHaveProperty('code', 'E_CONTAINER_COMMIT_FAILED');
    await expect(missing).rejects.toHaveProperty('details', { containerId: 'gone', ref: 'localhost/ws:abc' });
    await expect(missing).rejects.toThrow(/^committing the container as localhost\/ws:abc failed: /);
  });
});

describe('imageName', () => {
  it('gives a bare 64-hex id the sha256: prefix and leaves every other reference alone', () => {
    const id = '0123456789abcdef'.repeat(4);
    expect(imageName(id)).toBe(`sha256:${id}`);
    expect(imageName(`sha256:${id}`)).toBe(`sha256:${id}`);
    expect(imageName('localhost/ovmf-build/edk2-builder:0123456789abcdef')).toBe(
      'localhost/ovmf-build/edk2-builder:0123456789abcdef',
    );
    expect(imageName(id.slice(0, 63))).toBe(id.slice(0, 63));
    expect(imageName(id.toUpperCase())).toBe(id.toUpperCase());
  });
});

describe('rootfsImportOptions', () => {
  it('carries the tag inside repo= and sets a default command', () => {
    expect(rootfsImportOptions('localhost/ovmf-build/debian-base:bookworm-0123')).toEqual({
      repo: 'localhost/ovmf-build/debian-base:bookworm-0123',
      changes: 'CMD ["/bin/bash"]',
    });
  });
});
