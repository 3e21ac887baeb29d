import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { errorOf } from '../../test/rejection.js';
import { findPublished, publishArtifact, type PublishedArtifact, type PublishOptions } from './artifact.js';
import { verifyArtifact } from './verify.js';
import { artifactVersion, deriveArtifactName } from './naming.js';
import { tempDirPerTest } from '../../test/temp-dir.js';

const run = promisify(execFile);
const RACE_CHILD = path.resolve(import.meta.dirname, '../../test/publish-race-child.ts');
const KEY = '3f1c2a9b'.repeat(8);
const CODE = new Uint8Array(8192).map((_, i) => (i * 13) & 0xff);
const VARS = new Uint8Array(2048).fill(0xff);
const ROM = new Uint8Array([0x55, 0xaa, ...new Array<number>(510).fill(0)]);
const NOW = new Date('2026-11-24T05:15:00.123Z');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const dir = tempDirPerTest('ovmf-publish-');
let options: PublishOptions;
beforeEach(() => {
  options = {
    name: 'cometlake-vbt-gop1034',
    keyValue: KEY,
    files: { code: CODE, vars: VARS, rom: ROM },
    manifest: { tool: { name: 'ovmf-build', version: '0.1.0' }, cache: { key: KEY } },
    storeDir: path.join(dir(), 'artifacts'),
    configDir: path.join(dir(), 'config'),
    machine: 'q35',
    target: 'DEBUG',
    secureBoot: false,
    now: NOW,
  };
});

describe('naming', () => {
  it('derives names and sortable versions', () => {
    expect(artifactVersion(NOW, KEY)).toBe('20261124T051500Z-3f1c2a9b');
    expect(deriveArtifactName({ vbtSignature: '$VBT COMETLAKE', gopBuild: '1034' })).toBe(
      'cometlake-vbt-gop1034',
    );
    expect(
      deriveArtifactName({
        vbtSignature: '$VBT HASWELL',
        gopBuild: '1025',
        gopControllerName: 'Intel(R) Haswell Graphics Controller',
      }),
    ).toBe('haswell-haswell-vbt-gop1025');
    expect(deriveArtifactName({ vbtSignature: null, gopBuild: null })).toBe('ovmf');
  });
});

