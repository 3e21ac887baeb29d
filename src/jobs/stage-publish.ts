// The job's publish stage: the cached (verified) files as a signed, checksummed artifact
// version directory, or the version already published for this key. The manifest records
// every input, the environment, the key and the checks that verified the firmware.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { userConfigDir } from '../cache/paths.js';
import type { CacheKey } from '../cache/index.js';
import { sha256 } from '../core/digest.js';
import { OvmfBuildError } from '../core/errors.js';
import { igdWiring } from '../igd/device-table.js';
import { gopFamily } from '../igd/generation.js';
import {
  DEFAULT_ROM_FILE,
  findPublished,
  publishArtifact,
  type PublishedArtifact,
} from '../publish/index.js';
import type { IgdVerification } from '../verify/igd-modes.js';
import type { BuildEnvironment, JobRequest, ResolvedInputs } from './job-types.js';
import { CODE_ENTRY_FILE, ROM_ENTRY_FILE, VARS_ENTRY_FILE } from './stage-cache.js';
import type { StageContext } from './stage.js';

/** `facts.igd` of a cache entry's build: the IGD checks that verified it. */
export function igdOf(meta: Readonly<Record<string, unknown>>): IgdVerification | null {
  const facts = meta['facts'] as { igd?: IgdVerification } | undefined;
  return facts?.igd ?? null;
}

export interface PublishInput {
  readonly request: JobRequest;
  readonly inputs: ResolvedInputs;
  readonly key: CacheKey;
  readonly environment: BuildEnvironment;
  /** The cache entry's creation time, files and meta. */
  readonly builtAt: string;
  readonly files: ReadonlyMap<string, Uint8Array>;
  readonly meta: Readonly<Record<string, unknown>>;
}

/** Stage `publish`. */
export async function publish(input: PublishInput, context: StageContext): Promise<PublishedArtifact> {
  context.emit({ type: 'phase', phase: 'publish', message: 'publishing the artifact' });
  const { request, inputs, key, environment, files, meta, builtAt } = input;
  const name = inputs.name;
  const configDir = userConfigDir(request.env);
  const keyPem = await readFile(path.join(configDir, 'signing-key.pub'), 'utf8').catch(() => undefined);
  const existing = await findPublished(
    request.storeDir,
    name,
    key.value,
    keyPem === undefined ? {} : { publicKeyPem: keyPem },
  );
  if (existing !== null) return existing;
  const code = files.get(CODE_ENTRY_FILE);
  const vars = files.get(VARS_ENTRY_FILE);
  const rom = files.get(ROM_ENTRY_FILE);
  if (code === undefined || vars === undefined || rom === undefined) {
    throw new OvmfBuildError(
      'E_CACHE_ENTRY_INCOMPLETE',
      `cache entry ${key.value} lacks a firmware or ROM file`,
      {
        key: key.value,
      },
    );
  }
  // Which delivery modes the published files serve: embedded (our OVMF does everything) always;
  // ROM mode (the ROM alone makes a stock OVMF do IGD assignment) when the ROM carries the helpers.
  const { classifyRomChain } = await import('../formats/rom-chain.js');
  const romChain = classifyRomChain(rom);
  const romMode = romChain.hasIgdAssignment && romChain.hasGopPolicy && romChain.hasGop;
  const platform = inputs.device.platform;
  const wiring = platform === undefined ? undefined : igdWiring(platform);
  return publishArtifact({
    name,
    keyValue: key.value,
    files: { code, vars, rom },
    storeDir: request.storeDir,
    configDir,
    machine: request.machine,
    target: request.flags.target,
    secureBoot: request.flags.secureBoot,
    romMode,
    ...(platform === undefined || wiring === undefined
      ? {}
      : {
          igd: {
            deviceId: `8086:${inputs.device.deviceId ?? ''}`,
            platformName: platform.name,
            graphicsVersion: platform.graphicsVersion,
            legacyMode: wiring.legacyMode,
            minQemu: wiring.minQemu,
            bdsm: platform.bdsm,
          },
        }),
    manifest: {
      formatVersion: 1,
      deliveryModes: {
        embedded: {
          files: [CODE_ENTRY_FILE, VARS_ENTRY_FILE],
          what: 'this OVMF carries the GOP, PlatformGopPolicyDxe (VBT from the host OpRegion, the built-in VBT only as fallback) and IgdAssignmentDxe',
        },
        rom: romMode
          ? {
              files: [DEFAULT_ROM_FILE],
              what: "the ROM alone makes a stock OVMF (Debian's or Proxmox's OVMF_CODE_4M.fd) do IGD assignment: fastest path when the VM's OVMF is stock",
              images: romChain.images.map((image) => image.role),
            }
          : {
              files: [],
              what: 'not available: the ROM carries no IGD assignment and GOP policy images',
              images: romChain.images.map((image) => image.role),
            },
      },
      tool: { name: 'ovmf-build', version: request.toolVersion },
      builtAt,
      inputs: {
        gop: {
          sha256: inputs.gop.sha256,
          sizeInBytes: inputs.gop.bytes.length,
          origin: inputs.gop.origin,
          build: inputs.gop.info.build,
          buildNote: inputs.gop.info.buildNote,
          controllerName: inputs.gop.info.controllerName,
        },
        vbt: {
          sha256: inputs.vbt.sha256,
          sizeInBytes: inputs.vbt.bytes.length,
          origin: inputs.vbt.origin,
          signature: inputs.vbt.info.signature,
          version: inputs.vbt.info.version,
          bdbVersion: inputs.vbt.info.bdbVersion,
        },
        ...(inputs.firmware === null ? {} : { firmware: inputs.firmware }),
        rom: { sha256: sha256(rom), sizeInBytes: rom.length, source: inputs.rom.source },
        device:
          inputs.device.deviceId === null
            ? null
            : {
                id: `8086:${inputs.device.deviceId}`,
                platform:
                  inputs.device.platform === undefined
                    ? null
                    : {
                        key: inputs.device.platform.key,
                        name: inputs.device.platform.name,
                        graphicsVersion: inputs.device.platform.graphicsVersion,
                        bdsm: inputs.device.platform.bdsm,
                      },
              },
        gopFamily: gopFamily(inputs.gop.info)?.description ?? null,
        warnings: [...inputs.device.warnings, ...inputs.rom.warnings],
        ...(request.recipe === undefined ? {} : { recipe: request.recipe }),
      },
      edk2: {
        source: request.source,
        sourceDigest: environment.edk2SourceDigest,
        description: environment.edk2SourceDescription,
      },
      overlayDigest: environment.overlayDigest,
      builderImage: { id: environment.builderImageId, ref: environment.builderImageRef },
      flags: request.flags,
      machine: request.machine,
      cache: { key: key.value, details: key.details },
      igdChecks: igdOf(meta),
      build: meta,
    },
  });
}
