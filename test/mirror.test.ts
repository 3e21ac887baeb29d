// `mirror index` and `mirror sync` end to end: real signed artifacts (publish code, corpus
// firmware), the tree checked file by file, a second mirror synced over HTTP from a real
// `serve`, and every refusal with its exact code: tampered, expired, rolled-back, foreign-key
// indexes, a corrupted object; resume of a cut download with Range/If-Range; the grace period.
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/digest.js';
import {
  INDEX_SIGNATURE_CONTEXT,
  type MirrorIndex,
  type SignedMirrorIndex,
} from '../src/mirror/index-types.js';
import { writeMirrorIndex } from '../src/mirror/make-index.js';
import { canonicalJson } from '../src/mirror/signed-index.js';
import { syncMirror } from '../src/mirror/sync.js';
import { loadOrCreateSigningKey } from '../src/publish/signing.js';
import { jsonErrorCode, runCli } from './cli-harness.js';
import { CORPUS_DIR } from './corpus.js';
import {
  assertMirrorComplete,
  configDirOf,
  configEnv,
  publishSampleStore,
  serveWithProxy,
  type RecordingProxy,
} from './mirror-fixture.js';

let work: string;
let publisherHome: string;
let consumerHome: string;
let store: string;
let fingerprint: string;
let publicKeyPem: string;
const EPOCH = String(Date.parse('2026-11-03T00:00:00Z') / 1000);

async function listTree(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, prefix), { withFileTypes: true })) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await listTree(root, rel)));
    else out.push(rel);
  }
  return out.sort();
}

async function index(out: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return runCli(['mirror', 'index', store, '--out', out, '--json', ...extra], work, {
    ...configEnv(publisherHome),
    SOURCE_DATE_EPOCH: EPOCH,
    ...env,
  });
}

