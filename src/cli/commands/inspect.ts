import path from 'node:path';
import { defineCommand } from '../command-args.js';
import { MAIN_THREAD_MAX_INPUT_BYTES, writeJson, writeLine } from '../context.js';
import { isOvmfBuildError, UsageError } from '../../core/errors.js';
import { sha256 } from '../../core/digest.js';
import { readInputFile } from '../../fetch/read-input.js';
import { hex } from '../../core/hex.js';
import { detectFileKind } from '../../formats/detect.js';
import { parseFirmware } from '../../formats/firmware-tree.js';
import { classifyGopDriver } from '../../formats/gop.js';
import { optionRomPeBytes } from '../../formats/option-rom.js';
import { classifyRomChain, romImageLabel } from '../../formats/rom-chain.js';
import { parsePeImage } from '../../formats/pe-coff.js';
import { nodeToJson, renderTree, toJsonSafe } from '../../formats/render-tree.js';
import { parseVbt } from '../../formats/vbt.js';
import { EXIT } from '../exit-codes.js';

const USAGE = [
  'usage: ovmf-build inspect <file> [--json]',
  '',
  'Shows what a file is: an Intel GOP driver (build, PE summary), another PE image, a VBT,',
  'a firmware image or capsule (volumes, files, sections as a tree), a PCI option ROM (image',
  'chain, vendor/device ids, code types, GOP build) or unknown bytes.',
  '',
  '  --json   print one JSON object {"kind": "gop"|"pe"|"vbt"|"image"|"capsule"|"option-rom"|"unknown", ...}',
].join('\n');

function hex4(value: number): string {
  return value.toString(16).padStart(4, '0');
}

export const command = defineCommand({
  name: 'inspect',
  summary: 'show what a file is (image, capsule, GOP, VBT, option ROM)',
  usage: USAGE,
  options: { json: { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    const [input, ...extra] = positionals;
    if (input === undefined || extra.length > 0) throw new UsageError(`expected one <file>\n${USAGE}`);
    const resolved = path.resolve(ctx.cwd, input);
    const bytes = await readInputFile(resolved, { signal: ctx.signal });
    // On the main thread (run.ts), the digest below and the tree's rendering run without abort checks.
    if (bytes.length > MAIN_THREAD_MAX_INPUT_BYTES) ctx.moveToWorker?.('a large input');
    const json = values.json === true;
    const common = { file: resolved, size: bytes.length, sha256: sha256(bytes) };
    const kind = detectFileKind(bytes);

    if (kind === 'pe') {
      const gop = classifyGopDriver(bytes);
      if (gop.isGop) {
        const { build, sha256: digest, sizeInBytes, pe, controllerName } = gop.info;
        if (json)
          writeJson(
            ctx.stdout,
            toJsonSafe({
              kind: 'gop',
              ...common,
              gop: { build, sha256: digest, size: sizeInBytes, controllerName, pe },
            }),
          );
        else
          writeLine(
            ctx.stdout,
            `Intel GOP driver, build ${build ?? 'unknown'}, ${pe.format} ${pe.machineName} ${pe.subsystemName}, ${sizeInBytes} bytes, sha256 ${digest}`,
          );
        return EXIT.ok;
      }
      const pe = gop.pe ?? parsePeImage(bytes);
      if (json) writeJson(ctx.stdout, toJsonSafe({ kind: 'pe', ...common, pe, notGopReason: gop.reason }));
      else {
        writeLine(
          ctx.stdout,
          `${pe.format} image, ${pe.machineName} ${pe.subsystemName}, ${bytes.length} bytes, sha256 ${common.sha256}`,
        );
        writeLine(ctx.stdout, `not an Intel GOP driver: ${gop.reason}`);
      }
      return EXIT.ok;
    }
    if (kind === 'vbt') {
      const vbt = parseVbt(bytes);
      const summary = {
        signature: vbt.signature,
        bdbVersion: vbt.bdbVersion,
        size: bytes.length,
        vbtSize: vbt.vbtSize,
        version: vbt.version,
        checksumValid: vbt.checksum.valid,
        vbtSha256: vbt.sha256,
        blocks: vbt.blocks.length,
        warnings: vbt.warnings,
      };
      if (json) writeJson(ctx.stdout, toJsonSafe({ kind: 'vbt', ...common, vbt: summary }));
      else {
        writeLine(
          ctx.stdout,
          `VBT "${vbt.signature}", BDB version ${vbt.bdbVersion}, ${vbt.vbtSize} of ${bytes.length} bytes, ${vbt.blocks.length} blocks${vbt.checksum.valid ? '' : ', stale checksum'}`,
        );
        // What i915 tolerates (see parseVbt): shown, never fatal.
        for (const warning of vbt.warnings) writeLine(ctx.stdout, `warning: ${warning}`);
      }
      return EXIT.ok;
    }
    if (kind === 'option-rom') {
      // The signal bounds EFI decompression on the main thread too (run.ts), block by block.
      const chain = classifyRomChain(bytes, { signal: ctx.signal });
      const rom = chain.info;
      const images = chain.images.map((named) => {
        const { image } = named;
        let gop: Record<string, unknown> | null = null;
        let peError: string | null = named.problem;
        if (image.efi !== null && named.problem === null) {
          try {
            const result = classifyGopDriver(optionRomPeBytes(bytes, image, { signal: ctx.signal }));
            gop = result.isGop
              ? { build: result.info.build, sha256: result.info.sha256, size: result.info.sizeInBytes }
              : null;
          } catch (error) {
            if (isOvmfBuildError(error) && error.code === 'E_ABORTED') throw error;
            peError = error instanceof Error ? error.message : String(error);
          }
        }
        return {
          offset: image.offset,
          vendorId: hex4(image.vendorId),
          deviceId: hex4(image.deviceId),
          codeType: image.codeTypeName,
          size: image.imageLengthInBytes,
          lastImage: image.lastImage,
          sha256: image.sha256,
          efi: image.efi,
          role: named.role,
          label: romImageLabel(named),
          moduleName: named.moduleName,
          capabilities: named.capabilities,
          gop,
          ...(peError === null ? {} : { peError }),
        };
      });
      if (json)
        writeJson(
          ctx.stdout,
          toJsonSafe({
            kind: 'option-rom',
            ...common,
            images,
            igdAssignment: chain.hasIgdAssignment,
            trailingBytes: rom.trailingBytes,
          }),
        );
      else {
        writeLine(ctx.stdout, `PCI option ROM, ${images.length} image(s), ${bytes.length} bytes`);
        for (const i of images) {
          writeLine(
            ctx.stdout,
            `  @${hex(i.offset)} ${i.vendorId}:${i.deviceId} ${i.codeType} ${i.size} bytes${i.lastImage ? ' (last)' : ''}: ${i.label}`,
          );
        }
      }
      return EXIT.ok;
    }
    if (kind === 'image' || kind === 'capsule') {
      const tree = parseFirmware(bytes, { signal: ctx.signal });
      if (json) {
        writeJson(
          ctx.stdout,
          toJsonSafe({
            kind,
            ...common,
            format: tree.format,
            stats: tree.stats,
            problems: tree.problems,
            tree: nodeToJson(tree.root),
          }),
        );
      } else {
        writeLine(ctx.stdout, renderTree(tree));
      }
      return EXIT.ok;
    }
    if (json) writeJson(ctx.stdout, toJsonSafe({ kind: 'unknown', ...common }));
    else
      writeLine(
        ctx.stdout,
        `unknown: no capsule header, option ROM, PE image, VBT or firmware volume in ${bytes.length} bytes`,
      );
    return EXIT.ok;
  },
});
