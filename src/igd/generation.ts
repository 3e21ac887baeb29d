// Which iGPU generation a GOP driver and a VBT were made for, as far as their bytes tell,
// and whether they contradict the device the user names with --device. Both are weak
// witnesses: GOP drivers carry no platform name (all but one in the corpus say "Intel(R)
// Graphics Controller") and VBT signatures lie (Kaby/Coffee/Comet Lake VBTs say SKYLAKE,
// Broadwell says HASWELL, an Alder Lake-S board says TIGERLAKE). So both map to a *set* of
// graphics generations and only a device outside that set is reported. Pure, no I/O.
import type { GopDriverInfo } from '../formats/gop.js';
import type { VbtInfo } from '../formats/vbt.js';
import type { IgdPlatform } from './device-table.js';

/** A GOP family: the graphics major versions (i915 numbering, integer part) it drives. */
export interface GopFamily {
  /** Short name for artifact names: `hsw-bdw`, `gen9`, `gen12`. */
  readonly key: string;
  readonly description: string;
  readonly graphicsMajors: readonly number[];
  /** The GOP major version read from the driver ("5", "9", "17", "21"), or null when inferred from the build. */
  readonly gopMajor: string | null;
}

/**
 * Intel GOP major versions per platform family, as the drivers in the corpus and their
 * sources (MrChromebox/blobs soc/intel/*, Dasharo, anbeen intel6-14rom) show: 5.x Haswell and
 * Broadwell, 9.x Skylake to Comet Lake, 17.x Tiger Lake/Rocket Lake/Alder Lake-S/Raptor
 * Lake-S desktop, 21.x Alder Lake-P/N and Raptor Lake-P.
 */
const GOP_MAJORS: Readonly<Record<string, Omit<GopFamily, 'gopMajor'>>> = {
  '5': { key: 'hsw-bdw', description: 'Haswell/Broadwell (GOP 5.x)', graphicsMajors: [7, 8] },
  '9': { key: 'gen9', description: 'Skylake to Comet Lake (GOP 9.x)', graphicsMajors: [9] },
  '17': { key: 'gen12', description: 'Tiger Lake to Raptor Lake-S (GOP 17.x)', graphicsMajors: [11, 12] },
  '21': { key: 'gen12', description: 'Alder Lake-P/N, Raptor Lake-P (GOP 21.x)', graphicsMajors: [12] },
};

/**
 * Builds 1080..1109 without a stored major version are the Gen9 drivers (corpus: Skylake 1080,
 * Coffee Lake 1084, Kaby Lake 1096, Comet Lake 1107 and 1109).
 */
const GEN9_BUILDS_WITHOUT_MAJOR = { min: 1080, max: 1109 };

/** The GOP's family, or null when its digits do not say (then nothing is inferred). */
export function gopFamily(gop: Pick<GopDriverInfo, 'build' | 'digitFields'>): GopFamily | null {
  const fields = gop.digitFields;
  const buildAt = fields.findIndex((f) => f.length >= 4);
  // Older drivers store major, minor, build ("5", "0", "1025"); newer ones the build, then
  // the major ("1066", "21"); a driver whose build slot holds one digit ("6", "21") is new.
  const major = buildAt > 0 ? fields[0] : fields.length >= 2 ? fields[1] : undefined;
  if (major !== undefined && GOP_MAJORS[major] !== undefined) {
    return { ...(GOP_MAJORS[major] as Omit<GopFamily, 'gopMajor'>), gopMajor: major };
  }
  const build = gop.build === null ? Number.NaN : Number(gop.build);
  if (
    fields.length === 1 &&
    build >= GEN9_BUILDS_WITHOUT_MAJOR.min &&
    build <= GEN9_BUILDS_WITHOUT_MAJOR.max
  ) {
    return { ...(GOP_MAJORS['9'] as Omit<GopFamily, 'gopMajor'>), gopMajor: null };
  }
  return null;
}

/**
 * Graphics majors a VBT may belong to. By signature, widened where the corpus shows signatures
 * that lie; by BDB version when the signature is unknown (HSW 169-189, Gen9 200-228, Gen11+ 235+:
 * Linux drivers/gpu/drm/i915/display/intel_vbt_defs.h block-version notes). Null when neither tells.
 */
