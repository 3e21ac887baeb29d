import { stat } from 'node:fs/promises';
import path from 'node:path';
import { defineCommand } from '../command-args.js';
import { writeJson, writeLine } from '../context.js';
import { sha256 } from '../../core/digest.js';
import { OvmfBuildError, throwIfAborted, UsageError } from '../../core/errors.js';
import { hex } from '../../core/hex.js';
import { writeFileAtomic } from '../../core/durable-fs.js';
import { readInputFile } from '../../fetch/read-input.js';
import { assertGopDriver } from '../../formats/gop.js';
import { optionRomPeBytes } from '../../formats/option-rom.js';
import { classifyRomChain, romImageLabel } from '../../formats/rom-chain.js';
import { lookupDevice } from '../../igd/device-table.js';
import { loadIgdDeviceTable } from '../../igd/load.js';
import { buildIgdRom, HELPER_FILE_NAMES, igdRomWarnings, type HelperDrivers } from '../../jobs/rom.js';

/** PCI class code of a VGA-compatible display controller (base 03h, sub-class 00h, interface 00h). */
const DEFAULT_CLASS_CODE = 0x03_0000;

const USAGE = [
  'usage: ovmf-build rom --gop <file> --device <[8086:]device> (--helpers <dir|rom> | --gop-only)',
  '                      [--class <code>] [--compress] [--out <file>] [--json]',
  '',
  'Makes the PCI option ROM for Intel IGD passthrough, laid out as EDK2 EfiRom does, reads it',
  'back to check it, and writes it atomically. With --helpers it is the ROM-mode chain',
  '[IgdAssignmentDxe, PlatformGopPolicyDxe, GOP]: the ROM alone makes a stock OVMF (Debian and',
  "Proxmox's OVMF_CODE_4M.fd) copy the OpRegion, program ASLS/BDSM and hand the GOP the host's",
  'VBT. A --gop-only ROM works only with an OVMF that does IGD assignment itself (ovmf-build).',
  '',
  '  --gop <file>        the Intel GOP driver (x64 PE32+ EFI boot-service driver)',
  '  --device <v:d>      PCI device id in hex, e.g. 8086:3e9b or 3e9b (lspci -n -s 00:02.0)',
  '  --helpers <path>    where IgdAssignmentDxe.efi and PlatformGopPolicyDxe.efi come from: a',
  '                      directory holding both (`ovmf-build build --out`), or a ROM chain that',
  "                      carries them (an artifact's igd.rom), to re-target it to another GOP/device",
  '  --gop-only          a ROM with the GOP driver alone',
  '  --class <code>      24-bit PCI class code (default 0x030000, VGA display controller)',
  '  --compress          EFI 1.1-compress every image (EfiRom -ec)',
  '  --out <file>        output file (default igd-<vendor>-<device>.rom, or gop-<vendor>-<device>.rom',
  '                      with --gop-only, in the current directory)',
  '  --json              print {path, sha256, size, vendorId, deviceId, classCode, compressed, gopBuild,',
  '                      platform, images, warnings}',
].join('\n');

function parseDevice(text: string): { vendorId: number; deviceId: number } {
  const match = /^(?:([0-9a-f]{4}):)?([0-9a-f]{4})$/i.exec(text);
  if (match === null) {
    throw new UsageError(
      `--device must be <vendor>:<device> as 4 hex digits each (e.g. 8086:3e9b), got \`${text}\``,
      {
        device: text,
      },
    );
  }
  return { vendorId: parseInt(match[1] ?? '8086', 16), deviceId: parseInt(match[2] as string, 16) };
}

function parseClassCode(text: string): number {
  const value = /^0x[0-9a-f]{1,6}$/i.test(text)
    ? parseInt(text.slice(2), 16)
    : /^[0-9]{1,8}$/.test(text)
      ? Number(text)
      : NaN;
  if (!Number.isInteger(value) || value > 0xff_ffff) {
    throw new UsageError(`--class must be a 24-bit class code such as 0x030000, got \`${text}\``, {
      classCode: text,
    });
  }
  return value;
}

const hex4 = (value: number): string => value.toString(16).padStart(4, '0');

/**
 * --out must name a file in an existing directory. Checked before any work, so a typo in the
 * path is a usage mistake with its own code, not a failed rename after the ROM was built.
 */
async function checkOutputFile(outPath: string): Promise<void> {
  const dir = path.dirname(outPath);
  const parent = await stat(dir).catch(() => null);
  if (parent === null || !parent.isDirectory()) {
    throw new OvmfBuildError(
      'E_OUTPUT_DIR_MISSING',
      `cannot write ${outPath}: ${dir} ${parent === null ? 'does not exist' : 'is not a directory'}; create it first or choose another --out`,
      { path: outPath, dir },
    );
  }
  const target = await stat(outPath).catch(() => null);
  if (target?.isDirectory() === true) {
    throw new OvmfBuildError(
      'E_OUTPUT_IS_DIRECTORY',
      `--out ${outPath} is a directory; give a file name, e.g. ${path.join(outPath, 'gop.rom')}`,
      { path: outPath },
    );
  }
}

/**
 * The helper drivers from a directory (IgdAssignmentDxe.efi, PlatformGopPolicyDxe.efi) or
 * out of a ROM chain that carries exactly one of each.
 */
