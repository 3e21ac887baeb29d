// `ovmf-build serve [DIR]`: the embedded HTTP server of a mirror tree (issue 13 item 2). It
// serves until SIGINT or SIGTERM, then stops accepting, lets responses in flight finish and
// exits with the signal's status (130/143) like every other command.
import path from 'node:path';
import { defineCommand } from '../command-args.js';
import { writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { DEFAULT_SERVE_HOST, DEFAULT_SERVE_PORT, startMirrorServer } from '../../serve/server.js';
import { EXIT } from '../exit-codes.js';

const USAGE = [
  'usage: ovmf-build serve [DIR] [--host 127.0.0.1] [--port 8080]',
  '       ovmf-build serve [DIR] --print-nginx-etags > etags.map',
  '',
  'Serve a mirror tree (`ovmf-build mirror index --out DIR`; default: the current directory)',
  'over HTTP: strong sha256 ETags, Range/If-Range, If-None-Match, HEAD; by-hash, version and',
  'key files are cached as immutable for a year, the index, the page and latest.json for 60 s.',
  'Symlinks, dotfiles and paths outside DIR are refused. Stops on SIGINT/SIGTERM.',
  '',
  `  --host ADDR   address to bind (default ${DEFAULT_SERVE_HOST}: this machine only)`,
  `  --port N      TCP port, 0 for any free one (default ${DEFAULT_SERVE_PORT})`,
  '  --print-nginx-etags  print the ETag map of DIR for contrib/nginx (see README, Serving)',
  '                       and exit; regenerate it and reload nginx after each index or sync',
].join('\n');

/** A TCP port number from the command line: 0-65535, digits only. */
function parsePort(value: string | undefined): number {
  if (value === undefined) return DEFAULT_SERVE_PORT;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(port >= 0 && port <= 65_535)) throw new UsageError(`--port must be 0-65535, got \`${value}\``);
  return port;
}

export const command = defineCommand({
  name: 'serve',
  summary: 'serve a mirror tree over HTTP',
  usage: USAGE,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    'print-nginx-etags': { type: 'boolean' },
  },
  async run(ctx, { values, positionals }) {
    if (positionals.length > 1) throw new UsageError('serve takes one directory');
    const host = values.host ?? DEFAULT_SERVE_HOST;
    if (host.length === 0) throw new UsageError('--host must not be empty');
    const port = parsePort(values.port);
    const root = path.resolve(ctx.cwd, positionals[0] ?? '.');
    if (values['print-nginx-etags'] === true) {
      if (values.host !== undefined || values.port !== undefined) {
        throw new UsageError('--print-nginx-etags takes no --host or --port');
      }
      const { nginxEtagMap } = await import('../../serve/nginx-conf.js');
      ctx.stdout.write(await nginxEtagMap(root));
      return EXIT.ok;
    }
    if (ctx.signal.aborted) return EXIT.ok;
    const server = await startMirrorServer({ root, host, port });
    writeLine(ctx.stdout, `serving ${root} at ${server.url}`);
    await new Promise<void>((resolve) =>
      ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    await server.close();
    return EXIT.ok;
  },
});
