export {
  CODE_FILE,
  DEFAULT_ROM_FILE,
  MANIFEST_FILE,
  PUBLIC_KEY_FILE,
  SIGNATURE_FILE,
  SUMS_FILE,
  VARS_FILE,
  descriptorFileName,
  findPublished,
  pointLatest,
  publishArtifact,
  readLatest,
  verifyArtifact,
} from './artifact.js';
export type { ArtifactCheck, PublishOptions, PublishedArtifact } from './artifact.js';
export { PublishError } from './errors.js';
export { artifactVersion, assertArtifactName, deriveArtifactName, slugify } from './naming.js';
export type { ArtifactNameInputs } from './naming.js';
export { loadOrCreateSigningKey, publicKeyFingerprint, SIGNING_KEY_FILE } from './signing.js';
export type { SigningKey } from './signing.js';
export { firmwareDescriptor, proxmoxSnippet, qemuCommandLine } from './snippets.js';
export type { FirmwareFacts, MachineType } from './snippets.js';
