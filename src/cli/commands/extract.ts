import { lstat, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { defineCommand } from '../command-args.js';
import type { CommandContext } from '../context.js';
import { MAIN_THREAD_MAX_INPUT_BYTES, writeJson, writeLine } from '../context.js';
import { FormatError, NotFoundError, OvmfBuildError, throwIfAborted, UsageError } from '../../core/errors.js';
import { sha256 } from '../../core/digest.js';
import { fsyncPath, writeFileSynced } from '../../core/durable-fs.js';
import { hex } from '../../core/hex.js';
import { readInputFile } from '../../fetch/read-input.js';
import type { FileKind } from '../../formats/detect.js';
import type { LocatedVbt } from '../../formats/locate.js';
import type { RomExtraction } from '../../formats/option-rom-extract.js';
import type { VbtInfo } from '../../formats/vbt.js';
import { EXIT } from '../exit-codes.js';
import { checkOutputDirectory } from '../output-dir.js';

/**
 * Inputs parsed on the main thread when run.ts starts the command there: bare images, option
 * ROMs and VBTs. Anything else (a capsule, a PE, a zip or other package) is unpacked first,
 * partly in child processes and with inflates the parser's abort checks do not bound, and
 * the worker's start-up is small beside that: it moves to the worker at once.
 */
const MAIN_THREAD_KINDS: ReadonlySet<FileKind> = new Set(['image', 'option-rom', 'vbt']);

const GOP_FILE = 'IntelGopDriver.efi';
const VBT_FILE = 'Vbt.bin';
/** Every name extract writes; only these are replaced or removed in --out. */
const OUTPUT_NAME =
  /^(?:IntelGopDriver\.efi|Vbt\.bin|Vbt\.[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\.bin)$/u;

const USAGE = [
  'usage: ovmf-build extract <image> --out <dir> [--json]',
  '',
  'Takes the Intel GOP driver and the VBT out of a firmware image (flash dump, IFWI, capsule,',
  'OVMF build), a PCI option ROM, or the vendor package around one (zip, 7z, self-extracting',
  'archive, LVFS cabinet: unpacked outside-in, bounded, in a temp dir), and writes <dir>/IntelGopDriver.efi (the PE32 section body,',
  'or the decompressed EFI image of the ROM) and <dir>/Vbt.bin (the raw section body, padding',
  'included; from a ROM, the VBT of its legacy VBIOS). Further VBTs are written as',
  'Vbt.<FILE GUID>.bin.',
  '',
  'The files of one run appear together or not at all: they are written and fsynced in a',
  'temporary directory, then moved into <dir>; a failure restores what was there. Files of an',
  'earlier extract that this image does not have (a Vbt.bin when the image has only a GOP, an',
  'IntelGopDriver.efi when it has only a VBT) are removed, and the output says so. When the',
  'image has neither, or is corrupt, nothing is written and <dir> is not touched.',
  '',
  '  --out <dir>   output directory (created if missing)',
  '  --json        print one JSON object: {"gop": {...} | null, "vbt": {...} | null, "chain":',
  '                ["FV", "LZMA", "GOP"] | null, ...}; from a package also "package": {"chain",',
  '                "entry", "pieces"} and "chain" starts with the package layers',
  '',
  'From a package the first line is the chain, outside-in, e.g. "chain  zip > FV > LZMA > GOP".',
  'A package with no firmware image, or whose image has neither GOP nor VBT, fails with',
  'E_PACKAGE_NO_GOP (exit 4) naming every piece it held.',
  '',
  'exit status: 0 both found; 4 no GOP driver (the VBT, if any, is written: the GOP is the part',
  'that cannot be replaced); 5 GOP found (and written) but no VBT; 3 not a firmware image;',
  '6 corrupt image (E_INPUT_CORRUPT, naming where), or the input is a GOP driver or a VBT',
  'itself (E_INPUT_IS_GOP, E_INPUT_IS_VBT: give it to --gop or --vbt as it is).',
].join('\n');

function writeError(file: string, error: unknown): OvmfBuildError {
  return new OvmfBuildError(
    'E_ARTIFACT_WRITE_FAILED',
    `cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`,
    { path: file },
    { cause: error },
  );
}

async function exists(target: string): Promise<boolean> {
  try {
    await lstat(target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Publishes `files` (name -> bytes) into `outDir` as one step: every file is written and
 * fsynced in a staging directory first, so a failed write changes nothing. A missing `outDir`
 * is the staging directory renamed into place (atomic). An existing one gets the files moved
 * in after the names they replace and any stale output names (OUTPUT_NAME) are moved aside; a
 * failed move puts everything back. Returns the stale names removed.
 */
export async function publish(
  outDir: string,
  files: ReadonlyMap<string, Uint8Array>,
  /** The rename used for the moves (a parameter so a test can make one fail half-way). */
  renameFile: (from: string, to: string) => Promise<void> = rename,
): Promise<string[]> {
  const parent = path.dirname(outDir);
  let info;
  try {
    // stat, not lstat: --out may be a symlink to a directory; the names inside are lstat'ed.
    info = await stat(outDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw writeError(outDir, error);
    info = null;
  }
  if (info === null) {
    try {
      await mkdir(parent, { recursive: true });
    } catch (error) {
      throw writeError(outDir, error);
    }
    // Taken here, not imported: loading extract should not load node:crypto (about 2 ms of a
    // cold run), which only a run that writes or hashes a part needs.
    const suffix = process.getBuiltinModule('node:crypto').randomBytes(6).toString('hex');
    const staging = path.join(parent, `.${path.basename(outDir)}.extract-${suffix}`);
    try {
      await mkdir(staging, { mode: 0o755 });
      for (const [name, bytes] of files) await writeFileSynced(path.join(staging, name), bytes);
      await fsyncPath(staging);
      await renameFile(staging, outDir);
      await fsyncPath(parent);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw writeError(outDir, error);
    }
    return [];
  }
  if (!info.isDirectory()) {
    throw new OvmfBuildError('E_ARTIFACT_WRITE_FAILED', `--out ${outDir} exists and is not a directory`, {
      path: outDir,
    });
  }
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch (error) {
    throw writeError(outDir, error);
  }
  const stale = entries.filter((name) => OUTPUT_NAME.test(name) && !files.has(name)).sort();
  // Everything that will be replaced or removed must be a plain file: a directory named
  // Vbt.bin would make the second move fail after the first succeeded.
  for (const name of [...files.keys(), ...stale]) {
    const target = path.join(outDir, name);
    let kind;
    try {
      kind = await lstat(target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw writeError(target, error);
    }
    if (!kind.isFile()) {
      throw new OvmfBuildError(
        'E_ARTIFACT_WRITE_FAILED',
        `cannot replace ${target}: it is not a regular file; nothing was written`,
        { path: target },
      );
    }
  }
  let staging: string;
  try {
    staging = await mkdtemp(path.join(outDir, '.extract-'));
  } catch (error) {
    throw writeError(outDir, error);
  }
  const aside = path.join(staging, 'replaced');
  const movedAside: string[] = [];
  const movedIn: string[] = [];
  try {
    for (const [name, bytes] of files) await writeFileSynced(path.join(staging, name), bytes);
    await mkdir(aside);
    for (const name of [...files.keys(), ...stale]) {
      if (!(await exists(path.join(outDir, name)))) continue;
      await renameFile(path.join(outDir, name), path.join(aside, name));
      movedAside.push(name);
    }
    for (const name of files.keys()) {
      await renameFile(path.join(staging, name), path.join(outDir, name));
      movedIn.push(name);
    }
    await fsyncPath(outDir);
  } catch (error) {
    // Put the directory back as it was: new files out, replaced ones in.
    for (const name of movedIn) {
      await rename(path.join(outDir, name), path.join(staging, name)).catch(() => undefined);
    }
    for (const name of movedAside) {
      await rename(path.join(aside, name), path.join(outDir, name)).catch(() => undefined);
    }
    await rm(staging, { recursive: true, force: true });
    throw writeError(outDir, error);
  }
  await rm(staging, { recursive: true, force: true });
  return stale;
}

function vbtJson(
  v: { body: Uint8Array; info: VbtInfo },
  where: Record<string, unknown>,
  filePath: string,
): Record<string, unknown> {
  return {
    sha256: sha256(v.body),
    size: v.body.length,
    ...where,
    signature: v.info.signature,
    bdbVersion: v.info.bdbVersion,
    vbtSize: v.info.vbtSize,
    vbtSha256: v.info.sha256,
    checksumValid: v.info.checksum.valid,
    path: filePath,
  };
}

function locatedVbtWhere(v: LocatedVbt): Record<string, unknown> {
  return { guid: v.guid, uiName: v.uiName, section: v.sectionType, imagePath: v.path, offset: v.offset };
}

function readInput(file: string, ctx: CommandContext): Promise<Uint8Array> {
  return readInputFile(path.resolve(ctx.cwd, file), { what: 'image', signal: ctx.signal });
}

/** What one image yields, whatever its kind: the files to publish and the JSON to print. */
interface Extraction {
  readonly files: Map<string, Uint8Array>;
  readonly gop: Record<string, unknown> | null;
  readonly gopLine: string | null;
  readonly vbt: Record<string, unknown> | null;
  readonly others: Record<string, unknown>[];
  readonly missing: (NotFoundError | FormatError)[];
  readonly extra: Record<string, unknown>;
  readonly notes: string[];
}

function fromOptionRom(rom: RomExtraction, outDir: string, input: string): Extraction {
  const files = new Map<string, Uint8Array>();
  let gop: Record<string, unknown> | null = null;
  let gopLine: string | null = null;
  if (rom.gop !== null) {
    const gopPath = path.join(outDir, GOP_FILE);
    files.set(GOP_FILE, rom.gop.body);
    gop = {
      sha256: rom.gop.info.sha256,
      size: rom.gop.body.length,
      guid: null,
      build: rom.gop.info.build,
      uiName: null,
      machine: rom.gop.info.pe.machineName,
      imagePath: `option ROM image ${rom.gop.index}`,
      offset: rom.gop.image.offset,
      compressed: rom.gop.image.efi?.compressed ?? false,
      path: gopPath,
    };
    gopLine = `GOP  ${gopPath}  option ROM image ${rom.gop.index} at ${hex(rom.gop.image.offset)}${gop['compressed'] === true ? ' (EFI-compressed)' : ''} build ${rom.gop.info.build ?? 'unknown'}  ${rom.gop.body.length} bytes  sha256 ${rom.gop.info.sha256}`;
  }
  let vbt: Record<string, unknown> | null = null;
  if (rom.vbt !== null) {
    const vbtPath = path.join(outDir, VBT_FILE);
    files.set(VBT_FILE, rom.vbt.body);
    vbt = vbtJson(
      rom.vbt,
      {
        guid: null,
        uiName: null,
        section: 'legacy-vbios',
        imagePath: `option ROM image ${rom.vbt.index}`,
        offset: rom.vbt.offset,
      },
      vbtPath,
    );
  }
  const listing = rom.images
    .map(
      (i) =>
        `image ${i.index} (${i.codeType}${i.compressed ? ', compressed' : ''}): ${i.role === 'other' ? (i.reason ?? 'other') : i.role}`,
    )
    .join('; ');
  const missing: (NotFoundError | FormatError)[] = [];
  if (rom.gop === null) {
    const problem = rom.problems[0];
    missing.push(
      problem !== undefined
        ? new FormatError(
            'E_INPUT_CORRUPT',
            `the option ROM is corrupt, so it cannot be said whether it holds an Intel GOP driver: image ${problem.index} at ${hex(problem.offset)}: ${problem.message} [${problem.code}]`,
            {
              path: input,
              offset: problem.offset,
              index: problem.index,
              damageCode: problem.code,
              images: rom.images,
            },
          )
        : new NotFoundError(
            'E_GOP_NOT_FOUND',
            `this option ROM holds no Intel GOP driver: ${rom.images.length} image(s), ${listing}`,
            { path: input, images: rom.images },
          ),
    );
  }
  if (rom.vbt === null) {
    missing.push(
      new NotFoundError(
        'E_VBT_NOT_FOUND',
        `this option ROM holds no VBT (only a legacy VBIOS image carries one): ${listing}`,
        { path: input, images: rom.images },
      ),
    );
  }
  return {
    files,
    gop,
    gopLine,
    vbt,
    others: [],
    missing,
    extra: {
      otherGops: rom.otherGops.map((g) => ({
        sha256: g.info.sha256,
        size: g.body.length,
        build: g.info.build,
        imagePath: `option ROM image ${g.index}`,
      })),
      notGop: [],
      optionRom: { images: rom.images, sizeInBytes: rom.rom.sizeInBytes },
      problems: rom.problems,
    },
    notes: [],
  };
}

export const command = defineCommand({
  name: 'extract',
  summary: 'take the GOP driver and VBT out of a firmware image or option ROM',
  usage: USAGE,
  options: { out: { type: 'string', short: 'o' }, json: { type: 'boolean' } },
  async run(ctx, { values, positionals }) {
    const [input, ...extra] = positionals;
    if (input === undefined || extra.length > 0 || values.out === undefined || values.out === '') {
      throw new UsageError(`expected one <image> and --out <dir>\n${USAGE}`);
    }
    const outDir = path.resolve(ctx.cwd, values.out);
    // A --out that is a file, runs through one or cannot be written is a usage error (exit 2,
    // as for every command that writes a directory), found while the image is read.
    const checking = checkOutputDirectory(outDir);
    // The parser (and its native LZMA decoder) loads while the image is read.
    const reading = readInput(input, ctx);
    // Handled by the awaits below; this keeps an early failure from counting as unhandled meanwhile.
    checking.catch(() => undefined);
    reading.catch(() => undefined);
    const [
      { parseFirmware },
      { gopNotFoundError, locateGopAndVbt, vbtNotFoundError },
      { detectFileKind },
      { classifyGopDriver },
      { extractFromOptionRom },
      { parseVbt },
      { openPackage, chainText, packageWithoutGop, imageChain },
      { describeSteps },
    ] = await Promise.all([
      import('../../formats/firmware-tree.js'),
      import('../../formats/locate.js'),
      import('../../formats/detect.js'),
      import('../../formats/gop.js'),
      import('../../formats/option-rom-extract.js'),
      import('../../formats/vbt.js'),
      import('../../vendor/open-package.js'),
      import('../../vendor/unpack-package.js'),
    ]);
    const inputPath = path.resolve(ctx.cwd, input);
    await checking;
    const downloaded = await reading;
    const downloadedKind = detectFileKind(downloaded);
    if (ctx.moveToWorker !== undefined) {
      if (downloaded.length > MAIN_THREAD_MAX_INPUT_BYTES) ctx.moveToWorker('a large input');
      if (!MAIN_THREAD_KINDS.has(downloadedKind)) ctx.moveToWorker(`an input of kind ${downloadedKind}`);
    }
    // A vendor package is unpacked outside-in; its firmware piece is then the image.
    const pkg = await openPackage(downloaded, { name: input, signal: ctx.signal });
    const bytes = pkg?.leaf.bytes ?? downloaded;
    const kind = pkg === null ? downloadedKind : detectFileKind(bytes);

    let extraction: Extraction;
    /** Layers inside the image down to the GOP, e.g. ["FV", "LZMA", "FV", "GOP"] (--json "chain"). */
    let imageLayers: string[] | null = null;
    if (kind === 'pe') {
      // A GOP on its own has nothing to extract: say what it is and what to do with it. Other
      // PE files go on to the image parser (a vendor updater can carry the volumes inside).
      const gop = classifyGopDriver(bytes);
      if (gop.isGop) {
        throw new FormatError(
          'E_INPUT_IS_GOP',
          `${inputPath} is an Intel GOP driver itself (build ${gop.info.build ?? 'unknown'}, ${bytes.length} bytes, sha256 ${gop.info.sha256}), not a firmware image: there is nothing to extract; give it to --gop as it is`,
          {
            path: inputPath,
            kind: 'gop',
            build: gop.info.build,
            sha256: gop.info.sha256,
            sizeInBytes: bytes.length,
          },
        );
      }
    }
    if (kind === 'vbt') {
      let signature = 'a VBT';
      try {
        signature = `a VBT (${parseVbt(bytes).signature})`;
      } catch {
        // Described as a VBT by its signature; its own check runs when it is given to --vbt.
      }
      throw new FormatError(
        'E_INPUT_IS_VBT',
        `${inputPath} is ${signature} itself, not a firmware image: there is nothing to extract; give it to --vbt as it is`,
        { path: inputPath, kind: 'vbt', sha256: sha256(bytes) },
      );
    }
    if (kind === 'option-rom') {
      extraction = fromOptionRom(extractFromOptionRom(bytes, { signal: ctx.signal }), outDir, inputPath);
      if (extraction.gop !== null) imageLayers = ['option ROM', 'GOP'];
      const corrupt = extraction.missing.find((e) => e.code === 'E_INPUT_CORRUPT');
      if (corrupt !== undefined) throw corrupt;
    } else {
      // Extraction needs no file data checksums or PE summaries: skip both passes.
      let tree: ReturnType<typeof parseFirmware>;
      try {
        tree = parseFirmware(bytes, { verifyChecksums: false, summarizePe: false, signal: ctx.signal });
      } catch (error) {
        if (kind === 'pe' && error instanceof FormatError && error.code === 'E_NOT_FIRMWARE') {
          const gop = classifyGopDriver(bytes);
          throw new FormatError(
            'E_NOT_FIRMWARE',
            `${inputPath} is a PE/COFF image with no firmware volume inside, not an Intel GOP driver: ${gop.isGop ? '' : gop.reason}`,
            { ...error.details, path: inputPath, kind: 'pe' },
          );
        }
        throw error;
      }
      const result = locateGopAndVbt(tree);
      // Damage where the missing part could be: "corrupt", never "absent", and nothing written.
      if (result.gop === null && result.damage.length > 0) throw gopNotFoundError(result);
      if (result.vbt === null && result.damage.length > 0) throw vbtNotFoundError(result);
      const files = new Map<string, Uint8Array>();
      let gop: Record<string, unknown> | null = null;
      let gopLine: string | null = null;
      if (result.gop !== null) {
        imageLayers = [...imageChain(result.gop.section), 'GOP'];
        const gopPath = path.join(outDir, GOP_FILE);
        files.set(GOP_FILE, result.gop.body);
        gop = {
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
        gopLine = `GOP  ${gopPath}  ${result.gop.uiName ?? result.gop.guid} build ${result.gop.info.build ?? 'unknown'}  ${result.gop.body.length} bytes  sha256 ${result.gop.info.sha256}`;
      }
      let vbt: Record<string, unknown> | null = null;
      const others: Record<string, unknown>[] = [];
      for (const [index, v] of result.vbts.entries()) {
        const name = index === 0 ? VBT_FILE : `Vbt.${v.guid}.bin`;
        files.set(name, v.body);
        const json = vbtJson(v, locatedVbtWhere(v), path.join(outDir, name));
        if (index === 0) vbt = json;
        else others.push(json);
      }
      const missing: (NotFoundError | FormatError)[] = [];
      if (result.gop === null) missing.push(gopNotFoundError(result));
      if (result.vbt === null) missing.push(vbtNotFoundError(result));
      extraction = {
        files,
        gop,
        gopLine,
        vbt,
        others,
        missing,
        extra: {
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
        },
        notes:
          tree.problems.length > 0
            ? [
                `${tree.problems.length} part(s) of the image could not be parsed; first: ${tree.problems[0]?.message}`,
              ]
            : [],
      };
    }

    const { files, missing } = extraction;
    if (files.size === 0) {
      // Neither part: nothing is published and --out is left as it was.
      const first = missing[0] as NotFoundError | FormatError;
      throw pkg !== null && first instanceof NotFoundError
        ? packageWithoutGop(input, pkg, first.message)
        : first;
    }
    // A signal answered only after the parse (on the main thread, see run.ts) still writes nothing.
    throwIfAborted(ctx.signal);
    const removed = await publish(outDir, files);
    const removedNotes = removed.map(
      (name) =>
        `removed ${path.join(outDir, name)} (from an earlier extract): this ${kind === 'option-rom' ? 'option ROM' : 'image'} has no ${name === GOP_FILE ? 'GOP driver' : name === VBT_FILE ? 'VBT' : `VBT ${name.slice(4, -4)}`}`,
    );

    if (values.json === true) {
      writeJson(ctx.stdout, {
        ...(pkg === null
          ? {}
          : { package: { chain: pkg.chain, entry: describeSteps(pkg.leaf.steps), pieces: pkg.pieces } }),
        gop: extraction.gop,
        vbt: extraction.vbt,
        others: extraction.others,
        ...extraction.extra,
        chain: pkg?.chain ?? imageLayers,
        removed: removed.map((name) => path.join(outDir, name)),
        missing: missing.map((e) => ({ code: e.code, message: e.message })),
      });
    } else {
      if (pkg !== null) writeLine(ctx.stdout, `chain  ${chainText(pkg)}  (${describeSteps(pkg.leaf.steps)})`);
      if (extraction.gopLine !== null) writeLine(ctx.stdout, extraction.gopLine);
      for (const v of [extraction.vbt, ...extraction.others]) {
        if (v === null) continue;
        writeLine(
          ctx.stdout,
          `VBT  ${String(v['path'])}  ${String(v['signature'])} (BDB ${String(v['bdbVersion'])})  ${String(v['size'])} bytes  sha256 ${String(v['sha256'])}`,
        );
      }
      for (const note of extraction.notes) writeLine(ctx.stderr, `ovmf-build: note: ${note}`);
    }
    for (const note of removedNotes) writeLine(ctx.stderr, `ovmf-build: note: ${note}`);
    for (const error of missing) writeLine(ctx.stderr, `ovmf-build: ${error.message} [${error.code}]`);
    if (extraction.gop === null) return EXIT.gopNotFound;
    if (extraction.vbt === null) return EXIT.vbtNotFound;
    return EXIT.ok;
  },
});
