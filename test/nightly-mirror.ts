// A local mirror of raw.githubusercontent.com for the nightly tests: serves the corpus files
// at /<owner>/<repo>/<commit>/<path> (their public source per the corpus manifest) on
// 127.0.0.1, port 0, so recipes run with `--base-url` and never touch the network.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { CORPUS_DIR, loadManifest } from './corpus.js';

/** The recipes shipped in recipes/, by name in file order: one per corpus generation. */
export const SHIPPED_RECIPES: readonly string[] = [
  'alderlake-n',
  'alderlake-s',
  'alderlake',
  'broadwell',
  'coffeelake',
  'cometlake',
  'geminilake',
  'haswell',
  'kabylake',
  'raptorlake-s',
  'rocketlake',
  'skylake',
  'tigerlake',
];

export interface CorpusMirror extends AsyncDisposable {
  readonly baseUrl: string;
  /** Request paths served so far, in order. */
  readonly requests: string[];
  /** Flip the last byte of every file served from now on (a mirror serving wrong bytes). */
  corrupt: boolean;
}

export async function serveCorpusMirror(): Promise<CorpusMirror> {
  const byPath = new Map<string, string>();
  for (const entry of loadManifest().entries) {
    const github = (entry as { source?: { github?: { repo: string; commit: string; path: string } } }).source
      ?.github;
    if (github !== undefined) byPath.set(`/${github.repo}/${github.commit}/${github.path}`, entry.path);
  }
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const file = byPath.get(req.url ?? '');
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    void readFile(path.join(CORPUS_DIR, file)).then((bytes) => {
      if (mirror.corrupt) bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
      res.writeHead(200, { 'content-length': String(bytes.length) }).end(bytes);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const mirror: CorpusMirror = {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    corrupt: false,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return mirror;
}
