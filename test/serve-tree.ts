// A real mirror tree for the serving tests (serve, nginx, S3 push, the page in Chromium, the
// bench): two names published by the real publisher (one with two versions and a 4 MiB
// OVMF_CODE.fd), indexed by `mirror index`'s own code, plus the hostile entries a server must
// refuse: a symlink out of the tree, a dotfile.
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'node:http';
import { writeMirrorIndex } from '../src/mirror/make-index.js';
import type { MirrorIndex } from '../src/mirror/index-types.js';
import { publishArtifact } from '../src/publish/index.js';

export interface ServeTree {
  /** The temp directory holding store, config and tree. */
  readonly dir: string;
  /** The mirror tree. */
  readonly root: string;
  readonly index: MirrorIndex;
  readonly env: NodeJS.ProcessEnv;
  /** Tree path (no leading '/') of the 4 MiB OVMF_CODE.fd of the newest cml version. */
  readonly largeFile: string;
  /** Tree path of a file reached through a symlink to a directory outside the tree. */
  readonly symlinkPath: string;
  /** Tree path of a symlink to a file outside the tree. */
  readonly symlinkFile: string;
  /** A line only the file outside the tree holds (a leak shows it in a body). */
  readonly secret: string;
}

export const LARGE_FILE_BYTES = 4 * 1024 * 1024;

/** Deterministic bytes that do not compress (a range test must see real offsets). */
function patterned(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

export async function makeServeTree(prefix = 'ovmf-serve-'): Promise<ServeTree> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const configDir = path.join(dir, 'config', 'ovmf-build');
  const storeDir = path.join(dir, 'artifacts');
  const root = path.join(dir, 'mirror');
  const publish = (name: string, keyValue: string, code: Uint8Array, day: number) =>
    publishArtifact({
      name,
      keyValue,
      files: { code, vars: patterned(64 * 1024, day + 7), rom: new Uint8Array([0x55, 0xaa, day]) },
      manifest: { cache: { key: keyValue } },
      storeDir,
      configDir,
      machine: 'q35',
      target: 'RELEASE',
      secureBoot: false,
      now: new Date(Date.UTC(2026, 10, day, 5, 15)),
    });
  await publish('cml-9b41-gop1107', 'a1'.repeat(32), patterned(2 * 1024 * 1024, 1), 20);
  const newest = await publish('cml-9b41-gop1107', 'b2'.repeat(32), patterned(LARGE_FILE_BYTES, 2), 24);
  await publish('gen9-gop1016', 'c3'.repeat(32), patterned(1024 * 1024, 3), 22);
  const result = await writeMirrorIndex({ storeDir, outDir: root, configDir, now: new Date() });
  const outside = path.join(dir, 'outside');
  await mkdir(outside);
  const secret = 'outside-the-tree-7f3a9c';
  await writeFile(path.join(outside, 'secret.txt'), `${secret}\n`);
  await symlink(outside, path.join(root, 'artifacts', 'escape'));
  await symlink(path.join(outside, 'secret.txt'), path.join(root, 'artifacts', 'secret.txt'));
  await writeFile(path.join(root, '.hidden'), `${secret}\n`);
  const version = path.basename(newest.artifactDir);
  return {
    dir,
    root,
    index: result.index,
    env: { HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config') },
    largeFile: `artifacts/cml-9b41-gop1107/${version}/OVMF_CODE.fd`,
    symlinkPath: 'artifacts/escape/secret.txt',
    symlinkFile: 'artifacts/secret.txt',
    secret,
  };
}

/** Reads a tree file's bytes. */
export function treeBytes(tree: ServeTree, relativePath: string): Promise<Buffer> {
  return readFile(path.join(tree.root, relativePath));
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/**
 * One HTTP request with the path sent exactly as given (fetch would normalise `/../`), no
 * keep-alive, so each test sees the server's answer to exactly its request.
 */
export function rawRequest(
  baseUrl: string,
  rawPath: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<RawResponse> {
  const base = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: base.hostname, port: base.port, path: rawPath, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
