import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseCommandArgs } from '../args.js';
import type { Command, CommandContext } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { OvmfBuildError, UsageError } from '../../core/errors.js';
import { sha256 } from '../../core/digest.js';
import { readInputFile } from '../../fetch/read-input.js';
import type { LocatedVbt } from '../../formats/locate.js';
import { EXIT } from '../exit-codes.js';

const USAGE = [
  'usage: ovmf-build extract <image> --out <dir> [--json]',
  '',
  'Takes the Intel GOP driver and the VBT out of a firmware image (flash dump, IFWI, capsule,',
  'OVMF build) and writes <dir>/IntelGopDriver.efi (the PE32 section body) and <dir>/Vbt.bin',
  '(the raw section body, padding included). Further VBTs are written as Vbt.<FILE GUID>.bin.',
  'Files appear atomically (temp name, fsync, rename): never half-written.',
  '',
  '  --out <dir>   output directory (created if missing)',
  '  --json        print one JSON object: {"gop": {...} | null, "vbt": {...} | null, ...}',
  '',
  'exit status: 0 both found; 4 no GOP driver (also when the VBT is missing too: the GOP is',
  'the part that cannot be replaced); 5 GOP found but no VBT; 3 not a firmware image.',
].join('\n');

/** Writes `bytes` to `target` through a temp file in the same directory, fsync and rename. */
async function writeAtomically(target: string, bytes: Uint8Array): Promise<void> {
  const temp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw new OvmfBuildError(
      'E_ARTIFACT_WRITE_FAILED',
      `cannot write ${target}: ${error instanceof Error ? error.message : String(error)}`,
      { path: target },
      { cause: error },
    );
  }
}

function vbtJson(v: LocatedVbt, filePath: string): Record<string, unknown> {
  return {
    sha256: sha256(v.body),
    size: v.body.length,
    guid: v.guid,
    uiName: v.uiName,
    signature: v.info.signature,
    bdbVersion: v.info.bdbVersion,
    vbtSize: v.info.vbtSize,
    vbtSha256: v.info.sha256,
    checksumValid: v.info.checksum.valid,
    section: v.sectionType,
    imagePath: v.path,
    offset: v.offset,
    path: filePath,
  };
}

function readInput(file: string, ctx: CommandContext): Promise<Uint8Array> {
  return readInputFile(path.resolve(ctx.cwd, file), { what: 'image', signal: ctx.signal });
}

export const command: Command = {
  name: 'extract',
  summary: 'take the GOP driver and VBT out of a firmware image',
  usage: USAGE,
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(
      ctx.argv,
      {
        out: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      USAGE,
      true,
    );
    if (values.help === true) {
      writeLine(ctx.stdout, USAGE);
      return EXIT.ok;
    }
    const [input, ...extra] = positionals;
    if (input === undefined || extra.length > 0 || values.out === undefined || values.out === '') {
      throw new UsageError(`expected one <image> and --out <dir>\n${USAGE}`);
    }
    // The parser (and its native LZMA decoder) loads while the image is read.
    const reading = readInput(input, ctx);
    // Handled by the await below; this keeps an early failure from counting as unhandled meanwhile.
    reading.catch(() => undefined);
    const [{ parseFirmware }, { gopNotFoundError, locateGopAndVbt, vbtNotFoundError }] = await Promise.all([
      import('../../formats/firmware-tree.js'),
      import('../../formats/locate.js'),
    ]);
    const bytes = await reading;
    // Extraction needs no file data checksums or PE summaries: skip both passes.
    const tree = parseFirmware(bytes, { verifyChecksums: false, summarizePe: false });
    const result = locateGopAndVbt(tree);

    const outDir = path.resolve(ctx.cwd, values.out);
    try {
      await mkdir(outDir, { recursive: true });
    } catch (error) {
      throw new OvmfBuildError(
        'E_ARTIFACT_WRITE_FAILED',
        `cannot create ${outDir}: ${error instanceof Error ? error.message : String(error)}`,
        { path: outDir },
      );
    }
    let gopJson: Record<string, unknown> | null = null;
    if (result.gop !== null) {
      const gopPath = path.join(outDir, 'IntelGopDriver.efi');
      await writeAtomically(gopPath, result.gop.body);
      gopJson = {
        sha256: result.gop.info.sha256,
        size: result.gop.body.length,
        guid: result.gop.guid,
        build: result.gop.info.build,
        uiName: result.gop.uiName,
        machine: result.gop.info.pe.machineName,
        imagePath: result.gop.path,
        offset: result.gop.offset,
        path: gopPath,
      };
    }
    let vbtJsonValue: Record<string, unknown> | null = null;
    const others: Record<string, unknown>[] = [];
    for (const [index, vbt] of result.vbts.entries()) {
      const vbtPath = path.join(outDir, index === 0 ? 'Vbt.bin' : `Vbt.${vbt.guid}.bin`);
      await writeAtomically(vbtPath, vbt.body);
      if (index === 0) vbtJsonValue = vbtJson(vbt, vbtPath);
      else others.push(vbtJson(vbt, vbtPath));
    }
    const missing: OvmfBuildError[] = [];
    if (result.gop === null) missing.push(gopNotFoundError(result));
    if (result.vbt === null) missing.push(vbtNotFoundError(result));

    if (values.json === true) {
      writeJson(ctx.stdout, {
        gop: gopJson,
        vbt: vbtJsonValue,
        others,
        otherGops: result.otherGops.map((g) => ({
          sha256: g.info.sha256,
          size: g.body.length,
          guid: g.guid,
          build: g.info.build,
          uiName: g.uiName,
          imagePath: g.path,
        })),
        notGop: result.rejectedGops.map(({ guid, uiName, path: imagePath, reason }) => ({
          guid,
          uiName,
          imagePath,
          reason,
        })),
        image: { format: tree.format, ...tree.stats },
        problems: tree.problems,
        missing: missing.map((e) => ({ code: e.code, message: e.message })),
      });
    } else {
      if (gopJson !== null) {
        writeLine(
          ctx.stdout,
          `GOP  ${String(gopJson['path'])}  ${result.gop?.uiName ?? result.gop?.guid} build ${result.gop?.info.build ?? 'unknown'}  ${String(gopJson['size'])} bytes  sha256 ${String(gopJson['sha256'])}`,
        );
      }
      for (const v of [vbtJsonValue, ...others]) {
        if (v === null) continue;
        writeLine(
          ctx.stdout,
          `VBT  ${String(v['path'])}  ${String(v['signature'])} (BDB ${String(v['bdbVersion'])})  ${String(v['size'])} bytes  sha256 ${String(v['sha256'])}`,
        );
      }
      if (tree.problems.length > 0) {
        writeLine(
          ctx.stderr,
          `ovmf-build: note: ${tree.problems.length} part(s) of the image could not be parsed; first: ${tree.problems[0]?.message}`,
        );
      }
    }
    for (const error of missing) writeLine(ctx.stderr, `ovmf-build: ${error.message} [${error.code}]`);
    if (result.gop === null) return EXIT.gopNotFound;
    if (result.vbt === null) return EXIT.vbtNotFound;
    return EXIT.ok;
  },
};
