// `ovmf-build verify` and `ovmf-build keys` through the real CLI entry, with a real artifact
// directory, a real config directory (XDG_CONFIG_HOME) and real files: the trust model, the
// messages for wrong paths and the exit codes.
import { readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './cli-harness.js';
import { loadOrCreateSigningKey, publishArtifact, type PublishedArtifact } from '../src/publish/index.js';
import { signedMessage, signMessage } from '../src/publish/signing.js';
import { sha256 } from '../src/core/digest.js';
import { tempDirPerTest } from './temp-dir.js';

const KEY = 'c0ffee00'.repeat(8);

const tempDir = tempDirPerTest('ovmf-verify-cli-');
let dir: string;
let env: NodeJS.ProcessEnv;
let published: PublishedArtifact;
beforeEach(async () => {
  dir = tempDir();
  env = { HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config') };
  published = await publishArtifact({
    name: 'cml',
    keyValue: KEY,
    files: {
      code: new Uint8Array(4096).fill(3),
      vars: new Uint8Array(1024).fill(4),
      rom: new Uint8Array([0x55, 0xaa]),
    },
    manifest: { cache: { key: KEY } },
    storeDir: path.join(dir, 'artifacts'),
    configDir: path.join(dir, 'config', 'ovmf-build'),
    machine: 'q35',
    target: 'DEBUG',
    secureBoot: false,
    now: new Date('2026-11-24T05:15:00Z'),
  });
});

const cli = (...argv: string[]): Promise<CliResult> => runCli(argv, dir, env);

/** What an attacker who can write the directory does: change a snippet and re-sign with their own key. */
async function resignWithStrangerKey(): Promise<string> {
  const stranger = await loadOrCreateSigningKey(path.join(dir, 'stranger'));
  const at = (name: string): string => path.join(published.artifactDir, name);
  const evil = 'args: -evil\n';
  await writeFile(at('proxmox.conf'), evil);
  const sums = (await readFile(at('SHA256SUMS'), 'utf8')).replace(
    /^[0-9a-f]{64}( {2}proxmox\.conf)$/m,
    `${sha256(Buffer.from(evil))}$1`,
  );
  await writeFile(at('SHA256SUMS'), sums);
  const manifest = await readFile(at('manifest.json'));
  const signature = signMessage(stranger, signedMessage(sha256(manifest), sha256(Buffer.from(sums))));
  await writeFile(at('signature.json'), JSON.stringify({ algorithm: 'ed25519', signature }));
  await writeFile(at('signing-key.pub'), stranger.publicKeyPem);
  return stranger.fingerprint;
}

describe('ovmf-build verify: trusted keys', () => {
  it('passes a directory signed by the own key, through the latest link too', async () => {
    const own = await loadOrCreateSigningKey(path.join(dir, 'config', 'ovmf-build'));
    const ok = await cli('verify', published.artifactDir);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout.split('\n')).toEqual([
      `valid: ${published.artifactDir}`,
      '  7 files match SHA256SUMS and manifest.json',
      `  signed by key ${own.fingerprint} (your own signing key)`,
      '',
    ]);
    const latest = await cli('verify', 'artifacts/cml/latest', '--json');
    expect(latest.code).toBe(0);
    expect(JSON.parse(latest.stdout)).toMatchObject({
      valid: true,
      artifactDir: published.artifactDir,
      keySource: 'own',
      signingKeyFingerprint: own.fingerprint,
    });
  });

  it('refuses a directory re-signed with another key until that key is added; keys list/remove', async () => {
    const fingerprint = await resignWithStrangerKey();
    const refused = await cli('verify', published.artifactDir);
    expect([refused.code, refused.stdout]).toEqual([11, '']);
    expect(refused.stderr).toBe(
      `ovmf-build: ${published.artifactDir} is signed by key ${fingerprint}, which you do not trust. ` +
        'If you expect this signer, compare that fingerprint with the one they gave you by another channel, then run: ' +
        `ovmf-build keys add ${published.artifactDir}/signing-key.pub [E_SIGNATURE_UNTRUSTED]\n`,
    );
    const add = await cli('keys', 'add', path.join(published.artifactDir, 'signing-key.pub'));
    expect(add.code).toBe(0);
    expect(add.stdout.split('\n')[0]).toBe(`trusted: ${fingerprint}`);
    const trustedFile = path.join(dir, 'config', 'ovmf-build', 'trusted-keys', `${fingerprint}.pub`);
    expect(await readFile(trustedFile, 'utf8')).toBe(
      await readFile(path.join(published.artifactDir, 'signing-key.pub'), 'utf8'),
    );
    expect((await cli('keys', 'add', trustedFile)).stdout).toBe(
      `already trusted: ${fingerprint} (${trustedFile})\n`,
    );
    const accepted = await cli('verify', published.artifactDir);
    expect([accepted.code, accepted.stdout.split('\n')[2]]).toEqual([
      0,
      `  signed by key ${fingerprint} (trusted: added with \`ovmf-build keys add\`)`,
    ]);
    const own = await loadOrCreateSigningKey(path.join(dir, 'config', 'ovmf-build'));
    const list = await cli('keys', 'list', '--json');
    expect(JSON.parse(list.stdout)).toEqual([
      {
        fingerprint: own.fingerprint,
        source: 'own',
        file: path.join(dir, 'config', 'ovmf-build', 'signing-key.pem'),
      },
      { fingerprint, source: 'added', file: trustedFile },
    ]);
    expect((await cli('keys', 'remove', fingerprint.slice(0, 10))).stdout).toBe(
      `no longer trusted: ${fingerprint}\n`,
    );
    expect((await cli('verify', published.artifactDir)).code).toBe(11);
    const again = await cli('keys', 'remove', fingerprint);
    expect([again.code, again.stderr]).toEqual([
      11,
      `ovmf-build: no trusted key has fingerprint ${fingerprint}; \`ovmf-build keys list\` shows them [E_SIGNATURE_KEY_NOT_FOUND]\n`,
    ]);
    const ownRemove = await cli('keys', 'remove', own.fingerprint);
    expect(ownRemove.code).toBe(2);
  });

  it('still checks against one given key with --key', async () => {
    const fingerprint = await resignWithStrangerKey();
    await writeFile(
      path.join(dir, 'their.pub'),
      await readFile(path.join(published.artifactDir, 'signing-key.pub')),
    );
    const result = await cli('verify', published.artifactDir, '--key', 'their.pub', '--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      keySource: 'given',
      signingKeyFingerprint: fingerprint,
    });
  });

  it('keys add refuses a private key and a file that is not a key, with exit 11', async () => {
    const privateKey = path.join(dir, 'config', 'ovmf-build', 'signing-key.pem');
    const priv = await cli('keys', 'add', privateKey);
    expect([priv.code, priv.stderr]).toEqual([
      11,
      `ovmf-build: ${privateKey} holds a private key; give the public half (an artifact's signing-key.pub) [E_SIGNATURE_KEY_INVALID]\n`,
    ]);
    const notKey = await cli('keys', 'add', path.join(published.artifactDir, 'qemu.sh'));
    expect(notKey.stderr).toMatch(/is not a PEM public key \[E_SIGNATURE_KEY_INVALID\]\n$/);
    expect((await cli('keys')).code).toBe(2);
    expect((await cli('keys', 'list', 'extra')).code).toBe(2);
    const help = await cli('keys', '--help');
    expect([help.code, help.stdout.split('\n')[0]]).toEqual([0, 'usage: ovmf-build keys list [--json]']);
  });
});

