import { readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { defineCommand } from '../command-args.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { userConfigDir } from '../../cache/paths.js';
import { readInputText } from '../../fetch/read-input.js';
import {
  loadOrCreateSigningKey,
  loadTrustedKeys,
  PublishError,
  verifyArtifact,
  type ArtifactCheck,
} from '../../publish/index.js';
import { EXIT } from '../exit-codes.js';

const USAGE = [
  'usage: ovmf-build verify <artifact dir> [--key <public key .pem>] [--json]',
  '       ovmf-build verify --print-public-key',
  '',
  'Checks an artifact version directory (artifacts/<name>/<version>, or artifacts/<name>/latest):',
  'first the ed25519 signature over manifest.json and SHA256SUMS, then every digest they list.',
  'The signer must be a key you trust: your own signing key, or one added with',
  '`ovmf-build keys add`. The signing-key.pub inside the directory is never trusted for being',
  'there. --key <file> checks against that one public key instead.',
  'The directory may hold only regular files (no links, FIFOs or sub-directories) and every',
  'name it lists must be a plain file name.',
  "--print-public-key prints this user's public signing key (created on first use in",
  '$XDG_CONFIG_HOME/ovmf-build/signing-key.pem, mode 0600).',
  '',
  'exit status: 0 valid; 11 an unknown signer, a bad signature, a digest that does not match or',
  'a malformed directory (the message names the file and what to do).',
].join('\n');

const KEY_SOURCE: Readonly<Record<ArtifactCheck['keySource'], string>> = {
  own: 'your own signing key',
  added: 'trusted: added with `ovmf-build keys add`',
  given: 'the key given with --key',
  embedded: "the directory's own key",
};

/**
 * The path the user typed, with links resolved once: `artifacts/<name>/latest` is a symlink
 * by design. What is inside the directory is then checked without following anything.
 */
async function resolveArtifactDir(cwd: string, given: string): Promise<string> {
  const absolute = path.resolve(cwd, given);
  try {
    return await realpath(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    const parent = path.dirname(absolute);
    const siblings = await readdir(parent).catch(() => null);
    const hint =
      siblings?.includes('latest') === true
        ? `; ${parent} holds ${path.join(parent, 'latest')} and versions ${siblings
            .filter((entry) => /^\d{8}T\d{6}Z-/.test(entry))
            .sort()
            .slice(-3)
            .join(', ')}`
        : '; give an artifact version directory such as artifacts/<name>/latest';
    throw new PublishError(
      'E_ARTIFACT_DIR_NOT_FOUND',
      `${absolute} does not exist${code === 'ENOENT' ? '' : ` (${code})`}${hint}`,
      { artifactDir: absolute },
    );
  }
}

export const command = defineCommand({
  name: 'verify',
  summary: 'check an artifact directory: signature and every digest',
  usage: USAGE,
  options: {
    key: { type: 'string' },
    json: { type: 'boolean' },
    'print-public-key': { type: 'boolean' },
  },
  async run(ctx, { values, positionals }) {
    if (values['print-public-key'] === true) {
      const key = await loadOrCreateSigningKey(userConfigDir(ctx.env));
      ctx.stdout.write(key.publicKeyPem);
      return EXIT.ok;
    }
    if (positionals.length !== 1) throw new UsageError('verify needs exactly one artifact directory');
    const dir = await resolveArtifactDir(ctx.cwd, positionals[0] as string);
    let publicKeyPem: string | undefined;
    if (values.key !== undefined) {
      try {
        publicKeyPem = await readInputText(path.resolve(ctx.cwd, values.key), { what: '--key' });
      } catch (error) {
        throw new UsageError(`cannot read --key ${values.key}: ${(error as Error).message}`);
      }
    }
    const check = await verifyArtifact(
      dir,
      publicKeyPem === undefined
        ? { trustedKeys: await loadTrustedKeys(userConfigDir(ctx.env)) }
        : { publicKeyPem },
    );
    if (values.json === true) {
      writeJson(ctx.stdout, {
        valid: true,
        artifactDir: check.artifactDir,
        checkedFiles: check.checkedFiles,
        signingKeyFingerprint: check.signingKeyFingerprint,
        keySource: check.keySource,
        unlistedFiles: check.unlistedFiles,
      });
    } else {
      writeLine(ctx.stdout, `valid: ${check.artifactDir}`);
      writeLine(ctx.stdout, `  ${check.checkedFiles.length} files match SHA256SUMS and manifest.json`);
      writeLine(
        ctx.stdout,
        `  signed by key ${check.signingKeyFingerprint} (${KEY_SOURCE[check.keySource]})`,
      );
      if (check.unlistedFiles.length > 0)
        writeLine(ctx.stdout, `  not covered: ${check.unlistedFiles.join(', ')}`);
    }
    return EXIT.ok;
  },
});
