import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { errorOf } from '../../test/rejection.js';
import { download } from './download.js';
import { resolveInput } from './resolve-input.js';

const BODY = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) & 0xff));
const BODY_SHA = createHash('sha256').update(BODY).digest('hex');

let server: Server;
let base: string;
let dir: string;
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests += 1;
    switch (req.url) {
      case '/ok':
        res.writeHead(200, { 'content-length': String(BODY.length) });
        res.end(BODY);
        return;
      case '/wrong': {
        const wrong = Buffer.from(BODY);
        wrong[500] = (wrong[500] as number) ^ 0xff;
        res.writeHead(200, { 'content-length': String(wrong.length) });
        res.end(wrong);
        return;
      }
      case '/truncated':
        // Announces the full length, sends a third, then drops the connection.
        res.writeHead(200, { 'content-length': String(BODY.length) });
        res.write(BODY.subarray(0, 33_333), () => res.destroy());
        return;
      case '/chunked':
        res.writeHead(200);
        res.write(BODY.subarray(0, 50_000));
        res.end(BODY.subarray(50_000));
        return;
      case '/slow':
        res.writeHead(200, { 'content-length': String(BODY.length) });
        res.write(BODY.subarray(0, 10));
        // never finishes; the client aborts
        return;
      case '/redirect':
        res.writeHead(302, { location: '/ok' });
        res.end();
        return;
      default:
        res.writeHead(404);
        res.end('not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-fetch-'));
});

