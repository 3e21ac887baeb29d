// nginx as the way to scale the mirror (issue 13 item 8): the same tree, the same Cache-Control
// rules as cache-policy.ts and the same strong sha256 ETags as `serve`. nginx's own ETag is
// "mtime-size" (changes on a copy, says nothing of the bytes), so `etag off` and the tag comes
// from a map: by-hash paths by regex (the name is the digest), every other file from a map file
// that `ovmf-build serve DIR --print-nginx-etags` writes (regenerate it and reload nginx after
// each `mirror index`/`mirror sync`). nginx evaluates If-None-Match before add_header sets the
// ETag, so a 304 is answered by a regex on "If-None-Match|ETag" (a backreference); If-Range sees
// the ETag add_header set (the range filter runs after the headers filter). What differs from
// `serve` (and is tested as such): traversal is 400, a symlink 403, If-None-Match: * and If-Match
// are not evaluated. contrib/nginx/ovmf-mirror.locations.conf is NGINX_LOCATIONS, byte for byte.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { IMMUTABLE_CACHE_CONTROL, SHORT_CACHE_CONTROL } from './cache-policy.js';
import { DigestCache } from './digest-cache.js';
import { checkedRoot } from './server.js';
import { listTreeFiles } from './tree-files.js';

/** The `map` (and its bucket size) that names each file's ETag, for the http block. `etagMapFile`: the generated file. */
export function nginxEtagMapBlock(etagMapFile: string): string {
  return [
    // Keys are "/artifacts/<name>/<version>/<file>": longer than the default bucket holds.
    'map_hash_bucket_size 256;',
    'map $uri $ovmf_etag {',
    '    volatile;',
    '    default "";',
    '    "~^/by-hash/sha256/(?<ovmf_hex>[0-9a-f]{64})$" "\\"$ovmf_hex\\"";',
    `    include ${etagMapFile};`,
    '}',
  ].join('\n');
}

/** The headers and the 304 rule of one location; `cacheControl` from cache-policy.ts. */
function locationBody(cacheControl: string): string[] {
  return [
    `    add_header Cache-Control "${cacheControl}";`,
    '    add_header ETag $ovmf_etag;',
    '    add_header X-Content-Type-Options nosniff;',
    '    set $ovmf_inm "$http_if_none_match|$ovmf_etag";',
    '    if ($ovmf_inm ~ "(^|[ ,])(W/)?(\\"[0-9a-f]{64}\\") *(,.*)?\\|\\3$") {',
    '        return 304;',
    '    }',
  ];
}

/** The server-block part: include it inside `server { root /srv/mirror; ... }`. */
export const NGINX_LOCATIONS = [
  '# ovmf-build mirror tree: include inside a server block whose root is the tree, with the map',
  '# of src/serve/nginx-conf.ts (nginxEtagMapBlock) in the http block. Generated from',
  '# src/serve/nginx-conf.ts (a unit test keeps this file equal to it); see README "Serving".',
  'index index.html;',
  'autoindex off;',
  'etag off;',
  'disable_symlinks on;',
  '',
  '# Dotfiles (the mirror state in .mirror/) are never served.',
  'location ~ "(^|/)\\." {',
  '    return 404;',
  '}',
  '',
  '# Content-addressed and versioned files never change under their name.',
  'location ~ "^/(by-hash/.|artifacts/[^/]+/[^/]+/.|keys/[^/]+\\.pub$)" {',
  ...locationBody(IMMUTABLE_CACHE_CONTROL),
  '}',
  '',
  '# The index, the page, latest.json: they change with every publish.',
  'location / {',
  ...locationBody(SHORT_CACHE_CONTROL),
  '}',
  '',
].join('\n');

export interface NginxTestConfigOptions {
  readonly root: string;
  readonly host: string;
  readonly port: number;
  /** nginx's -p prefix: pid, logs and temp directories go here. */
  readonly prefix: string;
  /** The file holding NGINX_LOCATIONS (contrib/nginx/ovmf-mirror.locations.conf or a copy). */
  readonly locationsFile: string;
  readonly etagMapFile: string;
  /** Worker processes; 1 compares one nginx worker with one Node process. */
  readonly workers?: number;
  /** Run the workers as this user (needed when nginx starts as root: the default `nobody` may not read the tree). */
  readonly user?: string;
}

/** A complete nginx.conf for tests and the bench: foreground, non-root paths under `prefix`. */
export function nginxTestConfig(options: NginxTestConfigOptions): string {
  const p = (name: string): string => path.join(options.prefix, name);
  return [
    ...(options.user === undefined ? [] : [`user ${options.user};`]),
    'daemon off;',
    `worker_processes ${options.workers ?? 1};`,
    `pid ${p('nginx.pid')};`,
    `error_log ${p('error.log')} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '    include /etc/nginx/mime.types;',
    '    default_type application/octet-stream;',
    '    access_log off;',
    '    sendfile on;',
    '    tcp_nopush on;',
    '    keepalive_timeout 5s;',
    '    keepalive_requests 100000;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (name) => `    ${name}_temp_path ${p(`${name}-temp`)};`,
    ),
    ...nginxEtagMapBlock(options.etagMapFile)
      .split('\n')
      .map((line) => `    ${line}`),
    '    server {',
    `        listen ${options.host}:${options.port};`,
    '        server_name _;',
    `        root ${options.root};`,
    `        include ${options.locationsFile};`,
    '    }',
    '}',
    '',
  ].join('\n');
}

/** `"/path" "\"<sha256>\"";` per file of the tree outside by-hash (the map's regex covers by-hash). */
export async function nginxEtagMap(dir: string): Promise<string> {
  const root = await checkedRoot(dir);
  const digests = new DigestCache();
  const lines: string[] = [];
  for (const { relativePath, absolutePath, stat } of await listTreeFiles(root)) {
    if (relativePath.startsWith('by-hash/')) continue;
    const hex = await digests.digestOf(absolutePath, relativePath, stat);
    lines.push(`"/${relativePath}" "\\"${hex}\\"";`);
  }
  return `${lines.join('\n')}\n`;
}

/** NGINX_LOCATIONS as shipped in contrib/ (for the drift test). */
export function readContribLocations(repoRoot: string): Promise<string> {
  return readFile(path.join(repoRoot, 'contrib', 'nginx', 'ovmf-mirror.locations.conf'), 'utf8');
}
