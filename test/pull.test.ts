// `pull` against a real `serve` of a mirror made by `mirror index` from real signed artifacts:
// the files land byte-identical and verified, the printed Proxmox and QEMU lines and the
// installed firmware descriptor name the local absolute paths (not the publisher's), and every
// refusal has its code: unknown name or version, an index signed by a key not trusted, a
// corrupted object (nothing is left in place).
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/digest.js';
import type { MirrorIndex } from '../src/mirror/index-types.js';
import { writeMirrorIndex } from '../src/mirror/make-index.js';
import { loadOrCreateSigningKey } from '../src/publish/signing.js';
import { verifyArtifact } from '../src/publish/verify.js';
import { defaultDescriptorDir } from '../src/cli/commands/pull.js';
import { jsonErrorCode, runCli } from './cli-harness.js';
import {
  configDirOf,
  configEnv,
  publishSampleStore,
  serveWithProxy,
  type RecordingProxy,
} from './mirror-fixture.js';

let work: string;
let store: string;
let proxy: RecordingProxy;
let fingerprint: string;
let publicKeyPem: string;
let index: MirrorIndex;

const consumer = (state = 'state'): NodeJS.ProcessEnv => ({
  ...configEnv(path.join(work, 'consumer')),
  // Where pull keeps the newest index serial it accepted per publisher key (pull-serials.ts).
  XDG_STATE_HOME: path.join(work, 'consumer', state),
  SOURCE_DATE_EPOCH: String(Date.parse('2026-11-03T00:00:00Z') / 1000),
});

/** `pull <spec>` from the served mirror, trusting the publisher's key, into `out`, as the consumer. */
function pullTrusted(spec: string, out: string, ...extra: string[]): ReturnType<typeof runCli> {
  return runCli(
    ['pull', spec, '--mirror', proxy.url, '--trust-key', fingerprint, '--out', out, ...extra],
    work,
    consumer(),
  );
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ovmf-pull-'));
  const publisher = configDirOf(path.join(work, 'publisher'));
  store = path.join(work, 'artifacts');
  ({ fingerprint, publicKeyPem } = await publishSampleStore(store, publisher, { tigerlake: false }));
  const origin = path.join(work, 'origin');
  index = (
    await writeMirrorIndex({
      storeDir: store,
      outDir: origin,
      configDir: publisher,
      now: new Date('2026-11-02T12:00:00Z'),
    })
  ).index;
  proxy = await serveWithProxy(origin);
});

afterAll(async () => {
  await proxy?.close();
  await rm(work, { recursive: true, force: true });
});

