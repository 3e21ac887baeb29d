// The bytes a build container hands back, checked: the three flash images at the sizes the
// flags give, and the two helper drivers GenFds placed in the DXE volume (build.ts).
import { OUTPUT_FILES } from './build-script.js';
import type { BuildOvmfResult } from './build-types.js';
import { BuildError } from './errors.js';
import { expectedImageSizes, type BuildFlags } from './flags.js';
import { IGD_ASSIGNMENT_EFI, POLICY_EFI } from './layout.js';

function find(outputs: ReadonlyMap<string, Uint8Array>, name: string): Uint8Array | undefined {
  for (const [key, data] of outputs) {
    if (key === name || key.endsWith(`/${name}`)) return data;
  }
  return undefined;
}

/**
 * The helper drivers among a build's outputs. Throws E_BUILD_OUTPUT_INVALID when one is missing
 * or does not start with "MZ" (a PE image): anything else is not what GenFds put in the volume.
 */
export function helperDriversOf(outputs: ReadonlyMap<string, Uint8Array>): BuildOvmfResult['helperDrivers'] {
  const igdAssignment = find(outputs, IGD_ASSIGNMENT_EFI);
  const gopPolicy = find(outputs, POLICY_EFI);
  for (const [name, data] of [
    [IGD_ASSIGNMENT_EFI, igdAssignment],
    [POLICY_EFI, gopPolicy],
  ] as const) {
    if (data === undefined || data.length < 2 || data[0] !== 0x4d || data[1] !== 0x5a) {
      throw new BuildError(
        'E_BUILD_OUTPUT_INVALID',
        data === undefined ? `the build produced no ${name}` : `${name} is not a PE image`,
        { file: name, sizeInBytes: data?.length ?? null, outputs: [...outputs.keys()] },
      );
    }
  }
  return { igdAssignment: igdAssignment as Uint8Array, gopPolicy: gopPolicy as Uint8Array };
}

/**
 * The three images among a build's outputs, each of the size its flags give. Throws
 * E_BUILD_OUTPUT_INVALID when one is missing or has another size.
 */
export function imagesOf(
  outputs: ReadonlyMap<string, Uint8Array>,
  flags: BuildFlags,
): { readonly code: Uint8Array; readonly vars: Uint8Array; readonly combined: Uint8Array } {
  const sizes = expectedImageSizes(flags);
  const images: Record<(typeof OUTPUT_FILES)[number], Uint8Array | undefined> = {
    'OVMF_CODE.fd': find(outputs, 'OVMF_CODE.fd'),
    'OVMF_VARS.fd': find(outputs, 'OVMF_VARS.fd'),
    'OVMF.fd': find(outputs, 'OVMF.fd'),
  };
  const expected = {
    'OVMF_CODE.fd': sizes.codeSizeInBytes,
    'OVMF_VARS.fd': sizes.varsSizeInBytes,
    'OVMF.fd': sizes.combinedSizeInBytes,
  };
  for (const name of OUTPUT_FILES) {
    const data = images[name];
    if (data === undefined || data.length !== expected[name]) {
      throw new BuildError(
        'E_BUILD_OUTPUT_INVALID',
        data === undefined
          ? `the build produced no ${name}`
          : `${name} is ${data.length} bytes, expected ${expected[name]} for fdSize ${flags.fdSize}`,
        {
          file: name,
          sizeInBytes: data?.length ?? null,
          expectedSizeInBytes: expected[name],
          outputs: [...outputs.keys()],
        },
      );
    }
  }
  return {
    code: images['OVMF_CODE.fd'] as Uint8Array,
    vars: images['OVMF_VARS.fd'] as Uint8Array,
    combined: images['OVMF.fd'] as Uint8Array,
  };
}
