// The embedded HTTP server of the mirror tree (issue 13 item 2): node:http with @fastify/send
// doing the file serving (Range, HEAD, Content-Type, Last-Modified), and this file adding what
// send does not do: strong ETags from the sha256 (conditions.ts, digest-cache.ts), the tree's
// Cache-Control rules (cache-policy.ts), and refusing symlinks (send follows them). Everything per
// request is asynchronous: one stat (send's), a realpath for a path not seen before, a digest
// looked up in memory.
import type { Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import send from '@fastify/send';
import { InputError, OvmfBuildError } from '../core/errors.js';
import { cacheControlFor } from './cache-policy.js';
import { evaluateConditions, strongEtag } from './conditions.js';
import { FileCache } from './file-cache.js';

export const DEFAULT_SERVE_HOST = '127.0.0.1';
export const DEFAULT_SERVE_PORT = 8080;

export interface ServeOptions {
  /** The mirror tree to serve (`mirror index --out`); symlinks inside it are refused. */
  readonly root: string;
  /** Address to bind; 127.0.0.1 unless the caller chooses to expose the mirror. */
  readonly host?: string;
  /** TCP port; 0 picks a free one (see MirrorServer.url). Default 8080. */
  readonly port?: number;
}

export interface MirrorServer extends AsyncDisposable {
  /** `http://host:port/` as bound (the real port when 0 was asked). */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, ends idle keep-alive connections and waits for responses in flight. */
  close(): Promise<void>;
}

/** What onFile learned about the file send chose. */
interface Chosen {
  readonly etag: string;
  readonly cacheControl: string;
  readonly outcome: 'send' | 'not-modified' | 'precondition-failed';
  /** The whole file when it is small: send then only computes the headers (as for HEAD). */
  readonly bytes: Buffer | null;
}

/** send's request view: it reads only `method` and `headers`, so conditions can be rewritten. */
interface SendRequest {
  method: string;
  headers: Record<string, string | string[] | undefined>;
}

class RefusedPath extends Error {}

const SEND_OPTIONS = {
  dotfiles: 'ignore',
  etag: false,
  cacheControl: false,
  index: 'index.html',
} as const;

const COMMON_HEADERS = { 'X-Content-Type-Options': 'nosniff' } as const;

/** Starts serving `root`; resolves once listening. */
export async function startMirrorServer(options: ServeOptions): Promise<MirrorServer> {
  const root = await checkedRoot(options.root);
  const handler = requestHandler(root, new FileCache());
  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    handler(req, res).catch(() => {
      // The response already failed (client gone, read error): nothing left to tell anyone.
      res.destroy();
    });
  });
  const host = options.host ?? DEFAULT_SERVE_HOST;
  await listen(server, host, options.port ?? DEFAULT_SERVE_PORT);
  const port = (server.address() as AddressInfo).port;
  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${urlHost}:${port}/`, port, close, [Symbol.asyncDispose]: close };
}

/** The real path of the tree to serve: E_INPUT_NOT_FOUND if missing, E_SERVE_ROOT_NOT_A_DIRECTORY if a file. */
export async function checkedRoot(dir: string): Promise<string> {
  let resolved: string;
  try {
    resolved = await realpath(path.resolve(dir));
  } catch (error) {
    throw new InputError(
      'E_INPUT_NOT_FOUND',
      `the mirror tree ${dir} does not exist`,
      { path: dir },
      { cause: error },
    );
  }
  if (!(await stat(resolved)).isDirectory()) {
    throw new InputError('E_SERVE_ROOT_NOT_A_DIRECTORY', `the mirror tree ${dir} is not a directory`, {
      path: dir,
    });
  }
  return resolved;
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new OvmfBuildError('E_SERVE_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${error.message}`, {
          host,
          port,
          errno: error.code ?? null,
        }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

/** The bytes a 200 or 206 (its `Content-Range: bytes a-b/n`, from send) carries. */
function bodyOf(bytes: Buffer, contentRange: string | undefined): Buffer {
  const range = contentRange === undefined ? null : /^bytes (\d+)-(\d+)\//.exec(contentRange);
  return range === null ? bytes : bytes.subarray(Number(range[1]), Number(range[2]) + 1);
}

