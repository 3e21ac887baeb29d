// Which path a build takes (clean, warm or variant), decided from what each input feeds. The
// warm-workspace key (build.ts workspaceKey) holds everything that is compiled: the EDK2 source,
// our overlay with the generated IgdDeviceTable.h, the patched DSC/FDF, the builder image and the
// flags. The GOP .efi (a binary module's [Binaries] file) and the VBT (a FILE FREEFORM's RAW
// section) are only packaged, in the IGD volume. So a workspace with the same key, given inputs
// whose compiled parts equal the key's, needs only that volume made again (build-script.ts
// igdVolumeCommands); anything else compiled differently (a stand-in overlay or platform patch)
// needs `build` to run again.
import type { BuildPath } from './build-script.js';

export interface BuildPathInput {
  /** A committed workspace with this build's key exists and may be reused. */
  readonly workspaceExists: boolean;
  /** The caller allows the variant path (BuildOvmfOptions.workspace.variant). */
  readonly allowVariant: boolean;
  /** The overlay and platform digests the workspace was compiled from (its key). */
  readonly workspace: { readonly overlayDigest: string; readonly platformDigest: string };
  /** The digests of the inputs this build ships (after any stand-in preparation). */
  readonly shipped: { readonly overlayDigest: string; readonly platformDigest: string };
}

export function chooseBuildPath(input: BuildPathInput): BuildPath {
  if (!input.workspaceExists) return 'clean';
  const compiledSame =
    input.shipped.overlayDigest === input.workspace.overlayDigest &&
    input.shipped.platformDigest === input.workspace.platformDigest;
  return input.allowVariant && compiledSame ? 'variant' : 'warm';
}
