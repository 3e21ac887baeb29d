// verifyArtifact against hostile directories: it reads nothing a manifest names before the
// signature verified with a trusted key, refuses links and special files inside, and refuses
// what `sha256sum -c` and a careful reader would refuse, each with its own code.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { OvmfBuildError } from '../core/errors.js';
import { publishArtifact, type PublishOptions, type PublishedArtifact } from './artifact.js';
import { verifyArtifact } from './verify.js';
import { loadOrCreateSigningKey, signedMessage, signMessage, type SigningKey } from './signing.js';
import { addTrustedKey, loadTrustedKeys, removeTrustedKey } from './trust.js';
import { tempDirPerTest } from '../../test/temp-dir.js';

const run = promisify(execFile);
const KEY = '3f1c2a9b'.repeat(8);
const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

const tempDir = tempDirPerTest('ovmf-verify-');
let dir: string;
let configDir: string;
let published: PublishedArtifact;
beforeEach(async () => {
  dir = tempDir();
  configDir = path.join(dir, 'config');
  const options: PublishOptions = {
    name: 'cml',
    keyValue: KEY,
    files: {
      code: new Uint8Array(4096).fill(1),
      vars: new Uint8Array(1024).fill(2),
      rom: new Uint8Array([0x55, 0xaa]),
    },
    manifest: { cache: { key: KEY } },
    storeDir: path.join(dir, 'artifacts'),
    configDir,
    machine: 'q35',
    target: 'DEBUG',
    secureBoot: false,
    now: new Date('2026-11-24T05:15:00Z'),
  };
  published = await publishArtifact(options);
});

async function failure(promise: Promise<unknown>): Promise<OvmfBuildError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OvmfBuildError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

const file = (name: string): string => path.join(published.artifactDir, name);

/**
 * Rewrites manifest.json and/or SHA256SUMS and signs the result with `key`, putting its public
 * half in the directory, as an attacker with their own key (or a buggy signer) would.
 */
async function reseal(key: SigningKey, change: { manifest?: string; sums?: string } = {}): Promise<void> {
  if (change.manifest !== undefined) await writeFile(file('manifest.json'), change.manifest);
  const manifest = await readFile(file('manifest.json'));
  let sums = change.sums ?? (await readFile(file('SHA256SUMS'), 'utf8'));
  sums = sums.replace(/^[0-9a-f]{64}( {2}manifest\.json)$/m, `${sha(manifest)}$1`);
  await writeFile(file('SHA256SUMS'), sums);
  const signature = signMessage(key, signedMessage(sha(manifest), sha(sums)));
  await writeFile(
    file('signature.json'),
    JSON.stringify({ algorithm: 'ed25519', publicKeyFingerprint: key.fingerprint, signature }),
  );
  await writeFile(file('signing-key.pub'), key.publicKeyPem);
}

async function ownKey(): Promise<SigningKey> {
  return loadOrCreateSigningKey(configDir);
}

async function strangerKey(): Promise<SigningKey> {
  return loadOrCreateSigningKey(path.join(dir, 'stranger'));
}

async function trusted(): Promise<{ trustedKeys: Awaited<ReturnType<typeof loadTrustedKeys>> }> {
  return { trustedKeys: await loadTrustedKeys(configDir) };
}

describe('verifyArtifact: who signed it', () => {
  it('accepts its own key; a directory re-signed by another key is untrusted, naming the fingerprint', async () => {
    expect((await verifyArtifact(published.artifactDir, await trusted())).keySource).toBe('own');
    const stranger = await strangerKey();
    await writeFile(file('proxmox.conf'), 'args: -evil\n');
    const sums = (await readFile(file('SHA256SUMS'), 'utf8')).replace(
      /^[0-9a-f]{64}( {2}proxmox\.conf)$/m,
      `${sha('args: -evil\n')}$1`,
    );
    await reseal(stranger, { sums });
    const error = await failure(verifyArtifact(published.artifactDir, await trusted()));
    expect([error.code, error.details['signingKeyFingerprint']]).toEqual([
      'E_SIGNATURE_UNTRUSTED',
      stranger.fingerprint,
    ]);
    expect(error.message).toBe(
      `${published.artifactDir} is signed by key ${stranger.fingerprint}, which you do not trust. ` +
        'If you expect this signer, compare that fingerprint with the one they gave you by another channel, then run: ' +
        `ovmf-build keys add ${file('signing-key.pub')}`,
    );
    // Trusting it (after an out-of-band check) makes it pass; removing it again does not.
    const { key, added } = await addTrustedKey(configDir, await readFile(file('signing-key.pub')), 'test');
    expect([key.fingerprint, added]).toEqual([stranger.fingerprint, true]);
    const check = await verifyArtifact(published.artifactDir, await trusted());
    expect([check.keySource, check.signingKeyFingerprint]).toEqual(['added', stranger.fingerprint]);
    expect((await addTrustedKey(configDir, stranger.publicKeyPem, 'again')).added).toBe(false);
    await removeTrustedKey(configDir, stranger.fingerprint.slice(0, 12));
    expect((await failure(verifyArtifact(published.artifactDir, await trusted()))).code).toBe(
      'E_SIGNATURE_UNTRUSTED',
    );
  });

  it('with no key of its own and none added, nothing is trusted', async () => {
    const error = await failure(verifyArtifact(published.artifactDir, { trustedKeys: [] }));
    expect(error.code).toBe('E_SIGNATURE_UNTRUSTED');
  });

  it('a signature that verifies with no key at all is invalid, not untrusted', async () => {
    const signature = JSON.parse(await readFile(file('signature.json'), 'utf8')) as { signature: string };
    const bytes = Buffer.from(signature.signature, 'base64');
    bytes[5] = (bytes[5] as number) ^ 1;
    await writeFile(
      file('signature.json'),
      JSON.stringify({ ...signature, signature: bytes.toString('base64') }),
    );
    expect((await failure(verifyArtifact(published.artifactDir, await trusted()))).code).toBe(
      'E_SIGNATURE_INVALID',
    );
  });
});