export function vbtGraphicsMajors(vbt: Pick<VbtInfo, 'signature' | 'bdbVersion'>): readonly number[] | null {
  const name = vbt.signature
    .replace(/^\$VBT\s*/u, '')
    .trim()
    .toUpperCase();
  const bySignature: ReadonlyArray<readonly [RegExp, readonly number[]]> = [
    [/^(SNB|SANDYBRIDGE|IVB|IVYBRIDGE)/u, [6, 7]],
    [/^(HASWELL|BROADWELL|VALLEYVIEW|CHERRYVIEW|BRASWELL)/u, [7, 8]],
    // SKYLAKE: also Kaby, Coffee, Comet Lake; COFFEELAKE: also Comet Lake.
    [/^(SKYLAKE|KABYLAKE|COFFEELAKE|COMETLAKE|WHISKEYLAKE|BROXTON|APOLLOLAKE|GEMINILAKE)/u, [9]],
    [/^(ICELAKE|JASPERLAKE|ELKHARTLAKE)/u, [11]],
    // TIGERLAKE: also Alder Lake-S and Rocket Lake boards.
    [/^(TIGERLAKE|ROCKETLAKE|ALDERLAKE|RAPTORLAKE|METEORLAKE|ARROWLAKE)/u, [11, 12]],
    [/^LUNARLAKE/u, [20]],
  ];
  for (const [pattern, majors] of bySignature) if (pattern.test(name)) return majors;
  if (vbt.bdbVersion >= 165 && vbt.bdbVersion <= 195) return [7, 8];
  if (vbt.bdbVersion >= 196 && vbt.bdbVersion <= 230) return [9];
  if (vbt.bdbVersion >= 235) return [11, 12, 20, 30];
  return null;
}

/** The integer part of an i915 graphics version: "9.5" -> 9, "12.70" -> 12. */
export function graphicsMajor(platform: Pick<IgdPlatform, 'graphicsVersion'>): number {
  return Number.parseInt(platform.graphicsVersion, 10);
}

/**
 * Contradictions between the device, the GOP and the VBT: one line each, empty when they
 * agree or when a witness cannot tell. Only a generation outside what a witness can mean is
 * reported (a Gen12 device with a Haswell GOP), never a mere codename mismatch.
 */
export function generationWarnings(inputs: {
  readonly deviceId: string;
  readonly platform: IgdPlatform | undefined;
  readonly gop: Pick<GopDriverInfo, 'build' | 'digitFields'>;
  readonly vbt: Pick<VbtInfo, 'signature' | 'bdbVersion'>;
}): string[] {
  const warnings: string[] = [];
  const { platform } = inputs;
  const family = gopFamily(inputs.gop);
  const vbtMajors = vbtGraphicsMajors(inputs.vbt);
  if (platform === undefined) {
    warnings.push(
      `device 8086:${inputs.deviceId} is not in the IGD device table (containers/igd-devices.json): not an Intel iGPU the table knows, so IgdAssignmentDxe will not handle it`,
    );
  } else {
    const major = graphicsMajor(platform);
    const device = `device 8086:${inputs.deviceId} is ${platform.name} (graphics ${platform.graphicsVersion})`;
    if (family !== null && !family.graphicsMajors.includes(major)) {
      warnings.push(`${device} but the GOP driver is for ${family.description}`);
    }
    if (vbtMajors !== null && !vbtMajors.includes(major)) {
      warnings.push(
        `${device} but the VBT ("${inputs.vbt.signature}", BDB ${inputs.vbt.bdbVersion}) is for graphics ${vbtMajors.join('/')}`,
      );
    }
  }
  if (family !== null && vbtMajors !== null && !family.graphicsMajors.some((m) => vbtMajors.includes(m))) {
    warnings.push(
      `the GOP driver is for ${family.description} but the VBT ("${inputs.vbt.signature}", BDB ${inputs.vbt.bdbVersion}) is for graphics ${vbtMajors.join('/')}`,
    );
  }
  return warnings;
}