describe('pull', () => {
  it('downloads the latest version, verified, prints local Proxmox and QEMU lines, installs the descriptor', async () => {
    const out = path.join(work, 'out');
    const firmwareDir = path.join(work, 'qemu-firmware');
    const result = await pullTrusted(
      'cometlake',
      out,
      '--install-descriptor',
      '--descriptor-dir',
      firmwareDir,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const version = '20261102T020000Z-22222222';
    const dir = path.join(out, 'cometlake', version);
    const published = path.join(store, 'cometlake', version);
    const files = (await readdir(dir)).sort();
    expect(files).toEqual((await readdir(published)).sort());
    for (const file of files) {
      expect([file, sha256(await readFile(path.join(dir, file)))]).toEqual([
        file,
        sha256(await readFile(path.join(published, file))),
      ]);
    }
    expect((await verifyArtifact(dir, { publicKeyPem })).keySource).toBe('given');
    expect(await readdir(path.join(out, 'cometlake'))).toEqual([version]);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`pulled: cometlake ${version} in ${dir} (index serial 1, verified)`);
    expect(lines[1]).toBe(`firmware descriptor: ${path.join(firmwareDir, '60-ovmf-build-cometlake.json')}`);
    expect(result.stdout).toContain(
      `args: -drive if=pflash,unit=0,format=raw,readonly=on,file=${dir}/OVMF_CODE.fd `,
    );
    expect(result.stdout).toContain(
      `  -drive if=pflash,format=raw,unit=0,readonly=on,file=${dir}/OVMF_CODE.fd \\`,
    );
    expect(result.stdout).toContain(`cp ${dir}/igd.rom /usr/share/kvm/cometlake/igd.rom`);
    expect(result.stdout).not.toContain(published);
    const descriptor = JSON.parse(
      await readFile(path.join(firmwareDir, '60-ovmf-build-cometlake.json'), 'utf8'),
    ) as {
      mapping: { executable: { filename: string }; 'nvram-template': { filename: string } };
      'interface-types': string[];
    };
    expect(descriptor.mapping.executable.filename).toBe(`${dir}/OVMF_CODE.fd`);
    expect(descriptor.mapping['nvram-template'].filename).toBe(`${dir}/OVMF_VARS.fd`);
    expect(descriptor['interface-types']).toEqual(['uefi']);
    expect(path.isAbsolute(descriptor.mapping.executable.filename)).toBe(true);
    // Again: the directory is there and verified; only the index and the key (by fingerprint, then
    // as the index lists it) are fetched.
    proxy.log.length = 0;
    const again = await pullTrusted('cometlake', out);
    expect(again.stdout.split('\n')[0]).toBe(
      `already here: cometlake ${version} in ${dir} (index serial 1, verified)`,
    );
    expect(proxy.log.map((r) => r.path)).toEqual([
      '/index.signed.json',
      `/keys/${fingerprint}.pub`,
      `/by-hash/sha256/${index.keys[0]!.sha256}`,
    ]);
  });

  it('pulls a named older version, with --json', async () => {
    const out = path.join(work, 'out-old');
    const result = await pullTrusted('cometlake@20261101T020000Z-11111111', out, '--json');
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as { version: string; files: { code: string }; serial: number };
    expect(json).toMatchObject({
      version: '20261101T020000Z-11111111',
      serial: 1,
      reused: false,
      descriptorInstalled: null,
    });
    const listed = index.artifacts[0]!.versions[1]!.files.find((f) => f.name === 'OVMF_CODE.fd')!;
    expect(sha256(await readFile(json.files.code))).toBe(listed.sha256);
  });

  it('refuses unknown names and versions, an untrusted signer, a corrupted object, and bad arguments', async () => {
    const out = path.join(work, 'out-bad');
    const pull = (args: string[], env = consumer()) =>
      runCli(['pull', ...args, '--mirror', proxy.url, '--out', out, '--json'], work, env);
    let result = await pull(['nope', '--trust-key', fingerprint]);
    expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_ARTIFACT_NOT_FOUND']);
    result = await pull(['cometlake@20990101T000000Z-00000000', '--trust-key', fingerprint]);
    expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_ARTIFACT_NOT_FOUND']);
    // Without --trust-key the signer must be among the user's trusted keys; it is not.
    result = await pull(['cometlake']);
    expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_UNTRUSTED']);
    const other = await loadOrCreateSigningKey(path.join(work, 'other'));
    result = await pull(['cometlake', '--trust-key', other.fingerprint]);
    expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_UNTRUSTED']);
    // Expired: the index was valid for 7 days from 2026-11-02T12:00Z.
    result = await pull(['cometlake', '--trust-key', fingerprint], {
      ...consumer(),
      SOURCE_DATE_EPOCH: String(Date.parse('2026-11-10T00:00:00Z') / 1000),
    });
    expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_EXPIRED']);
    const code = index.artifacts[0]!.versions[0]!.files.find((f) => f.name === 'OVMF_CODE.fd')!;
    proxy.decide = (r) => (r.path === `/${code.by_hash}` ? { kind: 'corrupt' } : { kind: 'pass' });
    try {
      result = await pull(['cometlake', '--trust-key', fingerprint]);
    } finally {
      proxy.decide = () => ({ kind: 'pass' });
    }
    expect([result.code, jsonErrorCode(result.stdout)]).toEqual([7, 'E_DOWNLOAD_DIGEST_MISMATCH']);
    await expect(readdir(path.join(out, 'cometlake', '20261102T020000Z-22222222'))).rejects.toThrow(/ENOENT/);
    for (const args of [['cometlake'], ['a/b', '--mirror', 'http://x/'], ['cometlake', '--mirror', 'x']]) {
      expect((await runCli(['pull', ...args], work, consumer())).code).toBe(2);
    }
  });

  it('refuses an older index (still valid) after a newer one from another mirror of the same key: E_MIRROR_INDEX_ROLLBACK', async () => {
    // The publisher's next index (serial 2) and another index that claims serial 2, each served
    // on a mirror of its own; the first mirror still serves serial 1, valid until 2026-11-09.
    const publisher = configDirOf(path.join(work, 'publisher'));
    const serveIndex = async (dir: string, serial: number, now: string): Promise<RecordingProxy> => {
      await writeMirrorIndex({
        storeDir: store,
        outDir: path.join(work, dir),
        configDir: publisher,
        now: new Date(now),
        serial,
      });
      return serveWithProxy(path.join(work, dir));
    };
    const newer = await serveIndex('origin-2', 2, '2026-11-02T13:00:00Z');
    const forked = await serveIndex('origin-2b', 2, '2026-11-02T14:00:00Z');
    const pullFrom = (url: string, out: string, state?: string) =>
      runCli(
        [
          'pull',
          'cometlake',
          '--mirror',
          url,
          '--trust-key',
          fingerprint,
          '--out',
          path.join(work, out),
          '--json',
        ],
        work,
        consumer(state),
      );
    try {
      const stateFile = path.join(work, 'consumer', 'state', 'ovmf-build', 'pull-serials.json');
      let result = await pullFrom(newer.url, 'out-serial-2');
      expect([result.code, (JSON.parse(result.stdout) as { serial: number }).serial]).toEqual([0, 2]);
      const recorded = JSON.parse(await readFile(stateFile, 'utf8')) as Record<
        string,
        { serial: number; mirror: string }
      >;
      expect(Object.keys(recorded)).toEqual([fingerprint]);
      expect(recorded[fingerprint]).toMatchObject({ serial: 2, mirror: newer.url.replace(/\/?$/, '/') });
      // Serial 1 again, from the first mirror: a rollback. Nothing is written.
      result = await pullFrom(proxy.url, 'out-rolled-back');
      expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_ROLLBACK']);
      await expect(readdir(path.join(work, 'out-rolled-back'))).rejects.toThrow(/ENOENT/);
      // Serial 2 with other contents: refused too.
      result = await pullFrom(forked.url, 'out-forked');
      expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_INDEX_ROLLBACK']);
      // The same index again is no rollback; the record stays.
      result = await pullFrom(newer.url, 'out-serial-2');
      expect(result.code).toBe(0);
      // The control: a machine that never saw serial 2 takes serial 1.
      result = await pullFrom(proxy.url, 'out-fresh-machine', 'state-fresh');
      expect([result.code, (JSON.parse(result.stdout) as { serial: number }).serial]).toEqual([0, 1]);
      // A damaged record is refused, not ignored: it is what tells a rollback.
      await writeFile(stateFile, '{"damaged": ');
      result = await pullFrom(newer.url, 'out-damaged');
      expect([result.code, jsonErrorCode(result.stdout)]).toEqual([11, 'E_MIRROR_PULL_STATE']);
    } finally {
      await newer.close();
      await forked.close();
    }
  });

  it('chooses the firmware.json directory: the variable, root /etc/qemu/firmware, else the XDG config dir', () => {
    expect(defaultDescriptorDir({ OVMF_BUILD_FIRMWARE_DIR: '/x/fw' }, 1000)).toBe('/x/fw');
    expect(defaultDescriptorDir({}, 0)).toBe('/etc/qemu/firmware');
    expect(defaultDescriptorDir({ XDG_CONFIG_HOME: '/home/u/.cfg' }, 1000)).toBe(
      '/home/u/.cfg/qemu/firmware',
    );
    expect(defaultDescriptorDir({ HOME: '/home/u' }, 1000)).toBe('/home/u/.config/qemu/firmware');
  });
});