describe('verifyArtifact: nothing outside the directory', () => {
  it('does not read the files an unsigned manifest names (../../etc/shadow) before the signature', async () => {
    const secret = path.join(dir, 'secret');
    await writeFile(secret, 'root:$y$j9T$secret:19000:0:99999:7:::\n');
    const name = path.relative(published.artifactDir, secret);
    const manifest = JSON.parse(await readFile(file('manifest.json'), 'utf8')) as {
      files: { digests: Record<string, unknown> };
    };
    manifest.files.digests[name] = { sha256: '0'.repeat(64) };
    const text = `${JSON.stringify(manifest)}\n`;
    await writeFile(file('manifest.json'), text);
    const sums = (await readFile(file('SHA256SUMS'), 'utf8')).replace(
      /^[0-9a-f]{64}( {2}manifest\.json)$/m,
      `${sha(text)}$1`,
    );
    await writeFile(file('SHA256SUMS'), sums);
    for (const options of [{}, await trusted()]) {
      const error = await failure(verifyArtifact(published.artifactDir, options));
      expect(error.code).toBe('E_SIGNATURE_INVALID');
      expect(JSON.stringify([error.message, error.details])).not.toContain(sha(await readFile(secret)));
    }
    // Signed by the user's own key, the name is still refused: it is not a plain file name.
    await reseal(await ownKey(), { manifest: text });
    const signed = await failure(verifyArtifact(published.artifactDir, await trusted()));
    expect([signed.code, signed.message]).toEqual([
      'E_ARTIFACT_MANIFEST_INVALID',
      `manifest.json names \`${name}\`, which is not a plain file name`,
    ]);
  });

  it('refuses a SHA256SUMS name that is not a plain file name', async () => {
    const sums = `${await readFile(file('SHA256SUMS'), 'utf8')}${'0'.repeat(64)}  ../../secret\n`;
    await writeFile(file('SHA256SUMS'), sums);
    const error = await failure(verifyArtifact(published.artifactDir, await trusted()));
    expect([error.code, error.message]).toEqual([
      'E_ARTIFACT_SUMS_INVALID',
      'SHA256SUMS line 8 names `../../secret`, which is not a plain file name',
    ]);
  });

  it('refuses a symlink, a FIFO or a directory inside, without following or opening it', async () => {
    const outside = path.join(dir, 'vars-copy.fd');
    await writeFile(outside, await readFile(file('OVMF_VARS.fd')));
    const original = await readFile(file('OVMF_VARS.fd'));
    await rm(file('OVMF_VARS.fd'));
    await symlink(outside, file('OVMF_VARS.fd'));
    const link = await failure(verifyArtifact(published.artifactDir, await trusted()));
    expect([link.code, link.details['file'], link.message]).toEqual([
      'E_ARTIFACT_UNSAFE_ENTRY',
      'OVMF_VARS.fd',
      `${file('OVMF_VARS.fd')} is a symbolic link; an artifact directory holds only regular files`,
    ]);
    await rm(file('OVMF_VARS.fd'));
    await writeFile(file('OVMF_VARS.fd'), original);
    await verifyArtifact(published.artifactDir, await trusted());
    await run('mkfifo', [file('notes')]);
    const started = performance.now();
    const fifo = await failure(verifyArtifact(published.artifactDir, await trusted()));
    // A blocking open of the FIFO never returns (the test's timeout); room for a loaded CI machine.
    expect(performance.now() - started).toBeLessThan(10_000);
    expect([fifo.code, fifo.details['file']]).toEqual(['E_ARTIFACT_UNSAFE_ENTRY', 'notes']);
    await rm(file('notes'));
    await mkdir(file('extra'));
    expect((await failure(verifyArtifact(published.artifactDir, await trusted()))).message).toBe(
      `${file('extra')} is a directory; an artifact directory holds only regular files`,
    );
    await rm(file('extra'), { recursive: true });
    await symlink('OVMF_CODE.fd', file('manifest-link'));
    expect((await failure(verifyArtifact(published.artifactDir))).code).toBe('E_ARTIFACT_UNSAFE_ENTRY');
  });

  it('refuses the artifact directory itself being a link (the CLI resolves a path the user typed first)', async () => {
    const latest = path.join(path.dirname(published.artifactDir), 'latest');
    const error = await failure(verifyArtifact(latest, await trusted()));
    expect(error.code).toBe('E_ARTIFACT_NOT_A_VERSION_DIR');
  });
});

