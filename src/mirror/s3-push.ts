// `mirror push`: upload a mirror tree to an S3 bucket (issue 13 item 5), the way to serve it at
// scale without a server of ours. Order matters as it does for `mirror sync`: a reader of the
// bucket must never see an index naming an object that is not there yet (fwupd issue 7495), so
// by-hash objects go first, then the version directories and keys, then latest.json/index.json,
// then the HTML, and the signed index last. Each PUT is followed by a HEAD that checks the size
// and the x-amz-meta-sha256 we sent. The SDK's default checksums are off (WHEN_REQUIRED): with
// them a streamed PUT to s3rver stored the aws-chunked framing inside the object (3,000,449
// bytes for 3,000,000) without an error. The only file that imports @aws-sdk (eslint rule).
import { createReadStream } from 'node:fs';
import { HeadObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { OvmfBuildError, UsageError } from '../core/errors.js';
import { PublishError } from '../publish/errors.js';
import { cacheControlFor } from '../serve/cache-policy.js';
import { DigestCache } from '../serve/digest-cache.js';
import { listTreeFiles, type TreeFile } from '../serve/tree-files.js';

export interface S3Target {
  readonly bucket: string;
  /** Key prefix without leading or trailing '/'; '' for the bucket's root. */
  readonly prefix: string;
}

/** Bucket names as S3 allows them (3-63 characters, lower case, digits, '.', '-'). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** `s3://BUCKET[/PREFIX]`, or a usage error. */
export function parseS3Url(url: string): S3Target {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  const bucket = match?.[1];
  if (match === null || bucket === undefined || !BUCKET.test(bucket)) {
    throw new UsageError(`expected s3://BUCKET/PREFIX, got \`${url}\``);
  }
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((part) => part === '..' || part === '.')) {
    throw new UsageError(`the S3 prefix must not hold . or .. parts: \`${url}\``);
  }
  return { bucket, prefix };
}

export interface PushOptions {
  /** The mirror tree (`mirror index --out`). */
  readonly root: string;
  readonly target: S3Target;
  /** The S3 endpoint, e.g. http://127.0.0.1:9000 (path-style addressing is used). */
  readonly endpoint: string;
  /** AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (default us-east-1). */
  readonly env: NodeJS.ProcessEnv;
  /** PUTs in flight within one phase. @default 4 */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /**
   * The SDK's checksum mode. Only WHEN_REQUIRED stores exact bytes on s3rver; WHEN_SUPPORTED (the
   * SDK's default) exists to show that the HEAD check refuses the framed objects it produces.
   * @default 'WHEN_REQUIRED'
   */
  readonly checksums?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /** Called after each object is uploaded and checked. */
  readonly onObject?: (key: string, sizeInBytes: number) => void;
}

export interface PushResult {
  /** Object keys in upload order. */
  readonly keys: readonly string[];
  readonly bytes: number;
}

/** Upload phase of a tree path: lower goes first; the signed index is alone in the last phase. */
export function pushPhase(relativePath: string): number {
  if (relativePath.startsWith('by-hash/')) return 0;
  if (/^artifacts\/[^/]+\/[^/]+\/./.test(relativePath) || relativePath.startsWith('keys/')) return 1;
  if (relativePath === 'index.html') return 3;
  if (relativePath === 'index.signed.json') return 4;
  return 2;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  json: 'application/json',
  html: 'text/html; charset=utf-8',
  conf: 'text/plain; charset=utf-8',
  sh: 'text/plain; charset=utf-8',
  pub: 'text/plain; charset=utf-8',
};

function contentTypeOf(relativePath: string): string {
  const extension = /\.([a-z]+)$/.exec(relativePath)?.[1] ?? '';
  return CONTENT_TYPES[extension] ?? 'application/octet-stream';
}

/** The client: path-style, checksums only where an operation requires them (see the file comment). */
export function s3Client(
  endpoint: string,
  env: NodeJS.ProcessEnv,
  checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' = 'WHEN_REQUIRED',
): S3Client {
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  const sessionToken = env['AWS_SESSION_TOKEN'];
  const config: S3ClientConfig = {
    endpoint,
    forcePathStyle: true,
    region: env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    ...(accessKeyId !== undefined && secretAccessKey !== undefined
      ? {
          credentials: {
            accessKeyId,
            secretAccessKey,
            ...(sessionToken === undefined ? {} : { sessionToken }),
          },
        }
      : {}),
  };
  return new S3Client(config);
}

function s3Failure(key: string, error: unknown): OvmfBuildError {
  if (error instanceof OvmfBuildError) return error;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? null;
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return new PublishError('E_S3_PUT_FAILED', `S3 upload of ${key} failed: ${name}: ${message}`, {
    key,
    status,
    name,
  });
}

/** Uploads every servable file of the tree in phase order; each object is checked by a HEAD. */
export async function pushMirror(options: PushOptions): Promise<PushResult> {
  const files = await listTreeFiles(options.root);
  const client = s3Client(options.endpoint, options.env, options.checksums);
  const digests = new DigestCache();
  const keyOf = (file: TreeFile): string =>
    options.target.prefix === '' ? file.relativePath : `${options.target.prefix}/${file.relativePath}`;
  const sendOptions = options.signal === undefined ? {} : { abortSignal: options.signal };
  const upload = async (file: TreeFile): Promise<void> => {
    options.signal?.throwIfAborted();
    const key = keyOf(file);
    try {
      // Hashed from the bytes (not the by-hash name): the HEAD then checks what was read.
      const sha256 = await digests.digestOf(file.absolutePath, '', file.stat);
      await client.send(
        new PutObjectCommand({
          Bucket: options.target.bucket,
          Key: key,
          Body: createReadStream(file.absolutePath),
          ContentLength: file.stat.size,
          ContentType: contentTypeOf(file.relativePath),
          CacheControl: cacheControlFor(file.relativePath),
          Metadata: { sha256 },
        }),
        sendOptions,
      );
      const head = await client.send(
        new HeadObjectCommand({ Bucket: options.target.bucket, Key: key }),
        sendOptions,
      );
      if (head.ContentLength !== file.stat.size || head.Metadata?.['sha256'] !== sha256) {
        throw new PublishError(
          'E_S3_VERIFY_FAILED',
          `S3 object ${key} reads back as ${String(head.ContentLength)} bytes, sha256 ${String(head.Metadata?.['sha256'])}; sent ${file.stat.size} bytes, sha256 ${sha256}`,
          {
            key,
            size: file.stat.size,
            sha256,
            storedSize: head.ContentLength ?? null,
            storedSha256: head.Metadata?.['sha256'] ?? null,
          },
        );
      }
    } catch (error) {
      throw s3Failure(key, error);
    }
    options.onObject?.(key, file.stat.size);
  };
  const phases = new Map<number, TreeFile[]>();
  for (const file of files) {
    const phase = pushPhase(file.relativePath);
    phases.set(phase, [...(phases.get(phase) ?? []), file]);
  }
  const keys: string[] = [];
  let bytes = 0;
  try {
    for (const phase of [...phases.keys()].sort((a, b) => a - b)) {
      const batch = phases.get(phase) ?? [];
      await inPool(batch, options.concurrency ?? 4, upload);
      keys.push(...batch.map(keyOf));
      bytes += batch.reduce((sum, file) => sum + file.stat.size, 0);
    }
  } finally {
    client.destroy();
  }
  return { keys, bytes };
}

/** Runs `work` over `items` with at most `limit` at a time; the first failure ends the pool. */
async function inPool<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