/** Entries of the symlink verdict cache before it is cleared. */
const MAX_CHECKED_PATHS = 16_384;

/**
 * Whether `file` reaches its inode through no symlink. realpath() costs a thread-pool round
 * trip per request, so a verdict is kept per path with the inode it was made for: the same
 * inode again under the same path can only be the file that was checked (a symlink swapped in
 * that leads elsewhere reaches another inode and is checked again).
 */
function symlinkCheck(): (file: string, fileStat: Stats) => Promise<boolean> {
  const checked = new Map<string, string>();
  return async (file, fileStat) => {
    const identity = `${fileStat.dev}:${fileStat.ino}`;
    if (checked.get(file) === identity) return true;
    if ((await realpath(file)) !== file) return false;
    if (checked.size >= MAX_CHECKED_PATHS) checked.clear();
    checked.set(file, identity);
    return true;
  };
}

function requestHandler(
  root: string,
  files: FileCache,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const insideWithoutLinks = symlinkCheck();
  return async (req, res) => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { ...COMMON_HEADERS, Allow: 'GET, HEAD', 'Content-Length': 0 });
      res.end();
      return;
    }
    const rawUrl = req.url ?? '/';
    const query = rawUrl.indexOf('?');
    const urlPath = query === -1 ? rawUrl : rawUrl.slice(0, query);
    const sendRequest: SendRequest = { method, headers: req.headers };
    let chosen: Chosen | undefined;
    const onFile = async (file: string, fileStat: Stats): Promise<void> => {
      // send has stat()ed through any symlink: the real path must be the path itself.
      if (!(await insideWithoutLinks(file, fileStat))) throw new RefusedPath(file);
      const relative = path.relative(root, file).split(path.sep).join('/');
      const cached = await files.get(file, relative, fileStat);
      const etag = strongEtag(cached.sha256);
      const outcome = evaluateConditions(req.headers, etag);
      chosen = { etag, cacheControl: cacheControlFor(relative), outcome: outcome.kind, bytes: cached.bytes };
      if (outcome.kind === 'send') sendRequest.headers = outcome.headers;
      // Decided here, or the bytes are in memory: send opens no read stream.
      if (outcome.kind !== 'send' || cached.bytes !== null) sendRequest.method = 'HEAD';
    };
    let result: send.SendResult;
    try {
      result = await send(sendRequest as unknown as IncomingMessage, urlPath, {
        ...SEND_OPTIONS,
        root,
        onFile,
      });
    } catch (error) {
      if (!(error instanceof RefusedPath)) throw error;
      res.writeHead(404, {
        ...COMMON_HEADERS,
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': 10,
      });
      res.end(method === 'HEAD' ? undefined : 'Not Found\n');
      return;
    }
    if (chosen !== undefined && chosen.outcome !== 'send') {
      result.stream.destroy();
      const status = chosen.outcome === 'not-modified' ? 304 : 412;
      const headers: Record<string, string> = { ...COMMON_HEADERS, ETag: chosen.etag };
      if (status === 304) {
        headers['Cache-Control'] = chosen.cacheControl;
        const lastModified = result.headers['Last-Modified'];
        if (lastModified !== undefined) headers['Last-Modified'] = lastModified;
      } else headers['Content-Length'] = '0';
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const headers: Record<string, string | number> = { ...COMMON_HEADERS, ...result.headers };
    if (chosen !== undefined && (result.statusCode === 200 || result.statusCode === 206)) {
      headers['ETag'] = chosen.etag;
      headers['Cache-Control'] = chosen.cacheControl;
    }
    res.writeHead(result.statusCode, headers);
    const bytes = chosen?.bytes ?? null;
    if (bytes !== null && result.type === 'file') {
      res.end(method === 'HEAD' ? undefined : bodyOf(bytes, result.headers['Content-Range']));
      return;
    }
    await pipeline(result.stream, res);
  };
}
