// `ovmf-build pull NAME[@VERSION] --mirror URL`: one artifact from a mirror, checked like a sync,
// with the Proxmox and QEMU lines for where it landed (src/mirror/pull.ts).
import { homedir } from 'node:os';
import path from 'node:path';
import { defineCommand } from '../command-args.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { userConfigDir, userStateDir } from '../../cache/paths.js';
import { EXIT } from '../exit-codes.js';
import { clockFrom } from './mirror.js';
import { checkOutputDirectory, outputDirLabel } from '../output-dir.js';

/** Where --install-descriptor writes when neither --descriptor-dir nor the variable says. */
export const DESCRIPTOR_DIR_ENV = 'OVMF_BUILD_FIRMWARE_DIR';

const USAGE = [
  'usage: ovmf-build pull NAME[@VERSION] --mirror URL [--trust-key FINGERPRINT] [--out DIR]',
  '                       [--install-descriptor [--descriptor-dir DIR]] [--json]',
  '',
  "Downloads one artifact version (default: the name's latest) from a mirror into",
  'DIR/<name>/<version>/ (DIR defaults to the current directory), with the checks of',
  '`mirror sync`: the signed index by a key you trust (--trust-key: a fingerprint from',
  '`keys list`, or the full fingerprint of the mirror key; without it, the trusted key the index',
  "names), its valid_until, every file's size and sha256, and the directory's own signature.",
  'Prints the Proxmox and QEMU lines with the local paths. The newest index accepted per key is',
  'kept in $XDG_STATE_HOME/ovmf-build/pull-serials.json: an older one is refused as a rollback.',
  '--install-descriptor installs the QEMU firmware descriptor (docs/interop/firmware.json) with',
  `absolute paths for libvirt, into --descriptor-dir, else $${DESCRIPTOR_DIR_ENV}, else`,
  "/etc/qemu/firmware as root and $XDG_CONFIG_HOME/qemu/firmware otherwise (both on QEMU's search path).",
].join('\n');

/** The firmware.json search path entry this user can write (QEMU docs/interop/firmware.json). */
export function defaultDescriptorDir(env: NodeJS.ProcessEnv, uid: number | undefined): string {
  const fromEnv = env[DESCRIPTOR_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (uid === 0) return '/etc/qemu/firmware';
  const config = env['XDG_CONFIG_HOME'];
  return path.join(
    config !== undefined && path.isAbsolute(config) ? config : path.join(env['HOME'] ?? homedir(), '.config'),
    'qemu',
    'firmware',
  );
}

export const command = defineCommand({
  name: 'pull',
  summary: 'download one artifact from a mirror, checked, and print its Proxmox and QEMU lines',
  usage: USAGE,
  options: {
    mirror: { type: 'string' },
    'trust-key': { type: 'string' },
    out: { type: 'string' },
    'install-descriptor': { type: 'boolean' },
    'descriptor-dir': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(ctx, { values, positionals }) {
    const [spec, ...extra] = positionals;
    if (spec === undefined || extra.length > 0) throw new UsageError('pull needs one NAME[@VERSION]');
    const mirror = values.mirror;
    if (mirror === undefined || !/^https?:\/\/[^/]/.test(mirror)) {
      throw new UsageError('pull needs --mirror URL (http or https)');
    }
    const trustKey = values['trust-key'];
    if (trustKey !== undefined && !/^[0-9a-fA-F]{8,64}$/.test(trustKey)) {
      throw new UsageError(`--trust-key expects 8 to 64 hex digits, got \`${trustKey}\``);
    }
    if (values['descriptor-dir'] !== undefined && values['install-descriptor'] !== true) {
      throw new UsageError('--descriptor-dir goes with --install-descriptor');
    }
    const { parsePullSpec, pullArtifact } = await import('../../mirror/pull.js');
    try {
      parsePullSpec(spec);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const outDir = path.resolve(ctx.cwd, values.out ?? '.');
    await checkOutputDirectory(outDir, outputDirLabel(values.out !== undefined, 'output directory'));
    const result = await pullArtifact({
      spec,
      mirrorUrl: mirror,
      ...(trustKey === undefined ? {} : { trustKey }),
      configDir: userConfigDir(ctx.env),
      // The newest index accepted per publisher key: an older one is refused as a rollback.
      stateDir: userStateDir(ctx.env),
      outDir,
      ...(values['install-descriptor'] === true
        ? {
            descriptorDir: path.resolve(
              ctx.cwd,
              values['descriptor-dir'] ?? defaultDescriptorDir(ctx.env, process.getuid?.()),
            ),
          }
        : {}),
      now: clockFrom(ctx.env),
      signal: ctx.signal,
    });
    if (values.json === true) {
      writeJson(ctx.stdout, result);
      return EXIT.ok;
    }
    writeLine(
      ctx.stdout,
      `${result.reused ? 'already here' : 'pulled'}: ${result.name} ${result.version} in ${result.dir} (index serial ${result.serial}, verified)`,
    );
    if (result.descriptorInstalled !== null)
      writeLine(ctx.stdout, `firmware descriptor: ${result.descriptorInstalled}`);
    writeLine(ctx.stdout);
    writeLine(ctx.stdout, result.proxmox.trimEnd());
    writeLine(ctx.stdout);
    writeLine(ctx.stdout, result.qemu.trimEnd());
    return EXIT.ok;
  },
});
