// HTTP for the mirror (src/mirror): a conditional GET of a small file (If-None-Match, 304) and a
// resumable download (Range + If-Range, RFC 9110 sections 13.1.5 and 14). A resumed transfer
// keeps its bytes in a `.part` file with the validator (strong ETag) of the response that
// started it beside it; If-Range makes the server send the whole new file instead of a range
// when the object changed meanwhile. The caller checks size and sha256 of the finished file.
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request, type Dispatcher } from 'undici';
import { AbortError } from '../core/errors.js';
import { discard, getDefaultDispatcher } from './download.js';
import { DownloadError } from './errors.js';

export interface GetSmallOptions {
  readonly url: string;
  /** The ETag of the copy we hold: the server answers 304 when it is still current. */
  readonly ifNoneMatch?: string;
  /** @default 16 MiB */
  readonly maxBytes?: number;
  /** @default 60_000 */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export type GetSmallResult =
  | { readonly status: 200; readonly bytes: Buffer; readonly etag: string | null }
  | { readonly status: 304; readonly etag: string | null };

export interface ResumableOptions {
  readonly url: string;
  /** Where the bytes accumulate; kept on failure so the next call resumes. */
  readonly partFile: string;
  /** The size the file must have; more is E_DOWNLOAD_TOO_LARGE. */
  readonly expectedSize: number;
  /** @default 300_000 */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ResumableResult {
  /** Bytes already in the part file when this call started and that the server let us keep (206). */
  readonly resumedFromByte: number;
  readonly receivedBytes: number;
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | null {
  const value = headers[name];
  return typeof value === 'string' ? value : Array.isArray(value) ? (value[0] ?? null) : null;
}

function failed(
  url: string,
  error: unknown,
  signal: AbortSignal | undefined,
  timeout: AbortSignal,
  timeoutMs: number,
  received: number,
): Error {
  if (signal?.aborted) return new AbortError(`download of ${url} aborted`, { url }, { cause: error });
  if (timeout.aborted) {
    return new DownloadError('E_FETCH_TIMEOUT', `download of ${url} took longer than ${timeoutMs} ms`, {
      url,
      timeoutMs,
      receivedBytes: received,
    });
  }
  if (error instanceof DownloadError || error instanceof AbortError) return error;
  return new DownloadError(
    'E_FETCH_NETWORK',
    `download of ${url} failed: ${error instanceof Error ? error.message : String(error)}`,
    { url, receivedBytes: received },
    { cause: error },
  );
}

function statusError(url: string, status: number): DownloadError {
  return new DownloadError('E_FETCH_HTTP_STATUS', `GET ${url} answered HTTP ${status}`, { url, status });
}

/** GET of a small file with an optional If-None-Match. Any status but 200 and 304 is E_FETCH_HTTP_STATUS. */
export async function getSmall(options: GetSmallOptions): Promise<GetSmallResult> {
  const maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
  let received = 0;
  try {
    const response = await request(options.url, {
      method: 'GET',
      signal,
      dispatcher: getDefaultDispatcher(),
      headers: options.ifNoneMatch === undefined ? {} : { 'if-none-match': options.ifNoneMatch },
    });
    const etag = header(response.headers, 'etag');
    if (response.statusCode === 304) {
      discard(response.body);
      return { status: 304, etag };
    }
    if (response.statusCode !== 200) {
      discard(response.body);
      throw statusError(options.url, response.statusCode);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      received += chunk.length;
      if (received <= maxBytes) continue;
      discard(response.body);
      throw new DownloadError('E_DOWNLOAD_TOO_LARGE', `GET ${options.url} sent more than ${maxBytes} bytes`, {
        url: options.url,
        maxBytes,
      });
    }
    return { status: 200, bytes: Buffer.concat(chunks), etag };
  } catch (error) {
    throw failed(options.url, error, options.signal, timeout, timeoutMs, received);
  }
}

const validatorFile = (partFile: string): string => `${partFile}.validator`;

/** A strong ETag (If-Range needs one, RFC 9110 13.1.5); a weak one or none cannot resume. */
function strongEtag(value: string | null): string | null {
  return value !== null && value.startsWith('"') ? value : null;
}

/**
 * Downloads `url` into `partFile`, resuming from its current length when the part file carries
 * the validator of its first response: `Range: bytes=N-` with `If-Range`. A 206 whose
 * Content-Range starts at N is appended; a 200 (the object changed, or no range support)
 * replaces the part; a 416 restarts from zero. The finished part has `expectedSize` bytes.
 */
export async function downloadResumable(options: ResumableOptions): Promise<ResumableResult> {
  const { url, partFile, expectedSize } = options;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
  const have = await stat(partFile).then(
    (s) => s.size,
    () => 0,
  );
  const validator = await readFile(validatorFile(partFile), 'utf8').catch(() => null);
  const resumeFrom = have > 0 && have < expectedSize && validator !== null ? have : 0;
  let received = 0;
  try {
    let response = await request(url, {
      method: 'GET',
      signal,
      dispatcher: getDefaultDispatcher(),
      headers: resumeFrom > 0 ? { range: `bytes=${resumeFrom}-`, 'if-range': validator as string } : {},
    });
    let start = 0;
    if (response.statusCode === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(response.headers, 'content-range') ?? '');
      if (range === null || Number(range[1]) !== resumeFrom) {
        discard(response.body);
        throw new DownloadError(
          'E_FETCH_HTTP_STATUS',
          `GET ${url} answered 206 for another range than bytes=${resumeFrom}-`,
          {
            url,
            status: 206,
          },
        );
      }
      start = resumeFrom;
    } else if (response.statusCode === 416 && resumeFrom > 0) {
      discard(response.body);
      response = await request(url, { method: 'GET', signal, dispatcher: getDefaultDispatcher() });
    }
    if (response.statusCode !== 200 && response.statusCode !== 206) {
      discard(response.body);
      throw statusError(url, response.statusCode);
    }
    if (start === 0) {
      // A fresh transfer: remember its validator before the first byte lands, so a kill at any
      // point leaves a part file that the next run can resume (or knows it cannot).
      await rm(validatorFile(partFile), { force: true });
      const etag = strongEtag(header(response.headers, 'etag'));
      await writeFile(partFile, new Uint8Array(0));
      if (etag !== null) await writeFile(validatorFile(partFile), etag);
    }
    const file = await open(partFile, start === 0 ? 'w' : 'a');
    try {
      let total = start;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        total += chunk.length;
        received += chunk.length;
        if (total > expectedSize) {
          discard(response.body);
          await file.close();
          await rm(partFile, { force: true });
          throw new DownloadError(
            'E_DOWNLOAD_TOO_LARGE',
            `GET ${url} sent more than the ${expectedSize} bytes the index lists`,
            {
              url,
              maxBytes: expectedSize,
            },
          );
        }
        await file.write(chunk);
      }
      if (total < expectedSize) {
        throw new DownloadError(
          'E_DOWNLOAD_TRUNCATED',
          `download of ${url} ended after ${total} of ${expectedSize} bytes`,
          {
            url,
            receivedBytes: total,
            expectedBytes: expectedSize,
          },
        );
      }
    } finally {
      await file.close().catch(() => undefined);
    }
    return { resumedFromByte: start, receivedBytes: received };
  } catch (error) {
    throw failed(url, error, options.signal, timeout, timeoutMs, received);
  }
}

/** Removes a part file and its validator (after the object was committed). */
export async function removePart(partFile: string): Promise<void> {
  await rm(partFile, { force: true });
  await rm(validatorFile(partFile), { force: true });
}