describe('ovmf-build verify: wrong paths and shapes', () => {
  it('says what to give instead of a missing directory or a name directory', async () => {
    const missing = await cli('verify', '/nonexistent');
    expect([missing.code, missing.stderr]).toEqual([
      11,
      'ovmf-build: /nonexistent does not exist; give an artifact version directory such as artifacts/<name>/latest [E_ARTIFACT_DIR_NOT_FOUND]\n',
    ]);
    const nameDir = path.join(dir, 'artifacts', 'cml');
    const name = await cli('verify', 'artifacts/cml');
    expect([name.code, name.stderr]).toEqual([
      11,
      `ovmf-build: ${nameDir} is an artifact name directory, not one version of it; use ${nameDir}/latest (-> ${published.version}) or one of its versions: ${published.version} [E_ARTIFACT_NOT_A_VERSION_DIR]\n`,
    ]);
    const typo = await cli('verify', 'artifacts/cml/2026');
    expect(typo.stderr).toBe(
      `ovmf-build: ${nameDir}/2026 does not exist; ${nameDir} holds ${nameDir}/latest and versions ${published.version} [E_ARTIFACT_DIR_NOT_FOUND]\n`,
    );
  });

  it('a link inside the directory is refused even though the user path was a link', async () => {
    await symlink('/etc/passwd', path.join(published.artifactDir, 'passwd'));
    const result = await cli('verify', 'artifacts/cml/latest');
    expect([result.code, result.stderr]).toEqual([
      11,
      `ovmf-build: ${published.artifactDir}/passwd is a symbolic link; an artifact directory holds only regular files [E_ARTIFACT_UNSAFE_ENTRY]\n`,
    ]);
  });

  it('null in signature.json or manifest.json exits 11 with a code, not 70', async () => {
    const signaturePath = path.join(published.artifactDir, 'signature.json');
    await writeFile(signaturePath, 'null');
    const signature = await cli('verify', published.artifactDir);
    expect([signature.code, signature.stderr]).toEqual([
      11,
      'ovmf-build: signature.json is not an ovmf-build signature (an object with "algorithm": "ed25519" and a base64 "signature") [E_SIGNATURE_INVALID]\n',
    ]);
    const own = await loadOrCreateSigningKey(path.join(dir, 'config', 'ovmf-build'));
    const manifestPath = path.join(published.artifactDir, 'manifest.json');
    await writeFile(manifestPath, 'null');
    const sumsPath = path.join(published.artifactDir, 'SHA256SUMS');
    const sums = (await readFile(sumsPath, 'utf8')).replace(
      /^[0-9a-f]{64}( {2}manifest\.json)$/m,
      `${sha256(Buffer.from('null'))}$1`,
    );
    await writeFile(sumsPath, sums);
    const signed = signMessage(own, signedMessage(sha256(Buffer.from('null')), sha256(Buffer.from(sums))));
    await writeFile(signaturePath, JSON.stringify({ algorithm: 'ed25519', signature: signed }));
    const manifest = await cli('verify', published.artifactDir);
    expect([manifest.code, manifest.stderr]).toEqual([
      11,
      'ovmf-build: manifest.json is not a JSON object [E_ARTIFACT_MANIFEST_INVALID]\n',
    ]);
  });

  it('--print-public-key with a config directory that cannot be created exits 11 with a code', async () => {
    const blocker = path.join(dir, 'not-a-dir');
    await writeFile(blocker, '');
    env = { HOME: dir, XDG_CONFIG_HOME: blocker };
    const result = await cli('verify', '--print-public-key');
    expect(result.code).toBe(11);
    expect(result.stderr).toMatch(
      new RegExp(
        `^ovmf-build: cannot create the signing key ${blocker}/ovmf-build/signing-key\\.pem: .*ENOTDIR.*; make ${blocker}/ovmf-build a writable directory or point XDG_CONFIG_HOME elsewhere \\[E_SIGNATURE_KEY_UNAVAILABLE\\]\\n$`,
      ),
    );
    env = { HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config') };
    const ok = await cli('verify', '--print-public-key');
    expect(ok.stdout).toBe(await readFile(path.join(published.artifactDir, 'signing-key.pub'), 'utf8'));
  });
});
