// Public API of ovmf-build, exported by name. Everything else is internal.
export { OvmfBuildError, FormatError, NotFoundError, UsageError, AbortError } from './core/errors.js';
export {
  parseFirmware,
  parseFirmwareVolume,
  listFiles,
  walkNodes,
  nodePath,
  DEFAULT_LIMITS,
  type FirmwareTree,
  type FirmwareNode,
  type FileNode,
  type SectionNode,
  type VolumeNode,
  type ParseOptions,
  type ParseLimits,
  type FirmwareProblem,
} from './formats/firmware-tree.js';
export {
  locateGopAndVbt,
  locateGop,
  locateVbt,
  type LocateResult,
  type LocatedGop,
  type LocatedVbt,
} from './formats/locate.js';
export { detectFileKind, type FileKind } from './formats/detect.js';
export { renderTree, nodeToJson } from './formats/render-tree.js';