describe('verifyArtifact: what sha256sum -c rejects, and wrong shapes', () => {
  it('refuses a name listed twice in SHA256SUMS, even when signed', async () => {
    const sums = await readFile(file('SHA256SUMS'), 'utf8');
    const line = sums.split('\n').find((l) => l.endsWith('  OVMF_CODE.fd')) as string;
    await reseal(await ownKey(), { sums: `${sums}${line}\n` });
    const error = await failure(verifyArtifact(published.artifactDir, await trusted()));
    expect([error.code, error.message]).toEqual([
      'E_ARTIFACT_SUMS_INVALID',
      'SHA256SUMS line 8 lists OVMF_CODE.fd a second time',
    ]);
  });

  it.each([
    ['digests: []', { files: { digests: [] } }, 'manifest.json has no files.digests object'],
    ['digests: {}', { files: { digests: {} } }, 'manifest.json lists no files in files.digests'],
    ['null', null, 'manifest.json is not a JSON object'],
    ['a string', 'x', 'manifest.json is not a JSON object'],
    ['files: null', { files: null }, 'manifest.json has no files.digests object'],
    [
      'a null record',
      { files: { digests: { 'OVMF_CODE.fd': null } } },
      'manifest.json has no sha256 for OVMF_CODE.fd',
    ],
  ])('refuses a signed manifest with %s (E_ARTIFACT_MANIFEST_INVALID)', async (_, manifest, message) => {
    await reseal(await ownKey(), { manifest: JSON.stringify(manifest) });
    const error = await failure(verifyArtifact(published.artifactDir, await trusted()));
    expect([error.code, error.message]).toEqual(['E_ARTIFACT_MANIFEST_INVALID', message]);
  });

  it('refuses files.rom naming a file the digests do not list', async () => {
    const manifest = JSON.parse(await readFile(file('manifest.json'), 'utf8')) as { files: { rom: string } };
    manifest.files.rom = 'OVMF_CODE.fd.bak';
    await reseal(await ownKey(), { manifest: JSON.stringify(manifest) });
    expect((await failure(verifyArtifact(published.artifactDir, await trusted()))).message).toBe(
      'manifest.json files.rom is not one of the files in files.digests',
    );
  });

  it.each([
    ['null'],
    ['[]'],
    ['"x"'],
    ['{"algorithm":"ed25519","signature":5}'],
    ['{"algorithm":"rsa","signature":"AA=="}'],
  ])('refuses signature.json %s with E_SIGNATURE_INVALID', async (text) => {
    await writeFile(file('signature.json'), text);
    const error = await failure(verifyArtifact(published.artifactDir, await trusted()));
    expect([error.code, error.details['file']]).toEqual(['E_SIGNATURE_INVALID', 'signature.json']);
  });

  it('names a name directory, the store and a missing directory', async () => {
    const nameDir = path.dirname(published.artifactDir);
    const error = await failure(verifyArtifact(nameDir, await trusted()));
    expect([error.code, error.message]).toEqual([
      'E_ARTIFACT_NOT_A_VERSION_DIR',
      `${nameDir} is an artifact name directory, not one version of it; use ${nameDir}/latest (-> ${published.version}) or one of its versions: ${published.version}`,
    ]);
    const store = path.dirname(nameDir);
    const storeError = await failure(verifyArtifact(store, await trusted()));
    expect([storeError.code, storeError.message]).toEqual([
      'E_ARTIFACT_NOT_A_VERSION_DIR',
      `${store} is an artifact store, not one artifact version; use ${nameDir}/latest`,
    ]);
    const missing = await failure(verifyArtifact(path.join(dir, 'nope'), await trusted()));
    expect(missing.code).toBe('E_ARTIFACT_DIR_NOT_FOUND');
  });
});