describe('publishArtifact', () => {
  it('writes a complete signed directory that sha256sum -c and verifyArtifact accept', async () => {
    const published = await publishArtifact(options);
    const version = '20261124T051500Z-3f1c2a9b';
    const nameDir = path.join(dir(), 'artifacts', 'cometlake-vbt-gop1034');
    expect(published.artifactDir).toBe(path.join(nameDir, version));
    expect((await readdir(nameDir)).sort()).toEqual([version, 'latest']);
    expect(await readlink(path.join(nameDir, 'latest'))).toBe(version);
    expect((await readdir(published.artifactDir)).sort()).toEqual([
      '60-ovmf-build-cometlake-vbt-gop1034.json',
      'OVMF_CODE.fd',
      'OVMF_VARS.fd',
      'SHA256SUMS',
      'igd.rom',
      'manifest.json',
      'proxmox.conf',
      'qemu.sh',
      'signature.json',
      'signing-key.pub',
    ]);
    const { stdout } = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: published.artifactDir });
    expect(stdout.trim().split('\n').sort()).toEqual(
      [
        '60-ovmf-build-cometlake-vbt-gop1034.json: OK',
        'OVMF_CODE.fd: OK',
        'OVMF_VARS.fd: OK',
        'igd.rom: OK',
        'manifest.json: OK',
        'proxmox.conf: OK',
        'qemu.sh: OK',
      ].sort(),
    );
    const check = await verifyArtifact(published.artifactDir);
    expect(check.signingKeyFingerprint).toBe(published.signingKeyFingerprint);
    expect(check.unlistedFiles).toEqual([]);
    const manifest = JSON.parse(
      await readFile(path.join(published.artifactDir, 'manifest.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(manifest['files']).toEqual({
      code: 'OVMF_CODE.fd',
      vars: 'OVMF_VARS.fd',
      rom: 'igd.rom',
      digests: {
        'OVMF_CODE.fd': { sha256: sha(CODE), sizeInBytes: 8192 },
        'OVMF_VARS.fd': { sha256: sha(VARS), sizeInBytes: 2048 },
        'igd.rom': { sha256: sha(ROM), sizeInBytes: 512 },
      },
    });
    expect(manifest['cache']).toEqual({ key: KEY });
    const keyStat = await stat(path.join(dir(), 'config', 'signing-key.pem'));
    expect(keyStat.mode & 0o777).toBe(0o600);
    expect((await stat(path.join(published.artifactDir, 'qemu.sh'))).mode & 0o777).toBe(0o755);
  });

  it('writes a QEMU firmware descriptor with the firmware.json fields and absolute paths', async () => {
    const published = await publishArtifact({ ...options, target: 'DEBUG' });
    const descriptor = JSON.parse(await readFile(published.descriptorFile, 'utf8')) as Record<
      string,
      unknown
    >;
    expect(descriptor).toEqual({
      description: `OVMF with Intel GOP and VBT (cometlake-vbt-gop1034 ${published.version}, q35)`,
      'interface-types': ['uefi'],
      mapping: {
        device: 'flash',
        executable: { filename: path.join(published.artifactDir, 'OVMF_CODE.fd'), format: 'raw' },
        'nvram-template': { filename: path.join(published.artifactDir, 'OVMF_VARS.fd'), format: 'raw' },
      },
      targets: [{ architecture: 'x86_64', machines: ['pc-q35-*'] }],
      features: ['acpi-s3', 'acpi-s4', 'verbose-dynamic'],
      tags: ['ovmf-build:cometlake-vbt-gop1034', `version:${published.version}`, `cache-key:${KEY}`],
    });
    const secure = await publishArtifact({ ...options, name: 'sb', target: 'RELEASE', secureBoot: true });
    const sbDescriptor = JSON.parse(await readFile(secure.descriptorFile, 'utf8')) as { features: string[] };
    expect(sbDescriptor.features).toEqual(['acpi-s4', 'requires-smm', 'secure-boot']);
    const sbProxmox = await readFile(path.join(secure.artifactDir, 'proxmox.conf'), 'utf8');
    expect(sbProxmox).toContain(
      ' -machine smm=on -global driver=cfi.pflash01,property=secure,value=on -global ICH9-LPC.disable_s3=1 ',
    );
    const sbQemu = await readFile(path.join(secure.artifactDir, 'qemu.sh'), 'utf8');
    expect(sbQemu).toContain('-machine q35,accel=kvm,smm=on ');
    expect(sbQemu).toContain(
      '-global driver=cfi.pflash01,property=secure,value=on -global ICH9-LPC.disable_s3=1 \\\n',
    );
    const legacy = await publishArtifact({ ...options, name: 'legacy', machine: 'i440fx' });
    const legacyDescriptor = JSON.parse(await readFile(legacy.descriptorFile, 'utf8')) as {
      targets: unknown;
    };
    expect(legacyDescriptor.targets).toEqual([{ architecture: 'x86_64', machines: ['pc-i440fx-*'] }]);
  });

  it('writes machine-specific Proxmox and QEMU snippets', async () => {
    const q35 = await publishArtifact(options);
    const proxmox = await readFile(path.join(q35.artifactDir, 'proxmox.conf'), 'utf8');
    expect(proxmox).toContain('hostpci0: 0000:00:02.0,pcie=1,romfile=cometlake-vbt-gop1034/igd.rom\n');
    expect(proxmox).toContain(
      '-set device.hostpci0.addr=02.0 -set device.hostpci0.x-igd-gms=0x2 -set device.hostpci0.x-igd-opregion=on\n',
    );
    expect(proxmox).toContain(`-drive if=pflash,unit=0,format=raw,readonly=on,file=${q35.files.code} `);
    const qemu = await readFile(path.join(q35.artifactDir, 'qemu.sh'), 'utf8');
    expect(qemu).toContain(
      `-device vfio-pci,host=0000:00:02.0,bus=pcie.0,addr=02.0,x-igd-opregion=on,x-igd-gms=0x2,romfile=${q35.files.rom} `,
    );
    await run('sh', ['-n', path.join(q35.artifactDir, 'qemu.sh')]);
    const legacy = await publishArtifact({ ...options, name: 'legacy', machine: 'i440fx' });
    const legacyProxmox = await readFile(path.join(legacy.artifactDir, 'proxmox.conf'), 'utf8');
    expect(legacyProxmox).toContain('hostpci0: 0000:00:02.0,legacy-igd=1,romfile=legacy/igd.rom\n');
    expect(await readFile(path.join(legacy.artifactDir, 'qemu.sh'), 'utf8')).toContain(
      '-machine pc,accel=kvm ',
    );
  });

  it('names the changed file when any byte is flipped, and rejects a foreign key', async () => {
    const published = await publishArtifact(options);
    const files = [
      'OVMF_CODE.fd',
      'OVMF_VARS.fd',
      'igd.rom',
      'manifest.json',
      'proxmox.conf',
      '60-ovmf-build-cometlake-vbt-gop1034.json',
    ];
    for (const file of files) {
      const full = path.join(published.artifactDir, file);
      const original = await readFile(full);
      const changed = Buffer.from(original);
      changed[10] = (changed[10] as number) ^ 0x20;
      await writeFile(full, changed);
      const error = await errorOf(verifyArtifact(published.artifactDir));
      expect([error.code, error.details['file']]).toEqual(['E_ARTIFACT_DIGEST_MISMATCH', file]);
      await writeFile(full, original);
    }
    // A changed file re-listed in SHA256SUMS (proxmox.conf is not in the manifest) is caught by the signature.
    const sumsPath = path.join(published.artifactDir, 'SHA256SUMS');
    const sums = await readFile(sumsPath, 'utf8');
    const proxmoxPath = path.join(published.artifactDir, 'proxmox.conf');
    const proxmox = await readFile(proxmoxPath);
    const edited = Buffer.concat([proxmox, Buffer.from('args: -evil\n')]);
    await writeFile(proxmoxPath, edited);
    await writeFile(sumsPath, sums.replace(sha(proxmox), sha(edited)));
    expect(await errorOf(verifyArtifact(published.artifactDir))).toMatchObject({
      code: 'E_SIGNATURE_INVALID',
      details: { file: 'signature.json' },
    });
    await writeFile(proxmoxPath, proxmox);
    await writeFile(sumsPath, sums);
    await verifyArtifact(published.artifactDir);
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect((await errorOf(verifyArtifact(published.artifactDir, { publicKeyPem: other }))).code).toBe(
      'E_SIGNATURE_INVALID',
    );
    const signaturePath = path.join(published.artifactDir, 'signature.json');
    const signature = JSON.parse(await readFile(signaturePath, 'utf8')) as { signature: string };
    const bytes = Buffer.from(signature.signature, 'base64');
    bytes[0] = (bytes[0] as number) ^ 1;
    const signatureText = await readFile(signaturePath);
    await writeFile(signaturePath, JSON.stringify({ ...signature, signature: bytes.toString('base64') }));
    expect((await errorOf(verifyArtifact(published.artifactDir))).code).toBe('E_SIGNATURE_INVALID');
    await writeFile(signaturePath, signatureText);
    await rm(path.join(published.artifactDir, 'OVMF_VARS.fd'));
    expect(await errorOf(verifyArtifact(published.artifactDir))).toMatchObject({
      code: 'E_ARTIFACT_FILE_MISSING',
      details: { file: 'OVMF_VARS.fd' },
    });
  });

  it('keeps one signing key across publishes and versions apart in time order', async () => {
    const otherRom = (byte: number): PublishOptions['files'] => ({
      code: CODE,
      vars: VARS,
      rom: ROM.with(2, byte),
    });
    const first = await publishArtifact(options);
    const second = await publishArtifact({
      ...options,
      files: otherRom(1),
      now: new Date('2026-11-24T06:00:00Z'),
    });
    const third = await publishArtifact({
      ...options,
      files: otherRom(2),
      now: new Date('2026-11-24T06:00:00Z'),
    });
    expect(second.signingKeyFingerprint).toBe(first.signingKeyFingerprint);
    expect([first.version, second.version, third.version]).toEqual([
      '20261124T051500Z-3f1c2a9b',
      '20261124T060000Z-3f1c2a9b',
      '20261124T060000Z-3f1c2a9b.2',
    ]);
    const nameDir = path.join(dir(), 'artifacts', options.name);
    expect(await readlink(path.join(nameDir, 'latest'))).toBe(third.version);
  });

  it('returns the published version when the same content is published again, and points latest at it', async () => {
    const first = await publishArtifact(options);
    const other = await publishArtifact({
      ...options,
      files: { code: CODE, vars: VARS, rom: ROM.with(2, 7) },
    });
    const again = await publishArtifact({ ...options, now: new Date('2026-11-24T07:00:00Z') });
    expect(other.version).toBe('20261124T051500Z-3f1c2a9b.2');
    expect(again).toEqual({ ...first, reused: true });
    const nameDir = path.join(dir(), 'artifacts', options.name);
    expect(await readlink(path.join(nameDir, 'latest'))).toBe(first.version);
    expect((await readdir(nameDir)).sort()).toEqual([first.version, other.version, 'latest']);
  });

  it('two concurrent publishes of the same content in one process both return one version', async () => {
    const results = await Promise.all([publishArtifact(options), publishArtifact(options)]);
    expect(results.map((r) => r.version)).toEqual(['20261124T051500Z-3f1c2a9b', '20261124T051500Z-3f1c2a9b']);
    expect(results.map((r) => r.reused).sort()).toEqual([false, true]);
    const nameDir = path.join(dir(), 'artifacts', options.name);
    expect((await readdir(nameDir)).sort()).toEqual(['20261124T051500Z-3f1c2a9b', 'latest']);
    const [a, b] = results as [PublishedArtifact, PublishedArtifact];
    expect(a.artifactDir).toBe(b.artifactDir);
    expect(sha(await readFile(a.files.code))).toBe(sha(CODE));
    expect(sha(await readFile(b.files.rom))).toBe(sha(ROM));
    await verifyArtifact(a.artifactDir);
  });

  it('two processes publishing the same content at once both succeed with the same version and bytes', async () => {
    const barrier = path.join(dir(), 'ready');
    await writeFile(barrier, '');
    const child = (): Promise<{ stdout: string }> =>
      run(process.execPath, ['--import', 'tsx', RACE_CHILD, options.storeDir, options.configDir, barrier], {
        cwd: path.resolve(import.meta.dirname, '../..'),
      });
    const outputs = await Promise.all([child(), child()]);
    const results = outputs.map(
      (o) =>
        JSON.parse(o.stdout) as { version: string; artifactDir: string; reused: boolean; digests: string },
    );
    const [a, b] = results as [(typeof results)[0], (typeof results)[0]];
    expect(b.version).toBe(a.version);
    expect(b.artifactDir).toBe(a.artifactDir);
    expect(b.digests).toBe(a.digests);
    expect([a.reused, b.reused].sort()).toEqual([false, true]);
    const nameDir = path.join(options.storeDir, 'race');
    expect((await readdir(nameDir)).sort()).toEqual([a.version, 'latest']);
    const check = await verifyArtifact(a.artifactDir);
    expect(check.digests['OVMF_CODE.fd']).toBe(sha(CODE));
  });

  it('ignores and removes temp dirs of dead publishers; findPublished reuses an intact version only', async () => {
    const nameDir = path.join(dir(), 'artifacts', options.name);
    const abandoned = path.join(nameDir, `.tmp-${2 ** 30}-abc`);
    await mkdir(abandoned, { recursive: true });
    await writeFile(path.join(abandoned, 'OVMF_CODE.fd'), CODE);
    expect(await findPublished(options.storeDir, options.name, KEY)).toBeNull();
    const published = await publishArtifact(options);
    expect(await readdir(nameDir)).not.toContain(path.basename(abandoned));
    expect(await findPublished(options.storeDir, options.name, KEY)).toMatchObject({
      artifactDir: published.artifactDir,
      reused: true,
    });
    expect(await findPublished(options.storeDir, options.name, 'a'.repeat(64))).toBeNull();
    await writeFile(path.join(published.artifactDir, 'OVMF_CODE.fd'), VARS);
    expect(await findPublished(options.storeDir, options.name, KEY)).toBeNull();
  });
});
