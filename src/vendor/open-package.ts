// The one entry point `extract` and `--firmware` share: is the input a vendor package, and if
// so, which piece of it holds the firmware and by which chain. A plain firmware image (or
// anything that is no package) returns null, so its handling and errors stay as they were.
import { NotFoundError } from '../core/errors.js';
import { choosePackagePiece, type PackageChoice } from './find-gop.js';
import { unpackPackage, type UnpackPackageOptions } from './unpack-package.js';

export type { PackageChoice } from './find-gop.js';
export { imageChain } from './find-gop.js';

/** The piece to extract from and the chain, or null when `bytes` is not a package. */
export async function openPackage(
  bytes: Uint8Array,
  options: UnpackPackageOptions,
): Promise<PackageChoice | null> {
  const unpacked = await unpackPackage(bytes, options);
  if (unpacked.layers === 0) return null;
  return choosePackagePiece(unpacked, options.name, options.signal);
}

/** "zip > FV > LZMA > GOP", or "cab > UEFI image" when the chosen piece has no GOP. */
export function chainText(choice: PackageChoice): string {
  return choice.chain.join(' > ');
}

/** E_PACKAGE_NO_GOP for a package whose firmware piece has no GOP: the chain and why. */
export function packageWithoutGop(name: string, choice: PackageChoice, why: string): NotFoundError {
  return new NotFoundError(
    'E_PACKAGE_NO_GOP',
    `${name} holds no Intel GOP driver: unpacked ${chainText(choice)}; ${why}`,
    {
      path: name,
      chain: choice.chain,
      pieces: choice.pieces,
    },
  );
}
