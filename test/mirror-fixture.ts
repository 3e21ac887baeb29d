// Shared by the mirror and pull tests: real signed artifacts made by the publish code from real
// firmware of the corpus (Debian's OVMF builds, GOP drivers as ROM bytes), a real mirror server
// (src/serve) behind a recording proxy on 127.0.0.1 that can cut, stall or corrupt a response
// (the network misbehaving: the only thing simulated), and a check that a mirror tree is
// complete (signed index valid, every object and version directory it names present and intact).
import { readFile, readdir } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { sha256 } from '../src/core/digest.js';
import { renderIndexHtml } from '../src/mirror/html.js';
import { MIRROR_LAYOUT, type MirrorIndex } from '../src/mirror/index-types.js';
import { assertIndexSignature, parseSignedIndex, serializeJson } from '../src/mirror/signed-index.js';
import { publishArtifact, type PublishedArtifact } from '../src/publish/artifact.js';
import { loadOrCreateSigningKey, type SigningKey } from '../src/publish/signing.js';
import { parsePublicKey } from '../src/publish/trust.js';
import { verifyArtifact } from '../src/publish/verify.js';
import { startMirrorServer, type MirrorServer } from '../src/serve/server.js';
import { CORPUS_DIR } from './corpus.js';

export function configEnv(home: string): NodeJS.ProcessEnv {
  return { ...process.env, XDG_CONFIG_HOME: home, HOME: home };
}

export function configDirOf(home: string): string {
  return path.join(home, 'ovmf-build');
}

export interface FixtureVersion {
  readonly name: string;
  readonly keyValue: string;
  readonly now: Date;
  readonly code: string;
  readonly vars: string;
  readonly rom: string;
  readonly deviceId?: string;
}

const corpus = (file: string): Promise<Buffer> => readFile(path.join(CORPUS_DIR, file));

/** Publishes one version with a manifest shaped like the pipeline's (the fields the index reads). */
export async function publishFixture(
  store: string,
  configDir: string,
  v: FixtureVersion,
): Promise<PublishedArtifact> {
  return publishArtifact({
    name: v.name,
    keyValue: v.keyValue,
    files: { code: await corpus(v.code), vars: await corpus(v.vars), rom: await corpus(v.rom) },
    storeDir: store,
    configDir,
    machine: 'q35',
    target: 'RELEASE',
    secureBoot: false,
    now: v.now,
    manifest: {
      formatVersion: 1,
      builtAt: v.now.toISOString(),
      inputs: {
        gop: { build: '1107', origin: { kind: 'path', path: `/corpus/${v.rom}` } },
        vbt: {
          signature: '$VBT COMETLAKE',
          sha256: 'ab'.repeat(32),
          origin: { kind: 'path', path: '/corpus/vbt/board.vbt' },
        },
        device:
          v.deviceId === undefined
            ? null
            : {
                id: v.deviceId,
                platform: { key: 'cml', name: 'Comet Lake', graphicsVersion: '9.5', bdsm: 'bdsm32' },
              },
        gopFamily: 'Skylake to Comet Lake (GOP 9.x)',
      },
      edk2: { description: 'Debian edk2 2022.11-6+deb12u2', sourceDigest: 'sha256-00' },
      flags: { target: 'RELEASE', secureBoot: false },
      machine: 'q35',
      deliveryModes: { rom: { files: [] } },
      build: { facts: { structure: { code: {} }, boot: { checked: true, passed: true } } },
      igdChecks: { embedded: { checked: true, passed: true } },
    },
  });
}

export const COMETLAKE_V1: Omit<FixtureVersion, 'name'> = {
  keyValue: '1111111111111111111111111111111111111111111111111111111111111111',
  now: new Date('2026-11-01T02:00:00Z'),
  code: 'ovmf/OVMF_CODE_4M.fd',
  vars: 'ovmf/OVMF_VARS_4M.fd',
  rom: 'gop/cometlake-mrchromebox-cml.efi',
  deviceId: '8086:9b41',
};

