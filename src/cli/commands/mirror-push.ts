// `ovmf-build mirror push s3://BUCKET/PREFIX --endpoint URL [DIR]` (issue 13 item 5): its own
// options, reached from `mirror` (mirror.ts hands it the arguments after `push`); the upload
// itself is src/mirror/s3-push.ts, the only importer of @aws-sdk.
import path from 'node:path';
import { parseArgsOrHelp } from '../command-args.js';
import type { CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { EXIT } from '../exit-codes.js';

export const PUSH_USAGE = [
  'usage: ovmf-build mirror push s3://BUCKET/PREFIX --endpoint URL [DIR] [--concurrency N] [--json]',
  '',
  'Uploads the mirror tree DIR (default ./mirror) to an S3 bucket with path-style addressing:',
  'by-hash objects first, then the version directories and keys, then index.json and latest.json,',
  'then index.html, and index.signed.json last, so readers never see an index naming a missing',
  'object. Each PUT is checked by a HEAD (size and x-amz-meta-sha256). Credentials and region',
  'come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION.',
  '',
  '  --endpoint URL    the S3 endpoint (e.g. https://s3.example.net, http://127.0.0.1:9000)',
  '  --concurrency N   uploads in flight within one phase (default 4)',
].join('\n');

export async function runMirrorPush(ctx: CommandContext, argv: readonly string[]): Promise<number> {
  const parsed = parseArgsOrHelp(
    { stdout: ctx.stdout, argv },
    { endpoint: { type: 'string' }, concurrency: { type: 'string' }, json: { type: 'boolean' } },
    PUSH_USAGE,
  );
  if (parsed === undefined) return EXIT.ok;
  const { values, positionals } = parsed;
  const [url, dir, ...rest] = positionals;
  if (url === undefined || rest.length > 0)
    throw new UsageError('mirror push takes s3://BUCKET/PREFIX and at most one DIR');
  const { parseS3Url, pushMirror } = await import('../../mirror/s3-push.js');
  const target = parseS3Url(url);
  const endpoint = values.endpoint;
  if (endpoint === undefined || !/^https?:\/\/[^/]/.test(endpoint)) {
    throw new UsageError('mirror push needs --endpoint http(s)://HOST[:PORT]');
  }
  const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
  if (!(Number.isSafeInteger(concurrency) && concurrency >= 1 && concurrency <= 64)) {
    throw new UsageError(`--concurrency must be 1-64, got \`${String(values.concurrency)}\``);
  }
  const root = path.resolve(ctx.cwd, dir ?? 'mirror');
  const result = await pushMirror({ root, target, endpoint, env: ctx.env, concurrency, signal: ctx.signal });
  if (values.json === true) {
    writeJson(ctx.stdout, {
      bucket: target.bucket,
      prefix: target.prefix,
      objects: result.keys.length,
      bytes: result.bytes,
    });
  } else {
    writeLine(
      ctx.stdout,
      `pushed ${result.keys.length} objects (${result.bytes} bytes) to ${url}; index.signed.json last`,
    );
  }
  return EXIT.ok;
}
