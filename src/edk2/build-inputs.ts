// Everything a build container gets besides the EDK2 tree: our overlay package, the user's
// GOP and VBT, the patched DSC/FDF and the script, staged under /ovmf-build/input. Shared
// by the job, a warm rebuild and the benchmark's by-hand baseline, so all three run the same.
import type { InputFile } from '../container/index.js';
import { sha256 } from '../core/digest.js';
import { buildScript, SCRIPT_PATH, STAGED_INPUTS, type BuildPath } from './build-script.js';
import type { BuildFlags } from './flags.js';
import { DSC_PATH, FDF_PATH, GOP_EFI, VBT_BIN } from './layout.js';
import { loadOverlay } from './overlay.js';
import type { PlatformPatchOptions } from './platform-patch.js';
import { patchPlatform, shellNeedsSecureBootVariableLib } from './platform-patch.js';
import { readPlatformFiles } from './source.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface PrepareBuildOptions {
  readonly gop: Uint8Array;
  readonly vbt: Uint8Array;
  /** The unpacked EDK2 tree (read only: the DSC/FDF are read, patched and shipped). */
  readonly sourceDir: string;
  readonly flags: BuildFlags;
  /** Which script the container runs (build-script.ts). */
  readonly mode: BuildPath;
  /** @default containers/edk2-overlay of this package */
  readonly overlayDir?: string;
  readonly patch?: PlatformPatchOptions;
  /**
   * Replaces overlay files by workspace path. Test-only (e.g. a C file with a syntax error).
   * @default {}
   */
  readonly replaceOverlayFiles?: Readonly<Record<string, string>>;
  /** @default 2 */
  readonly jobs?: number;
}

export interface PreparedBuild {
  /** Files to place in the container (absolute paths), the script last. */
  readonly files: readonly InputFile[];
  readonly script: string;
  /** Digest of the overlay as shipped in `files` (after any test replacement). */
  readonly overlayDigest: string;
  /** Digest of the overlay package as installed, ignoring test replacements (warm-workspace key). */
  readonly packageOverlayDigest: string;
  /** Digest of the patched DSC and FDF. */
  readonly platformDigest: string;
}

const encoder = new TextEncoder();
const SHELL_INF = 'ShellPkg/Application/Shell/Shell.inf';

export async function prepareBuildInputs(options: PrepareBuildOptions): Promise<PreparedBuild> {
  const overlay = await loadOverlay(options.overlayDir);
  const replacements = options.replaceOverlayFiles ?? {};
  const known = new Set(overlay.files.map((file) => file.path));
  for (const file of Object.keys(replacements)) {
    if (!known.has(file))
      throw new TypeError(`Expected \`replaceOverlayFiles\` to name overlay files, got \`${file}\``);
  }
  const overlayFiles = overlay.files.map((file) => {
    const replacement = replacements[file.path];
    return replacement === undefined ? file : { path: file.path, data: encoder.encode(replacement) };
  });
  const overlayDigest =
    Object.keys(replacements).length === 0
      ? overlay.digest
      : sha256(overlayFiles.map((file) => `${file.path}\0${sha256(file.data)}\n`).join(''));
  const shellInf = await readFile(path.join(options.sourceDir, SHELL_INF), 'utf8').catch(() => '');
  const platform = patchPlatform(await readPlatformFiles(options.sourceDir), {
    secureBootLibsForShell: shellNeedsSecureBootVariableLib(shellInf),
    ...options.patch,
  });
  const script = buildScript({
    flags: options.flags,
    mode: options.mode,
    ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
  });
  const staged = (workspacePath: string, data: Uint8Array): InputFile => ({
    path: `${STAGED_INPUTS}/${workspacePath}`,
    data,
  });
  return {
    files: [
      ...overlayFiles.map((file) => staged(file.path, file.data)),
      staged(GOP_EFI, options.gop),
      staged(VBT_BIN, options.vbt),
      staged(DSC_PATH, encoder.encode(platform.dsc)),
      staged(FDF_PATH, encoder.encode(platform.fdf)),
      { path: SCRIPT_PATH, data: encoder.encode(script), mode: 0o755 },
    ],
    script,
    overlayDigest,
    packageOverlayDigest: overlay.digest,
    platformDigest: sha256(`${sha256(platform.dsc)}\n${sha256(platform.fdf)}\n`),
  };
}