async function readHelpers(where: string, signal: AbortSignal): Promise<HelperDrivers> {
  const info = await stat(where).catch(() => null);
  if (info?.isDirectory() === true) {
    const [igdAssignment, gopPolicy] = await Promise.all(
      [HELPER_FILE_NAMES.igdAssignment, HELPER_FILE_NAMES.gopPolicy].map((name) =>
        readInputFile(path.join(where, name), { what: `the helper driver ${name}`, signal }),
      ),
    );
    return { igdAssignment: igdAssignment as Uint8Array, gopPolicy: gopPolicy as Uint8Array };
  }
  const bytes = await readInputFile(where, { what: 'the ROM carrying the helper drivers', signal });
  const chain = classifyRomChain(bytes);
  const one = (role: 'igd-assignment' | 'gop-policy'): Uint8Array => {
    const found = chain.images.filter((i) => i.role === role);
    if (found.length !== 1 || found[0] === undefined) {
      throw new OvmfBuildError(
        'E_INPUT_BAD_HELPER',
        `${where} carries ${found.length} ${role} image(s), expected exactly one (images: ${chain.images.map((i) => i.role).join(', ')})`,
        { path: where, role, images: chain.images.map((i) => i.role) },
      );
    }
    return optionRomPeBytes(bytes, found[0].image);
  };
  return { igdAssignment: one('igd-assignment'), gopPolicy: one('gop-policy') };
}

export const command = defineCommand({
  name: 'rom',
  summary: 'make the IGD option ROM (IgdAssignmentDxe, PlatformGopPolicyDxe, GOP) for stock OVMF',
  usage: USAGE,
  options: {
    gop: { type: 'string' },
    device: { type: 'string' },
    class: { type: 'string' },
    compress: { type: 'boolean' },
    helpers: { type: 'string' },
    'gop-only': { type: 'boolean' },
    out: { type: 'string', short: 'o' },
    json: { type: 'boolean' },
  },
  allowPositionals: false,
  async run(ctx, { values }) {
    if (values.gop === undefined) throw new UsageError(`--gop <file> is required\n${USAGE}`);
    if (values.device === undefined) throw new UsageError(`--device <vendor:device> is required\n${USAGE}`);
    const { vendorId, deviceId } = parseDevice(values.device);
    const gopOnly = values['gop-only'] === true;
    if (gopOnly === (values.helpers !== undefined)) {
      throw new UsageError(
        `${gopOnly ? '--helpers and --gop-only exclude each other' : 'give --helpers <dir|rom> for the ROM-mode chain (IgdAssignmentDxe, PlatformGopPolicyDxe, GOP) or --gop-only for a GOP-only ROM'}\n${USAGE}`,
      );
    }
    const classCode = values.class === undefined ? DEFAULT_CLASS_CODE : parseClassCode(values.class);
    const compress = values.compress === true;
    const gopPath = path.resolve(ctx.cwd, values.gop);
    const outPath = path.resolve(
      ctx.cwd,
      values.out ?? `${gopOnly ? 'gop' : 'igd'}-${hex4(vendorId)}-${hex4(deviceId)}.rom`,
    );

    await checkOutputFile(outPath);
    const gopBytes = await readInputFile(gopPath, { what: 'the GOP driver', signal: ctx.signal });
    const gop = assertGopDriver(gopBytes);
    const helpers =
      values.helpers === undefined
        ? null
        : await readHelpers(path.resolve(ctx.cwd, values.helpers), ctx.signal);
    // Reads the ROM back before it is written: every image holds the very bytes it was built
    // from and is recognised as what it should be (E_VERIFY_ROM_MISMATCH, E_INPUT_BAD_HELPER).
    const { bytes: rom, chain } = buildIgdRom({
      gop: gopBytes,
      helpers,
      vendorId,
      deviceId,
      classCode,
      compress,
    });
    const image = chain.images.at(-1)?.image;
    const platform =
      vendorId === 0x8086 ? lookupDevice(await loadIgdDeviceTable(), hex4(deviceId)) : undefined;
    const warnings = igdRomWarnings(chain);
    if (platform === undefined) {
      warnings.push(
        `device ${hex4(vendorId)}:${hex4(deviceId)} is not in the IGD device table: IgdAssignmentDxe will not handle it`,
      );
    }

    throwIfAborted(ctx.signal);
    try {
      await writeFileAtomic(outPath, rom);
    } catch (error) {
      throw new OvmfBuildError(
        'E_OUTPUT_WRITE_FAILED',
        `cannot write ${outPath}: ${error instanceof Error ? error.message : String(error)}`,
        { path: outPath, errno: (error as NodeJS.ErrnoException).code ?? null },
        { cause: error },
      );
    }
    const summary = {
      path: outPath,
      sha256: sha256(rom),
      size: rom.length,
      vendorId: hex4(vendorId),
      deviceId: hex4(deviceId),
      classCode: `0x${classCode.toString(16).padStart(6, '0')}`,
      compressed: compress,
      gopBuild: gop.build,
      platform:
        platform === undefined
          ? null
          : { key: platform.key, name: platform.name, graphicsVersion: platform.graphicsVersion },
      images: chain.images.map((i) => i.role),
      warnings,
    };
    if (values.json === true) {
      writeJson(ctx.stdout, summary);
    } else {
      writeLine(
        ctx.stdout,
        `wrote ${outPath} (${rom.length} bytes, sha256 ${summary.sha256})\n` +
          `  PCI ${summary.vendorId}:${summary.deviceId}${platform === undefined ? '' : ` (${platform.name}, graphics ${platform.graphicsVersion})`} class ${summary.classCode}, ${compress ? 'compressed' : 'uncompressed'}\n` +
          chain.images
            .map(
              (i) =>
                `  image ${i.index} @${hex(i.offset)}: ${romImageLabel(i)}${i.role === 'gop' ? `, ${gop.sizeInBytes} bytes, EFI image at ${hex(image?.efi?.imageOffset ?? 0)}` : ''}`,
            )
            .join('\n') +
          warnings.map((w) => `\nwarning: ${w}`).join(''),
      );
    }
    return 0;
  },
});
