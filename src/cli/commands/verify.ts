import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCommandArgs } from '../args.js';
import type { Command, CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { userConfigDir } from '../../cache/paths.js';
import { loadOrCreateSigningKey, verifyArtifact } from '../../publish/index.js';
import { EXIT } from '../exit-codes.js';

const USAGE = [
  'usage: ovmf-build verify <artifact dir> [--key <public key .pem>] [--json]',
  '       ovmf-build verify --print-public-key',
  '',
  'Checks an artifact directory: every digest in SHA256SUMS and manifest.json, then the ed25519',
  'signature over manifest.json and SHA256SUMS with --key (default: the signing-key.pub in the',
  'directory; pass your own copy of the key to check who signed it).',
  "--print-public-key prints this user's public signing key (created on first use in",
  '$XDG_CONFIG_HOME/ovmf-build/signing-key.pem, mode 0600).',
  '',
  'exit status: 0 valid; 11 a digest or the signature does not match (the message names the file).',
].join('\n');

async function run(ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    ctx.argv,
    {
      key: { type: 'string' },
      json: { type: 'boolean' },
      'print-public-key': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help === true) {
    writeLine(ctx.stdout, USAGE);
    return EXIT.ok;
  }
  if (values['print-public-key'] === true) {
    const key = await loadOrCreateSigningKey(userConfigDir(ctx.env));
    ctx.stdout.write(key.publicKeyPem);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError('verify needs exactly one artifact directory');
  const dir = path.resolve(ctx.cwd, positionals[0] as string);
  let publicKeyPem: string | undefined;
  if (values.key !== undefined) {
    try {
      publicKeyPem = await readFile(path.resolve(ctx.cwd, values.key), 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read --key ${values.key}: ${(error as Error).message}`);
    }
  }
  const check = await verifyArtifact(dir, publicKeyPem === undefined ? {} : { publicKeyPem });
  if (values.json === true) {
    writeJson(ctx.stdout, {
      valid: true,
      artifactDir: check.artifactDir,
      checkedFiles: check.checkedFiles,
      signingKeyFingerprint: check.signingKeyFingerprint,
      unlistedFiles: check.unlistedFiles,
    });
  } else {
    writeLine(ctx.stdout, `valid: ${check.artifactDir}`);
    writeLine(ctx.stdout, `  ${check.checkedFiles.length} files match SHA256SUMS and manifest.json`);
    writeLine(ctx.stdout, `  signed by key ${check.signingKeyFingerprint}`);
    if (check.unlistedFiles.length > 0)
      writeLine(ctx.stdout, `  not covered: ${check.unlistedFiles.join(', ')}`);
  }
  return EXIT.ok;
}

export const command: Command = {
  name: 'verify',
  summary: 'check an artifact directory: signature and every digest',
  usage: USAGE,
  run,
};
