// The container layer's public surface; everything else in src/container is internal.
export { connectEngine } from './engine.js';
export type {
  BuilderImage,
  BuilderImageSpec,
  ConnectOptions,
  ContainerEngine,
  EngineInfo,
  ImagePruneResult,
  ImageRemoval,
  InputDirectory,
  InputFile,
  RunResult,
  RunSpec,
} from './types.js';
