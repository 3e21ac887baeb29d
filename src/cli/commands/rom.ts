import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { sha256 } from '../../core/digest.js';
import { OvmfBuildError, throwIfAborted, UsageError } from '../../core/errors.js';
import { hex } from '../../core/hex.js';
import { writeFileAtomic } from '../../fetch/durable-fs.js';
import { assertGopDriver } from '../../formats/gop.js';
import { buildOptionRom } from '../../formats/option-rom-builder.js';
import { optionRomPeBytes, parseOptionRom } from '../../formats/option-rom.js';

/** PCI class code of a VGA-compatible display controller (base 03h, sub-class 00h, interface 00h). */
const DEFAULT_CLASS_CODE = 0x03_0000;

const USAGE = [
  'usage: ovmf-build rom --gop <file> --device <vendor:device> [--class <code>] [--compress] [--out <file>] [--json]',
  '',
  'Wraps an Intel GOP driver in a PCI option ROM laid out as EDK2 EfiRom does, parses it',
  'back to check it, and writes it atomically.',
  '',
  '  --gop <file>        the Intel GOP driver (x64 PE32+ EFI boot-service driver)',
  '  --device <v:d>      PCI vendor and device id in hex, e.g. 8086:3e9b',
  '  --class <code>      24-bit PCI class code (default 0x030000, VGA display controller)',
  '  --compress          EFI 1.1-compress the driver (EfiRom -ec)',
  '  --out <file>        output file (default gop-<vendor>-<device>.rom in the current directory)',
  '  --json              print {path, sha256, size, vendorId, deviceId, classCode, compressed, gopBuild}',
].join('\n');

function parseDevice(text: string): { vendorId: number; deviceId: number } {
  const match = /^([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(text);
  if (match === null) {
    throw new UsageError(
      `--device must be <vendor>:<device> as 4 hex digits each (e.g. 8086:3e9b), got \`${text}\``,
      {
        device: text,
      },
    );
  }
  return { vendorId: parseInt(match[1] as string, 16), deviceId: parseInt(match[2] as string, 16) };
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

export const command: Command = {
  name: 'rom',
  summary: 'make a PCI option ROM from a GOP driver',
  usage: USAGE,
  async run(ctx) {
    const { values } = parseCommandArgs(
      ctx.argv,
      {
        gop: { type: 'string' },
        device: { type: 'string' },
        class: { type: 'string' },
        compress: { type: 'boolean' },
        out: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      USAGE,
      false,
    );
    if (values.help === true) {
      writeLine(ctx.stdout, USAGE);
      return 0;
    }
    if (values.gop === undefined) throw new UsageError(`--gop <file> is required\n${USAGE}`);
    if (values.device === undefined) throw new UsageError(`--device <vendor:device> is required\n${USAGE}`);
    const { vendorId, deviceId } = parseDevice(values.device);
    const classCode = values.class === undefined ? DEFAULT_CLASS_CODE : parseClassCode(values.class);
    const compress = values.compress === true;
    const gopPath = path.resolve(ctx.cwd, values.gop);
    const outPath = path.resolve(ctx.cwd, values.out ?? `gop-${hex4(vendorId)}-${hex4(deviceId)}.rom`);

    let gopBytes: Uint8Array;
    try {
      gopBytes = new Uint8Array(await readFile(gopPath));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new OvmfBuildError(
        code === 'ENOENT' ? 'E_INPUT_NOT_FOUND' : 'E_INPUT_UNREADABLE',
        `cannot read the GOP driver ${gopPath}: ${code ?? String(error)}`,
        { path: gopPath },
        { cause: error },
      );
    }
    const gop = assertGopDriver(gopBytes);
    const rom = buildOptionRom({ images: [{ pe: gopBytes, vendorId, deviceId, classCode, compress }] });

    // Read the ROM back before it is written: one image, our ids, and the very same driver bytes.
    const parsed = parseOptionRom(rom);
    const image = parsed.images[0];
    if (
      parsed.images.length !== 1 ||
      image === undefined ||
      image.vendorId !== vendorId ||
      image.deviceId !== deviceId ||
      image.efi?.compressed !== compress ||
      sha256(optionRomPeBytes(rom, image)) !== gop.sha256
    ) {
      throw new OvmfBuildError(
        'E_VERIFY_ROM_MISMATCH',
        'the built option ROM does not parse back to the GOP driver it was built from',
        {
          path: outPath,
        },
      );
    }

    throwIfAborted(ctx.signal);
    await writeFileAtomic(outPath, rom);
    const summary = {
      path: outPath,
      sha256: sha256(rom),
      size: rom.length,
      vendorId: hex4(vendorId),
      deviceId: hex4(deviceId),
      classCode: `0x${classCode.toString(16).padStart(6, '0')}`,
      compressed: compress,
      gopBuild: gop.build,
    };
    if (values.json === true) {
      writeJson(ctx.stdout, summary);
    } else {
      writeLine(
        ctx.stdout,
        `wrote ${outPath} (${rom.length} bytes, sha256 ${summary.sha256})\n` +
          `  PCI ${summary.vendorId}:${summary.deviceId} class ${summary.classCode}, EFI image at ${hex(image.efi?.imageOffset ?? 0)}, ${compress ? 'compressed' : 'uncompressed'}\n` +
          `  Intel GOP driver ${gop.sizeInBytes} bytes, build ${gop.build ?? `unknown (${gop.buildNote ?? 'no build digits'})`}`,
      );
    }
    return 0;
  },
};