describe('download', () => {
  it('streams the body to dest with the right digest and leaves no temp file', async () => {
    const dest = path.join(dir, 'file.bin');
    const result = await download({ url: `${base}/ok`, sha256: BODY_SHA, dest });
    expect(result).toMatchObject({ path: dest, sha256: BODY_SHA, sizeInBytes: BODY.length });
    expect(Buffer.compare(await readFile(dest), BODY)).toBe(0);
    expect(await readdir(dir)).toEqual(['file.bin']);
  });

  it('accepts a chunked body without Content-Length and follows redirects', async () => {
    const a = await download({ url: `${base}/chunked`, sha256: BODY_SHA, dest: path.join(dir, 'a') });
    const b = await download({ url: `${base}/redirect`, sha256: BODY_SHA, dest: path.join(dir, 'b') });
    expect([a.sizeInBytes, b.sizeInBytes]).toEqual([BODY.length, BODY.length]);
    expect((await readdir(dir)).sort()).toEqual(['a', 'b']);
  });

  it('rejects wrong bytes with E_DOWNLOAD_DIGEST_MISMATCH naming both digests, nothing left behind', async () => {
    const wrong = Buffer.from(BODY);
    wrong[500] = (wrong[500] as number) ^ 0xff;
    const actual = createHash('sha256').update(wrong).digest('hex');
    const error = await errorOf(
      download({ url: `${base}/wrong`, sha256: BODY_SHA, dest: path.join(dir, 'f') }),
    );
    expect(error.code).toBe('E_DOWNLOAD_DIGEST_MISMATCH');
    expect(error.details).toEqual({
      url: `${base}/wrong`,
      expected: BODY_SHA,
      actual,
      sizeInBytes: BODY.length,
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('reports a body shorter than its Content-Length as E_DOWNLOAD_TRUNCATED', async () => {
    const error = await errorOf(
      download({ url: `${base}/truncated`, sha256: BODY_SHA, dest: path.join(dir, 'f') }),
    );
    expect(error.code).toBe('E_DOWNLOAD_TRUNCATED');
    expect(error.details['expectedBytes']).toBe(BODY.length);
    expect(error.details['receivedBytes']).toBeLessThan(BODY.length);
    expect(await readdir(dir)).toEqual([]);
  });

  it('maps HTTP errors to E_FETCH_HTTP_STATUS with the status', async () => {
    const error = await errorOf(
      download({ url: `${base}/missing`, sha256: BODY_SHA, dest: path.join(dir, 'f') }),
    );
    expect(error.code).toBe('E_FETCH_HTTP_STATUS');
    expect(error.details).toEqual({ url: `${base}/missing`, status: 404 });
    expect(await readdir(dir)).toEqual([]);
  });

  it('enforces maxBytes from Content-Length before reading the body', async () => {
    const error = await errorOf(
      download({ url: `${base}/ok`, sha256: BODY_SHA, dest: path.join(dir, 'f'), maxBytes: 1000 }),
    );
    expect(error.code).toBe('E_DOWNLOAD_TOO_LARGE');
    expect(error.details).toEqual({ url: `${base}/ok`, expectedBytes: BODY.length, maxBytes: 1000 });
  });

  it('enforces maxBytes on a body without Content-Length', async () => {
    const error = await errorOf(
      download({ url: `${base}/chunked`, sha256: BODY_SHA, dest: path.join(dir, 'f'), maxBytes: 60_000 }),
    );
    expect(error.code).toBe('E_DOWNLOAD_TOO_LARGE');
    expect(await readdir(dir)).toEqual([]);
  });

  it('stops a slow download on abort with E_ABORTED and on timeout with E_FETCH_TIMEOUT', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('test')), 200);
    const aborted = await errorOf(
      download({
        url: `${base}/slow`,
        sha256: BODY_SHA,
        dest: path.join(dir, 'f'),
        signal: controller.signal,
      }),
    );
    expect(aborted.code).toBe('E_ABORTED');
    const timedOut = await errorOf(
      download({ url: `${base}/slow`, sha256: BODY_SHA, dest: path.join(dir, 'g'), timeoutMs: 300 }),
    );
    expect(timedOut.code).toBe('E_FETCH_TIMEOUT');
    // The body never ends: without the abort and the timeout this never returns. Room for a
    // loaded CI machine under nice; the two stops themselves come at 200 and 300 ms.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await readdir(dir)).toEqual([]);
  });

  it('rejects bad arguments with a TypeError', async () => {
    await expect(download({ url: 'ftp://x', sha256: BODY_SHA, dest: path.join(dir, 'f') })).rejects.toThrow(
      'Expected `url` to be an http(s) URL, got `ftp://x`',
    );
    await expect(download({ url: `${base}/ok`, sha256: 'abc', dest: path.join(dir, 'f') })).rejects.toThrow(
      TypeError,
    );
  });
});

describe('resolveInput', () => {
  it('reads a local file and checks its pinned digest', async () => {
    const file = path.join(dir, 'in.bin');
    await writeFile(file, BODY);
    const ok = await resolveInput({ path: 'in.bin', sha256: BODY_SHA }, { cwd: dir });
    expect(ok).toMatchObject({
      sha256: BODY_SHA,
      sizeInBytes: BODY.length,
      origin: { kind: 'path', path: file },
    });
    const error = await errorOf(resolveInput({ path: file, sha256: '0'.repeat(64) }, { cwd: dir }));
    expect(error.code).toBe('E_INPUT_DIGEST_MISMATCH');
    expect((await errorOf(resolveInput({ path: 'nope' }, { cwd: dir }))).code).toBe('E_INPUT_NOT_FOUND');
    expect((await errorOf(resolveInput({ path: '.' }, { cwd: dir }))).code).toBe('E_INPUT_NOT_A_FILE');
  });

  it('downloads a URL input once and reuses the kept copy', async () => {
    const downloadDir = path.join(dir, 'dl');
    const before = requests;
    const first = await resolveInput({ url: `${base}/ok`, sha256: BODY_SHA }, { cwd: dir, downloadDir });
    const second = await resolveInput(
      { url: `${base}/ok`, sha256: BODY_SHA },
      { cwd: dir, downloadDir, offline: true },
    );
    expect(requests - before).toBe(1);
    expect(first.localPath).toBe(path.join(downloadDir, BODY_SHA));
    expect(second.origin).toEqual({ kind: 'url', url: `${base}/ok` });
    const offline = await errorOf(
      resolveInput({ url: `${base}/ok`, sha256: 'a'.repeat(64) }, { cwd: dir, downloadDir, offline: true }),
    );
    expect(offline.code).toBe('E_FETCH_OFFLINE');
  });
});