export const COMETLAKE_V2: Omit<FixtureVersion, 'name'> = {
  keyValue: '2222222222222222222222222222222222222222222222222222222222222222',
  now: new Date('2026-11-02T02:00:00Z'),
  code: 'ovmf/OVMF32_CODE_4M.secboot.fd',
  vars: 'ovmf/OVMF_VARS_4M.ms.fd',
  rom: 'gop/cometlake-anbeen-pc-10.efi',
  deviceId: '8086:9b41',
};

export const TIGERLAKE_V1: Omit<FixtureVersion, 'name'> = {
  keyValue: '3333333333333333333333333333333333333333333333333333333333333333',
  now: new Date('2026-11-01T03:00:00Z'),
  code: 'ovmf/OVMF.fd',
  vars: 'ovmf/OVMF_VARS_4M.fd',
  rom: 'gop/tigerlake-mrchromebox-tgl.efi',
};

/**
 * The publisher's key (created in `configDir`) and a store holding cometlake V1 and V2, then
 * tigerlake V1 unless `tigerlake` is false: the sample store of the mirror and pull tests.
 */
export async function publishSampleStore(
  store: string,
  configDir: string,
  { tigerlake = true }: { readonly tigerlake?: boolean } = {},
): Promise<SigningKey> {
  const key = await loadOrCreateSigningKey(configDir);
  await publishFixture(store, configDir, { name: 'cometlake', ...COMETLAKE_V1 });
  await publishFixture(store, configDir, { name: 'cometlake', ...COMETLAKE_V2 });
  if (tigerlake) await publishFixture(store, configDir, { name: 'tigerlake', ...TIGERLAKE_V1 });
  return key;
}

export interface ProxyRecord {
  readonly method: string;
  readonly path: string;
  readonly range: string | null;
  readonly ifRange: string | null;
  readonly ifNoneMatch: string | null;
  status: number;
}

/** What the proxy does with one response: pass it, cut the connection after N body bytes, or stall there. */
export type ProxyAction =
  | { readonly kind: 'pass' }
  | { readonly kind: 'cut'; readonly afterBytes: number }
  | { readonly kind: 'stall'; readonly afterBytes: number; readonly onStall: () => void }
  | { readonly kind: 'corrupt' }
  | { readonly kind: 'replace'; readonly body: Buffer };

export interface RecordingProxy extends AsyncDisposable {
  readonly url: string;
  readonly log: ProxyRecord[];
  /** Chooses what happens to each request (default: pass). */
  decide: (record: ProxyRecord) => ProxyAction;
  close(): Promise<void>;
}

