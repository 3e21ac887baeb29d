// Downloads with a pinned digest. This folder is the only one that imports undici
// (STYLE.md): everything else asks for bytes by URL + sha256 and gets a verified file.
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { AbortError } from '../core/errors.js';
import { fsyncPath } from '../core/durable-fs.js';
import { DownloadError } from './errors.js';

export interface DownloadOptions {
  readonly url: string;
  /** Expected lower-case hex SHA-256 of the body. A mismatch is E_DOWNLOAD_DIGEST_MISMATCH. */
  readonly sha256: string;
  /** Final path. Written only after the body is complete and verified (temp file + fsync + rename). */
  readonly dest: string;
  readonly signal?: AbortSignal;
  /**
   * Largest accepted body; a bigger Content-Length or body is E_DOWNLOAD_TOO_LARGE.
   * @default 268_435_456 (256 MiB)
   */
  readonly maxBytes?: number;
  /**
   * Deadline for the whole transfer (headers and body); exceeding it is E_FETCH_TIMEOUT.
   * @default 300_000
   */
  readonly timeoutMs?: number;
  /** The undici dispatcher to use (tests pass their own). @default an Agent following up to 5 redirects */
  readonly dispatcher?: Dispatcher;
}

export interface DownloadResult {
  readonly path: string;
  readonly url: string;
  readonly sha256: string;
  readonly sizeInBytes: number;
  readonly durationMs: number;
}

export const DEFAULT_MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024;
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 300_000;
const MAX_REDIRECTS = 5;
const SHA256_HEX = /^[0-9a-f]{64}$/;

let defaultDispatcher: Dispatcher | undefined;
/** The shared undici dispatcher (follows up to 5 redirects); http-get.ts uses it too. */
export function getDefaultDispatcher(): Dispatcher {
  defaultDispatcher ??= new Agent().compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
  return defaultDispatcher;
}

function assertOptions(options: DownloadOptions): void {
  if (typeof options.url !== 'string' || !/^https?:\/\//.test(options.url)) {
    throw new TypeError(`Expected \`url\` to be an http(s) URL, got \`${String(options.url)}\``);
  }
  if (typeof options.sha256 !== 'string' || !SHA256_HEX.test(options.sha256)) {
    throw new TypeError(
      `Expected \`sha256\` to be 64 lower-case hex digits, got \`${String(options.sha256)}\``,
    );
  }
  if (options.maxBytes !== undefined && !(Number.isSafeInteger(options.maxBytes) && options.maxBytes > 0)) {
    throw new TypeError(
      `Expected \`maxBytes\` to be a positive integer, got \`${String(options.maxBytes)}\``,
    );
  }
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new TypeError(
      `Expected \`timeoutMs\` to be a positive number, got \`${String(options.timeoutMs)}\``,
    );
  }
}

/** Drops a response body we will not read; its late 'error' (aborted) is expected. */
export function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

/**
 * Downloads `url` to `dest`, hashing while streaming. The body goes to a temp file in
 * the destination directory; only a complete body with the expected digest is fsynced
 * and renamed to `dest`. On every failure the temp file is removed and `dest` is untouched.
 */
export async function download(options: DownloadOptions): Promise<DownloadResult> {
  assertOptions(options);
  const { url, dest } = options;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
  const started = performance.now();
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(6).toString('hex')}.part`);

  const failure = (error: unknown, received: number, expectedLength: number | null): Error => {
    if (options.signal?.aborted) {
      return new AbortError(`download of ${url} aborted`, { url }, { cause: error });
    }
    if (timeout.aborted) {
      return new DownloadError('E_FETCH_TIMEOUT', `download of ${url} took longer than ${timeoutMs} ms`, {
        url,
        timeoutMs,
        receivedBytes: received,
      });
    }
    if (error instanceof DownloadError) return error;
    if (expectedLength !== null && received < expectedLength) {
      return new DownloadError(
        'E_DOWNLOAD_TRUNCATED',
        `download of ${url} ended after ${received} of ${expectedLength} bytes`,
        { url, receivedBytes: received, expectedBytes: expectedLength },
        { cause: error },
      );
    }
    const reason = error instanceof Error ? error.message : String(error);
    return new DownloadError(
      'E_FETCH_NETWORK',
      `download of ${url} failed: ${reason}`,
      { url, receivedBytes: received },
      {
        cause: error,
      },
    );
  };

  let received = 0;
  let expectedLength: number | null = null;
  let response: Dispatcher.ResponseData | undefined;
  const file = await open(tmp, 'wx', 0o644);
  try {
    try {
      response = await request(url, {
        method: 'GET',
        signal,
        dispatcher: options.dispatcher ?? getDefaultDispatcher(),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      throw failure(error, 0, null);
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      discard(response.body);
      throw new DownloadError('E_FETCH_HTTP_STATUS', `GET ${url} answered HTTP ${response.statusCode}`, {
        url,
        status: response.statusCode,
      });
    }
    const lengthHeader = response.headers['content-length'];
    if (typeof lengthHeader === 'string' && /^\d+$/.test(lengthHeader)) {
      expectedLength = Number(lengthHeader);
      if (expectedLength > maxBytes) {
        discard(response.body);
        throw new DownloadError(
          'E_DOWNLOAD_TOO_LARGE',
          `GET ${url} announces ${expectedLength} bytes, more than the limit of ${maxBytes}`,
          { url, expectedBytes: expectedLength, maxBytes },
        );
      }
    }
    const hash = createHash('sha256');
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (received > maxBytes) {
          discard(response.body);
          throw new DownloadError(
            'E_DOWNLOAD_TOO_LARGE',
            `GET ${url} sent more than the limit of ${maxBytes} bytes`,
            { url, receivedBytes: received, maxBytes },
          );
        }
        hash.update(chunk);
        await file.write(chunk);
      }
    } catch (error) {
      throw failure(error, received, expectedLength);
    }
    if (expectedLength !== null && received !== expectedLength) {
      throw failure(new Error('body length differs from Content-Length'), received, expectedLength);
    }
    const actual = hash.digest('hex');
    if (actual !== options.sha256) {
      throw new DownloadError(
        'E_DOWNLOAD_DIGEST_MISMATCH',
        `GET ${url}: sha256 is ${actual}, expected ${options.sha256}`,
        { url, expected: options.sha256, actual, sizeInBytes: received },
      );
    }
    await file.sync();
    await file.close();
    await rename(tmp, dest);
    await fsyncPath(path.dirname(dest));
    return {
      path: dest,
      url,
      sha256: actual,
      sizeInBytes: received,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
}