async function sync(url: string, dir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return runCli(['mirror', 'sync', url, dir, '--trust-key', fingerprint, '--json', ...extra], work, {
    ...configEnv(consumerHome),
    SOURCE_DATE_EPOCH: EPOCH,
    ...env,
  });
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ovmf-mirror-'));
  publisherHome = path.join(work, 'publisher');
  consumerHome = path.join(work, 'consumer');
  store = path.join(work, 'artifacts');
  ({ fingerprint, publicKeyPem } = await publishSampleStore(store, configDirOf(publisherHome)));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('mirror index', () => {
  it('writes the static tree: signed index, by-hash objects, version dirs, latest.json, keys, page', async () => {
    const out = path.join(work, 'origin');
    const result = await index(out);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      serial: 1,
      names: 2,
      versions: 3,
      versionsAdded: 3,
      pruned: [],
    });
    const signed = JSON.parse(
      await readFile(path.join(out, 'index.signed.json'), 'utf8'),
    ) as SignedMirrorIndex;
    const payload = signed.payload;
    expect(Object.keys(signed).sort()).toEqual(['algorithm', 'key_fingerprint', 'payload', 'signature']);
    expect(signed.key_fingerprint).toBe(fingerprint);
    expect(JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8'))).toEqual(payload);
    expect(payload.serial).toBe(1);
    expect(payload.generated_at).toBe('2026-11-03T00:00:00.000Z');
    expect(payload.valid_until).toBe('2026-11-10T00:00:00.000Z');
    expect(payload.artifacts.map((a) => [a.name, a.latest, a.versions.map((v) => v.version)])).toEqual([
      ['cometlake', '20261102T020000Z-22222222', ['20261102T020000Z-22222222', '20261101T020000Z-11111111']],
      ['tigerlake', '20261101T030000Z-33333333', ['20261101T030000Z-33333333']],
    ]);
    const v2 = payload.artifacts[0]!.versions[0]!;
    expect({ ...v2, files: undefined }).toEqual({
      version: '20261102T020000Z-22222222',
      url: 'artifacts/cometlake/20261102T020000Z-22222222/',
      generation: 'graphics 9.5 (Comet Lake)',
      device_ids: ['8086:9b41'],
      platform: 'Comet Lake',
      gop_build: '1107',
      vbt: { signature: '$VBT COMETLAKE', source: 'board.vbt', sha256: 'ab'.repeat(32) },
      edk2: { version: 'Debian edk2 2022.11-6+deb12u2', source_digest: 'sha256-00' },
      target: 'RELEASE',
      machine: 'q35',
      secure_boot: false,
      built_at: '2026-11-02T02:00:00.000Z',
      published_at: '2026-11-02T02:00:00.000Z',
      rom_mode: false,
      verification: { structural: 'passed', boot: 'passed', igd: 'embedded passed' },
      signing_key_fingerprint: fingerprint,
      files: undefined,
    });
    const code = await readFile(path.join(CORPUS_DIR, 'ovmf/OVMF32_CODE_4M.secboot.fd'));
    const codeFile = v2.files.find((f) => f.name === 'OVMF_CODE.fd')!;
    expect(codeFile).toEqual({
      name: 'OVMF_CODE.fd',
      size: code.length,
      sha256: sha256(code),
      url: 'artifacts/cometlake/20261102T020000Z-22222222/OVMF_CODE.fd',
      by_hash: `by-hash/sha256/${sha256(code)}`,
      role: 'code',
    });
    expect(v2.files.map((f) => [f.name, f.role])).toEqual([
      ['60-ovmf-build-cometlake.json', 'descriptor'],
      ['OVMF_CODE.fd', 'code'],
      ['OVMF_VARS.fd', 'vars'],
      ['SHA256SUMS', 'sums'],
      ['igd.rom', 'rom'],
      ['manifest.json', 'manifest'],
      ['proxmox.conf', 'proxmox'],
      ['qemu.sh', 'qemu'],
      ['signature.json', 'signature'],
      ['signing-key.pub', 'key'],
    ]);
    // Every URL is relative, and every object, version file and key is where the index says.
    for (const artifact of payload.artifacts) {
      for (const version of artifact.versions) {
        for (const file of version.files) {
          expect(file.url).not.toMatch(/^(\/|[a-z]+:)/);
          expect(sha256(await readFile(path.join(out, file.by_hash)))).toBe(file.sha256);
          expect(sha256(await readFile(path.join(out, file.url)))).toBe(
            sha256(await readFile(path.join(store, artifact.name, version.version, file.name))),
          );
        }
      }
    }
    expect(JSON.parse(await readFile(path.join(out, 'artifacts/cometlake/latest.json'), 'utf8'))).toEqual({
      name: 'cometlake',
      version: '20261102T020000Z-22222222',
      url: '20261102T020000Z-22222222/',
    });
    expect(await readFile(path.join(out, `keys/${fingerprint}.pub`), 'utf8')).toBe(publicKeyPem);
    const tree = (await listTree(out)).filter((f) => !f.startsWith('.mirror/'));
    const objects = new Set(
      payload.artifacts.flatMap((a) => a.versions.flatMap((v) => v.files.map((f) => f.by_hash))),
    );
    expect(tree).toEqual(
      [
        'index.html',
        'index.json',
        'index.signed.json',
        `keys/${fingerprint}.pub`,
        'artifacts/cometlake/latest.json',
        'artifacts/tigerlake/latest.json',
        ...objects,
        ...payload.artifacts.flatMap((a) => a.versions.flatMap((v) => v.files.map((f) => f.url))),
      ].sort(),
    );
    expect(await assertMirrorComplete(out, publicKeyPem)).toBe(1);
    // The signature is over the context line and the canonical payload.
    const { verify, createPublicKey } = await import('node:crypto');
    expect(
      verify(
        null,
        Buffer.from(INDEX_SIGNATURE_CONTEXT + canonicalJson(payload)),
        createPublicKey(publicKeyPem),
        Buffer.from(signed.signature, 'base64'),
      ),
    ).toBe(true);
  });

  it('writes a self-contained page: no script, no external asset, one row per name, details, anchors, dark mode', async () => {
    const html = await readFile(path.join(work, 'origin', 'index.html'), 'utf8');
    const payload = JSON.parse(
      await readFile(path.join(work, 'origin', 'index.json'), 'utf8'),
    ) as MirrorIndex;
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/i);
    expect(
      [...html.matchAll(/(?:href|src)="([^"]*)"/g)]
        .map((m) => m[1])
        .filter((u) => /^[a-z]+:|^\/\//i.test(u!)),
    ).toEqual([]);
    expect([...html.matchAll(/<tr id="([^"]+)">/g)].map((m) => m[1])).toEqual(['cometlake', 'tigerlake']);
    expect(html).toContain('<a href="#cometlake">cometlake</a>');
    expect(html).toContain('<summary>1 older version</summary>');
    expect(html).toContain('@media (prefers-color-scheme:dark)');
    // On a narrow screen the header row is hidden: every cell names its column, in column order.
    const columns = [...html.matchAll(/<th scope="col">([^<]+)<\/th>/g)].map((m) => m[1]);
    const firstRow = html.slice(html.indexOf('<tr id="cometlake">'), html.indexOf('<tr id="tigerlake">'));
    const latestCells = firstRow.slice(firstRow.lastIndexOf('</details></th>'));
    expect([...latestCells.matchAll(/<td data-label="([^"]+)">/g)].map((m) => m[1])).toEqual(
      columns.slice(1),
    );
    expect(html).toContain('td[data-label]::before{content:attr(data-label)');
    const shown = [
      ...html.matchAll(/<span class="label">SHA-256<\/span> <code class="sha">([0-9a-f]{64})<\/code>/g),
    ].map((m) => m[1]);
    // Document order: a name's older versions (inside its first cell), then its latest version's files.
    const latestLast = (
      a: MirrorIndex['artifacts'][number],
    ): MirrorIndex['artifacts'][number]['versions'] => [
      ...a.versions.filter((v) => v.version !== a.latest),
      ...a.versions.filter((v) => v.version === a.latest),
    ];
    expect(shown).toEqual(
      payload.artifacts.flatMap((a) => latestLast(a).flatMap((v) => v.files.map((f) => f.sha256))),
    );
    expect(html).toContain('hostpci0: 0000:00:02.0,pcie=1,romfile=cometlake/igd.rom');
    expect(html).toContain('3,653,632 bytes');
  });

  it('is deterministic for the same store, serial and clock; the serial increases; an older serial is refused', async () => {
    const a = path.join(work, 'det-a');
    const b = path.join(work, 'det-b');
    expect((await index(a, ['--serial', '7'])).code).toBe(0);
    expect((await index(b, ['--serial', '7'])).code).toBe(0);
    for (const file of ['index.json', 'index.signed.json', 'index.html']) {
      expect(sha256(await readFile(path.join(a, file)))).toBe(sha256(await readFile(path.join(b, file))));
    }
    const again = await index(a);
    expect(JSON.parse(again.stdout)).toMatchObject({ serial: 8, versionsAdded: 0, objectsAdded: 0 });
    const old = await index(a, ['--serial', '8']);
    expect(old.code).toBe(11);
    expect(jsonErrorCode(old.stdout)).toBe('E_MIRROR_INDEX_ROLLBACK');
    expect(JSON.parse(await readFile(path.join(a, 'index.json'), 'utf8')).serial).toBe(8);
  });

  it('refuses a store with a tampered version and leaves the tree as it was', async () => {
    const bad = path.join(work, 'bad-store');
    await cp(store, bad, { recursive: true, verbatimSymlinks: true });
    const out = path.join(work, 'det-a');
    const before = await readFile(path.join(out, 'index.signed.json'));
    const target = path.join(bad, 'tigerlake', '20261101T030000Z-33333333', 'igd.rom');
    const bytes = await readFile(target);
    bytes[100] = (bytes[100] as number) ^ 1;
    await writeFile(target, bytes);
    const result = await runCli(
      ['mirror', 'index', bad, '--out', out, '--json'],
      work,
      configEnv(publisherHome),
    );
    expect(result.code).toBe(11);
    expect(jsonErrorCode(result.stdout)).toBe('E_ARTIFACT_DIGEST_MISMATCH');
    expect(sha256(await readFile(path.join(out, 'index.signed.json')))).toBe(sha256(before));
  });

  it('refuses bad arguments with exit 2', async () => {
    expect((await runCli(['mirror'], work, configEnv(publisherHome))).code).toBe(2);
    expect((await runCli(['mirror', 'index', '--serial', 'x'], work, configEnv(publisherHome))).code).toBe(2);
    expect(
      (await runCli(['mirror', 'sync', 'http://127.0.0.1:1/', 'd'], work, configEnv(consumerHome))).code,
    ).toBe(2);
    expect(
      (await runCli(['mirror', 'sync', 'ftp://x/', 'd', '--trust-key', fingerprint], work, {})).code,
    ).toBe(2);
  });
});

describe('mirror sync', () => {
  let proxy: RecordingProxy;
  const origin = (): string => path.join(work, 'sync-origin');

  beforeAll(async () => {
    expect((await index(origin())).code).toBe(0);
    proxy = await serveWithProxy(origin());
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('copies the mirror over HTTP byte for byte, then answers 304 to the next conditional GET', async () => {
    const copy = path.join(work, 'copy');
    const first = await sync(proxy.url, copy);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({
      outcome: 'updated',
      serial: 1,
      previousSerial: null,
      versionsAdded: 3,
    });
    const served = (await listTree(origin())).filter((f) => !f.startsWith('.mirror/'));
    expect((await listTree(copy)).filter((f) => !f.startsWith('.mirror/'))).toEqual(served);
    for (const file of served) {
      const [a, b] = [await readFile(path.join(copy, file)), await readFile(path.join(origin(), file))];
      expect([file, sha256(a)]).toEqual([file, sha256(b)]);
    }
    expect(await assertMirrorComplete(copy, publicKeyPem)).toBe(1);
    proxy.log.length = 0;
    const second = await sync(proxy.url, copy);
    expect(JSON.parse(second.stdout)).toMatchObject({
      outcome: 'not-modified',
      serial: 1,
      objectsFetched: 0,
    });
    expect(proxy.log.map((r) => [r.path, r.status, r.ifNoneMatch !== null])).toEqual([
      ['/index.signed.json', 304, true],
    ]);
  });

  it('refuses a tampered, foreign-key, expired or rolled-back index with its code and keeps the old mirror', async () => {
    const copy = path.join(work, 'copy');
    const before = await readFile(path.join(copy, 'index.signed.json'));
    const served = JSON.parse(
      await readFile(path.join(origin(), 'index.signed.json'), 'utf8'),
    ) as SignedMirrorIndex;
    const serve = (value: unknown): void => {
      proxy.decide = (r) =>
        r.path === '/index.signed.json'
          ? { kind: 'replace', body: Buffer.from(JSON.stringify(value)) }
          : { kind: 'pass' };
    };
    try {
      // Tampered: a newer serial with a digest changed, the old signature.
      const tampered = { ...served, payload: { ...served.payload, serial: 99 } };
      serve(tampered);
      let result = await sync(proxy.url, copy);
      expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_SIGNATURE']);
      // Signed by another key (the consumer's own), naming it.
      const other = await loadOrCreateSigningKey(path.join(work, 'other-key'));
      const { signIndex } = await import('../src/mirror/signed-index.js');
      serve(signIndex({ ...served.payload, serial: 5, key_fingerprint: other.fingerprint }, other));
      result = await sync(proxy.url, copy);
      expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_UNTRUSTED']);
      proxy.decide = () => ({ kind: 'pass' });
      // Expired: the same index read after its valid_until.
      result = await sync(proxy.url, path.join(work, 'fresh'), [], {
        SOURCE_DATE_EPOCH: String(Date.parse('2026-11-11T00:00:00Z') / 1000),
      });
      expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_EXPIRED']);
      // Rolled back: the copy moves to serial 2, then the origin serves serial 1 again.
      const signing = await loadOrCreateSigningKey(configDirOf(publisherHome));
      const newer = signIndex({ ...served.payload, serial: 2 }, signing);
      serve(newer);
      result = await sync(proxy.url, copy);
      expect(JSON.parse(result.stdout)).toMatchObject({ outcome: 'updated', serial: 2, objectsFetched: 0 });
      serve(served);
      result = await sync(proxy.url, copy);
      expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_ROLLBACK']);
      expect(JSON.parse(await readFile(path.join(copy, 'index.signed.json'), 'utf8'))).toEqual(newer);
      expect(await assertMirrorComplete(copy, publicKeyPem)).toBe(2);
      expect(before.length).toBeGreaterThan(0);
    } finally {
      proxy.decide = () => ({ kind: 'pass' });
    }
  });

  it('refuses an object whose bytes differ from the index, then resumes a cut download with Range and If-Range', async () => {
    const copy = path.join(work, 'resume');
    const payload = JSON.parse(await readFile(path.join(origin(), 'index.json'), 'utf8')) as MirrorIndex;
    const big = payload.artifacts[0]!.versions[0]!.files.find((f) => f.name === 'OVMF_CODE.fd')!;
    proxy.decide = (r) => (r.path === `/${big.by_hash}` ? { kind: 'corrupt' } : { kind: 'pass' });
    let result = await sync(proxy.url, copy);
    expect([result.code, jsonErrorCode(result.stdout)]).toEqual([7, 'E_DOWNLOAD_DIGEST_MISMATCH']);
    await expect(readFile(path.join(copy, 'index.signed.json'))).rejects.toThrow(/ENOENT/);
    const cutAt = 1_000_000;
    proxy.decide = (r) =>
      r.path === `/${big.by_hash}` ? { kind: 'cut', afterBytes: cutAt } : { kind: 'pass' };
    result = await sync(proxy.url, copy);
    expect(result.code).toBe(7);
    expect(['E_DOWNLOAD_TRUNCATED', 'E_FETCH_NETWORK']).toContain(jsonErrorCode(result.stdout));
    proxy.decide = () => ({ kind: 'pass' });
    proxy.log.length = 0;
    result = await sync(proxy.url, copy);
    expect(result.code).toBe(0);
    const resumed = proxy.log.find((r) => r.path === `/${big.by_hash}`)!;
    expect(resumed).toMatchObject({ range: `bytes=${cutAt}-`, status: 206, ifRange: `"${big.sha256}"` });
    expect(await assertMirrorComplete(copy, publicKeyPem)).toBe(1);
    expect(await readdir(path.join(copy, '.mirror', 'staging'))).toEqual([]);
  });

  it('keeps objects an index superseded within the grace period names, and prunes them after it', async () => {
    const src = path.join(work, 'grace-origin');
    const copy = path.join(work, 'grace-copy');
    const small = path.join(work, 'grace-store');
    await cp(store, small, { recursive: true, verbatimSymlinks: true });
    const t0 = new Date('2026-11-03T00:00:00Z');
    await writeMirrorIndex({ storeDir: small, outDir: src, configDir: configDirOf(publisherHome), now: t0 });
    await using server = await serveWithProxy(src);
    const base = { url: server.url, root: copy, trustKey: fingerprint, configDir: configDirOf(consumerHome) };
    await syncMirror({ ...base, now: t0 });
    const first = JSON.parse(await readFile(path.join(src, 'index.json'), 'utf8')) as MirrorIndex;
    // The origin drops the old cometlake version.
    const dropped = path.join(small, 'cometlake', '20261101T020000Z-11111111');
    await rm(dropped, { recursive: true });
    const t1 = new Date('2026-11-03T01:00:00Z');
    await writeMirrorIndex({ storeDir: small, outDir: src, configDir: configDirOf(publisherHome), now: t1 });
    const kept = await syncMirror({ ...base, now: t1 });
    expect(kept).toMatchObject({ outcome: 'updated', serial: 2, pruned: [] });
    expect(await readdir(path.join(copy, 'artifacts/cometlake'))).toContain('20261101T020000Z-11111111');
    // 25 h later (grace 24 h) a new index prunes what only the superseded one named.
    await writeMirrorIndex({
      storeDir: small,
      outDir: src,
      configDir: configDirOf(publisherHome),
      now: new Date('2026-11-04T02:00:00Z'),
    });
    const later = await syncMirror({ ...base, now: new Date('2026-11-04T02:00:00Z') });
    expect(later.pruned).toContain('artifacts/cometlake/20261101T020000Z-11111111');
    // Exactly the objects only the dropped version had (the shared VARS and key stay).
    const last = JSON.parse(await readFile(path.join(src, 'index.json'), 'utf8')) as MirrorIndex;
    const named = new Set(
      last.artifacts.flatMap((a) => a.versions.flatMap((v) => v.files.map((f) => f.by_hash))),
    );
    const onlyDropped = first.artifacts[0]!.versions[1]!.files.map((f) => f.by_hash).filter(
      (h) => !named.has(h),
    );
    expect(onlyDropped.length).toBe(8);
    expect(later.pruned.filter((p) => p.startsWith('by-hash/')).sort()).toEqual(
      [...new Set(onlyDropped)].sort(),
    );
    for (const object of onlyDropped)
      await expect(readFile(path.join(copy, object))).rejects.toThrow(/ENOENT/);
    expect(await readdir(path.join(copy, 'artifacts/cometlake'))).toEqual([
      '20261102T020000Z-22222222',
      'latest.json',
    ]);
    expect(await assertMirrorComplete(copy, publicKeyPem)).toBe(3);
  });
});
