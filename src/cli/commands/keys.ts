import path from 'node:path';
import { defineCommand } from '../command-args.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { userConfigDir } from '../../cache/paths.js';
import { readInputFile } from '../../fetch/read-input.js';
import { addTrustedKey, loadTrustedKeys, removeTrustedKey, type TrustedKey } from '../../publish/index.js';
import { EXIT } from '../exit-codes.js';

/** An ed25519 public key PEM is 113 bytes. */
const MAX_KEY_FILE_BYTES = 16 * 1024;

const USAGE = [
  'usage: ovmf-build keys list [--json]',
  '       ovmf-build keys add <public key file> [--json]',
  '       ovmf-build keys remove <fingerprint>',
  '',
  'The keys `ovmf-build verify` accepts as signers of an artifact directory: your own signing',
  'key ($XDG_CONFIG_HOME/ovmf-build/signing-key.pem, always trusted) and the public keys added',
  'here (kept in $XDG_CONFIG_HOME/ovmf-build/trusted-keys/<fingerprint>.pub).',
  'Before adding a key, e.g. <artifact dir>/signing-key.pub, compare the fingerprint that',
  '`keys add` prints with the one its owner gave you by another channel; anyone can put a key',
  'beside the files they signed. `remove` takes a fingerprint or 8+ of its first hex digits.',
].join('\n');

function describe(key: TrustedKey): Record<string, string> {
  return { fingerprint: key.fingerprint, source: key.source, file: key.file };
}

export const command = defineCommand({
  name: 'keys',
  summary: 'list, add or remove the public keys verify trusts',
  usage: USAGE,
  options: { json: { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    const [action, ...args] = positionals;
    const configDir = userConfigDir(ctx.env);
    const expectArgs = (count: number, what: string): void => {
      if (args.length !== count) throw new UsageError(`keys ${String(action)} ${what}\n${USAGE}`);
    };
    switch (action) {
      case 'list': {
        expectArgs(0, 'takes no arguments');
        const keys = await loadTrustedKeys(configDir);
        if (values.json === true) {
          writeJson(ctx.stdout, keys.map(describe));
        } else if (keys.length === 0) {
          writeLine(ctx.stdout, 'no trusted keys yet: your own key is made by your first build');
        } else {
          for (const key of keys) {
            writeLine(
              ctx.stdout,
              `${key.fingerprint}  ${key.source === 'own' ? 'own  ' : 'added'}  ${key.file}`,
            );
          }
        }
        return EXIT.ok;
      }
      case 'add': {
        expectArgs(1, 'needs one public key file');
        const file = path.resolve(ctx.cwd, args[0] as string);
        const bytes = await readInputFile(file, { what: 'public key', maxBytes: MAX_KEY_FILE_BYTES });
        const { key, added } = await addTrustedKey(configDir, bytes, file);
        if (values.json === true) {
          writeJson(ctx.stdout, { ...describe(key), added });
        } else if (!added) {
          writeLine(
            ctx.stdout,
            `already trusted: ${key.fingerprint} (${key.source === 'own' ? 'your own signing key' : key.file})`,
          );
        } else {
          writeLine(ctx.stdout, `trusted: ${key.fingerprint}`);
          writeLine(
            ctx.stdout,
            `  kept in ${key.file}; \`ovmf-build keys remove ${key.fingerprint.slice(0, 16)}\` undoes it`,
          );
        }
        return EXIT.ok;
      }
      case 'remove': {
        expectArgs(1, 'needs one fingerprint');
        const key = await removeTrustedKey(configDir, args[0] as string);
        if (values.json === true) writeJson(ctx.stdout, { ...describe(key), removed: true });
        else writeLine(ctx.stdout, `no longer trusted: ${key.fingerprint}`);
        return EXIT.ok;
      }
      default:
        throw new UsageError(
          `${action === undefined ? 'keys needs an action' : `unknown keys action \`${action}\``}: list, add or remove\n${USAGE}`,
        );
    }
  },
});