/** A real `serve` of `root` behind a recording proxy; both on 127.0.0.1, ports chosen at run time. */
export async function serveWithProxy(
  root: string,
): Promise<RecordingProxy & { readonly server: MirrorServer }> {
  const server = await startMirrorServer({ root, port: 0 });
  const upstream = new URL(server.url);
  const log: ProxyRecord[] = [];
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((req, res) => {
    const header = (name: string): string | null => {
      const value = req.headers[name];
      return typeof value === 'string' ? value : null;
    };
    const record: ProxyRecord = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      range: header('range'),
      ifRange: header('if-range'),
      ifNoneMatch: header('if-none-match'),
      status: 0,
    };
    log.push(record);
    const action = handle.decide(record);
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: record.path,
        method: record.method,
        headers: req.headers,
      },
      (upstreamRes: IncomingMessage) => {
        record.status = upstreamRes.statusCode ?? 0;
        if (action.kind === 'replace') {
          upstreamRes.resume();
          const headers = { ...upstreamRes.headers, 'content-length': String(action.body.length) };
          delete headers['etag'];
          res.writeHead(200, headers).end(action.body);
          return;
        }
        res.writeHead(record.status, upstreamRes.headers);
        let sent = 0;
        upstreamRes.on('data', (chunk: Buffer) => {
          if (action.kind === 'cut' || action.kind === 'stall') {
            const room = action.afterBytes - sent;
            if (room <= 0) return;
            const part = chunk.subarray(0, room);
            sent += part.length;
            res.write(part);
            if (sent >= action.afterBytes) {
              upstreamRes.destroy();
              if (action.kind === 'cut') setTimeout(() => res.socket?.destroy(), 50);
              else setTimeout(action.onStall, 100);
            }
            return;
          }
          if (action.kind === 'corrupt' && sent === 0 && chunk.length > 0) {
            const copy = Buffer.from(chunk);
            copy[0] = (copy[0] as number) ^ 0xff;
            chunk = copy;
          }
          sent += chunk.length;
          res.write(chunk);
        });
        upstreamRes.on('end', () => {
          if (action.kind === 'pass' || action.kind === 'corrupt') res.end();
        });
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  proxy.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const close = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    await server.close();
  };
  const handle: RecordingProxy & { server: MirrorServer } = {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`,
    log,
    decide: () => ({ kind: 'pass' }),
    close,
    server,
    [Symbol.asyncDispose]: close,
  };
  return handle;
}

/**
 * Checks that `root` is a complete mirror: index.signed.json verifies with `publicKeyPem`, every
 * object it names is in by-hash with its sha256, every version directory verifies and holds the
 * listed files, latest.json and keys/ match, index.json and index.html are the payload's.
 * `next`: the index a sync killed mid-way was installing. installIndex writes latest.json,
 * index.json and index.html before the signed index (so that the next run, which starts again
 * from the old serial, rewrites them all), so between the two latest.json may already name the
 * next index's latest version, whose directory is then complete and verifies.
 * Returns the serial.
 */
export async function assertMirrorComplete(
  root: string,
  publicKeyPem: string,
  next?: MirrorIndex,
): Promise<number> {
  const bytes = await readFile(path.join(root, MIRROR_LAYOUT.signedIndex));
  const signed = parseSignedIndex(bytes);
  const key = parsePublicKey(publicKeyPem, 'test key');
  assertIndexSignature(signed, key.publicKey, key.fingerprint);
  const payload = signed.payload;
  for (const entry of payload.keys) {
    const pub = await readFile(path.join(root, entry.url));
    if (sha256(pub) !== entry.sha256) throw new Error(`${entry.url} differs`);
  }
  for (const artifact of payload.artifacts) {
    const latest = JSON.parse(
      await readFile(path.join(root, 'artifacts', artifact.name, 'latest.json'), 'utf8'),
    ) as {
      version: string;
    };
    if (!artifact.versions.some((v) => v.version === latest.version)) {
      const ahead = next?.artifacts.find((a) => a.name === artifact.name);
      if (ahead?.latest !== latest.version) {
        throw new Error(
          `${artifact.name}/latest.json names ${latest.version}, which the index does not list`,
        );
      }
      await verifyArtifact(path.join(root, 'artifacts', artifact.name, latest.version), { publicKeyPem });
    }
    for (const version of artifact.versions) {
      for (const file of version.files) {
        const object = await readFile(path.join(root, file.by_hash));
        if (sha256(object) !== file.sha256 || object.length !== file.size)
          throw new Error(`${file.by_hash} differs`);
        const inDir = await readFile(path.join(root, file.url));
        if (sha256(inDir) !== file.sha256) throw new Error(`${file.url} differs`);
      }
      const dir = path.join(root, version.url);
      const listed = (await readdir(dir)).sort();
      if (
        listed.join() !==
        version.files
          .map((f) => f.name)
          .sort()
          .join()
      )
        throw new Error(`${dir} holds ${listed.join()}`);
      await verifyArtifact(dir, { publicKeyPem });
    }
  }
  if ((await readFile(path.join(root, MIRROR_LAYOUT.index), 'utf8')) !== serializeJson(payload)) {
    // index.json is written before the signed index: between the two it may already be the next one.
    const next = JSON.parse(await readFile(path.join(root, MIRROR_LAYOUT.index), 'utf8')) as {
      serial: number;
    };
    if (next.serial < payload.serial) throw new Error('index.json is older than index.signed.json');
  } else if ((await readFile(path.join(root, MIRROR_LAYOUT.html), 'utf8')) !== renderIndexHtml(payload)) {
    throw new Error('index.html is not the page of index.json');
  }
  return payload.serial;
}
