// Public API of ovmf-build, exported by name. Everything else is internal.
export {
  OvmfBuildError,
  FormatError,
  NotFoundError,
  UsageError,
  AbortError,
  InputError,
} from './core/errors.js';
export { ERROR_CODES, type ErrorCode, type ErrorCodeEntry } from './core/error-codes.js';
export { parseFirmware, parseFirmwareVolume, listFiles, walkNodes } from './formats/firmware-tree.js';
export {
  nodePath,
  type FirmwareTree,
  type FirmwareNode,
  type FileNode,
  type SectionNode,
  type VolumeNode,
  type FirmwareProblem,
} from './formats/firmware-node.js';
export { DEFAULT_LIMITS, type ParseOptions, type ParseLimits } from './formats/walk-context.js';
export {
  locateGopAndVbt,
  locateGop,
  locateVbt,
  type LocateResult,
  type LocatedGop,
  type LocatedVbt,
} from './formats/locate.js';
export { detectFileKind, type FileKind } from './formats/detect.js';
export {
  parseDellPfs,
  dellPfsPayloads,
  type DellPfsEntry,
  type DellPfsLimits,
  type DellPfsPayload,
  type DellPfsSection,
  type DellPfsVolume,
} from './formats/pfs.js';
export { renderTree, nodeToJson } from './formats/render-tree.js';
export {
  runPipeline,
  STAGES,
  type PipelineStages,
  type PipelineOptions,
  type PipelineEnd,
} from './jobs/pipeline.js';
export type {
  JobRequest,
  JobEvent,
  OvmfJobResult,
  KeyRunResult,
  VerifyRunResult,
  BuildEnvironment,
  BuiltFirmware,
  VerifiedFirmware,
} from './jobs/job-types.js';
export type { Stage, StageContext } from './jobs/stage.js';
export { JobSession } from './jobs/session.js';
export { BUILD_LOGIC_VERSION } from './jobs/stage-key.js';
export { createVerifyStage, checkBuild, type VerifyChecks } from './jobs/stage-verify.js';
export {
  loadRecipe,
  recipeInputs,
  type FirmwareRecipe,
  type GopVbtRecipe,
  type Recipe,
} from './jobs/recipe.js';
export {
  CacheStore,
  computeCacheKey,
  getOrBuild,
  CACHE_KEY_INPUTS,
  type CacheKey,
  type CacheKeyDetails,
  type MissExplanation,
} from './cache/index.js';
export {
  download,
  resolveInput,
  DownloadError,
  type DownloadOptions,
  type InputSpec,
} from './fetch/index.js';
export {
  publishArtifact,
  verifyArtifact,
  findPublished,
  loadOrCreateSigningKey,
  firmwareDescriptor,
  type PublishOptions,
  type PublishedArtifact,
} from './publish/index.js';
export { verifyBoot, type VerifyBootOptions, type BootVerification } from './verify/boot.js';
export { chooseAccelerator, type AccelMode, type AcceleratorChoice } from './verify/accel.js';
export { checkIgdAssignment, type IgdCheckOptions } from './verify/igd-check.js';
export { verifyBootAndIgdModes, type BootAndIgdRequest, type BootAndIgdResult } from './verify/boot-igd.js';
export { parseOpRegion, buildOpRegion } from './formats/opregion.js';
export {
  parseIgdDeviceTable,
  lookupDevice,
  stolenSizeFromGmch,
  type IgdDeviceTable,
  type IgdPlatform,
} from './igd/device-table.js';
export { loadIgdDeviceTable } from './igd/load.js';
export { writeMirrorIndex } from './mirror/make-index.js';
export type { MirrorIndexOptions, MirrorIndexResult } from './mirror/make-index.js';
export { syncMirror } from './mirror/sync.js';
export type { SyncOptions, SyncResult } from './mirror/sync.js';
export { pullArtifact } from './mirror/pull.js';
export type { PullOptions, PullResult } from './mirror/pull.js';
export { MIRROR_LAYOUT } from './mirror/index-types.js';
export type { MirrorIndex, MirrorVersion, MirrorFile, SignedMirrorIndex } from './mirror/index-types.js';
