import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { OvmfBuildError } from '../core/errors.js';
import { sha256 } from '../core/digest.js';
import type { DownloadOptions } from './download.js';
import { DEFAULT_MAX_INPUT_BYTES, readInputFile } from './read-input.js';

/** Where an input comes from: a local file, or a URL with a pinned digest. */
export type InputSpec =
  { readonly path: string; readonly sha256?: string } | { readonly url: string; readonly sha256: string };

export type InputOrigin =
  { readonly kind: 'path'; readonly path: string } | { readonly kind: 'url'; readonly url: string };

export interface ResolvedInput {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly sizeInBytes: number;
  readonly origin: InputOrigin;
  /** A local file holding the bytes (the input itself, or the download). */
  readonly localPath: string;
}

export interface ResolveInputOptions {
  /** Base for relative paths. */
  readonly cwd: string;
  /** Directory where downloads are kept by digest; required for URL inputs. */
  readonly downloadDir?: string;
  readonly signal?: AbortSignal;
  /**
   * Largest accepted input file.
   * @default 268_435_456 (256 MiB)
   */
  readonly maxBytes?: number;
  readonly dispatcher?: DownloadOptions['dispatcher'];
  /** Refuse URL inputs (E_FETCH_OFFLINE) unless the download is already kept. @default false */
  readonly offline?: boolean;
  /** What the input is, for messages ("the GOP driver"). @default "input" */
  readonly what?: string;
}

/**
 * Reads a local input (checking its pinned sha256 when given) or downloads a URL input
 * into `downloadDir/<sha256>` (reused when already there and intact).
 */
export async function resolveInput(spec: InputSpec, options: ResolveInputOptions): Promise<ResolvedInput> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_INPUT_BYTES;
  if ('path' in spec) {
    const file = path.resolve(options.cwd, spec.path);
    const bytes = await readInputFile(file, {
      maxBytes,
      ...(options.what === undefined ? {} : { what: options.what }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const digest = sha256(bytes);
    if (spec.sha256 !== undefined && spec.sha256.toLowerCase() !== digest) {
      throw new OvmfBuildError(
        'E_INPUT_DIGEST_MISMATCH',
        `${file}: sha256 is ${digest}, expected ${spec.sha256.toLowerCase()}`,
        { path: file, expected: spec.sha256.toLowerCase(), actual: digest },
      );
    }
    return {
      bytes,
      sha256: digest,
      sizeInBytes: bytes.length,
      origin: { kind: 'path', path: file },
      localPath: file,
    };
  }
  if (options.downloadDir === undefined) {
    throw new TypeError('Expected `downloadDir` to be a directory for URL inputs, got `undefined`');
  }
  const expected = spec.sha256.toLowerCase();
  const dest = path.join(options.downloadDir, expected);
  const kept = await readIfIntact(dest, expected, maxBytes);
  if (kept !== null) {
    return {
      bytes: kept,
      sha256: expected,
      sizeInBytes: kept.length,
      origin: { kind: 'url', url: spec.url },
      localPath: dest,
    };
  }
  if (options.offline === true) {
    throw new OvmfBuildError(
      'E_FETCH_OFFLINE',
      `${spec.url} is not downloaded yet and --no-network was given`,
      {
        url: spec.url,
      },
    );
  }
  await mkdir(options.downloadDir, { recursive: true });
  // Loaded on first use: undici is the largest module we load, and local inputs never need it.
  const { download } = await import('./download.js');
  await download({
    url: spec.url,
    sha256: expected,
    dest,
    maxBytes,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
  });
  const bytes = await readInputFile(dest, { maxBytes, what: 'download' });
  return {
    bytes,
    sha256: expected,
    sizeInBytes: bytes.length,
    origin: { kind: 'url', url: spec.url },
    localPath: dest,
  };
}

async function readIfIntact(file: string, expected: string, maxBytes: number): Promise<Uint8Array | null> {
  let bytes: Uint8Array;
  try {
    bytes = await readInputFile(file, { maxBytes, what: 'download' });
  } catch {
    // Absent, or not a regular file: download it again (the download renames over it).
    return null;
  }
  return sha256(bytes) === expected ? bytes : null;
}
