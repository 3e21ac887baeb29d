export {
  CODE_FILE,
  DEFAULT_ROM_FILE,
  LATEST_LINK,
  MANIFEST_FILE,
  PUBLIC_KEY_FILE,
  SIGNATURE_FILE,
  SUMS_FILE,
  VARS_FILE,
  descriptorFileName,
} from './layout.js';
export { findPublished, pointLatest, publishArtifact, readLatest } from './artifact.js';
export type { PublishOptions, PublishedArtifact } from './artifact.js';
export { verifyArtifact } from './verify.js';
export type { ArtifactCheck, VerifyArtifactOptions } from './verify.js';
export { PublishError } from './errors.js';
export { artifactVersion, assertArtifactName, deriveArtifactName, slugify } from './naming.js';
export type { ArtifactNameInputs } from './naming.js';
export {
  loadOrCreateSigningKey,
  loadSigningKey,
  publicKeyFingerprint,
  SIGNING_KEY_FILE,
  SIGNING_PUBLIC_KEY_FILE,
} from './signing.js';
export type { SigningKey } from './signing.js';
export {
  addTrustedKey,
  loadAddedKeys,
  loadTrustedKeys,
  parsePublicKey,
  removeTrustedKey,
  TRUSTED_KEYS_DIR,
} from './trust.js';
export type { TrustedKey } from './trust.js';
export { firmwareDescriptor, proxmoxSnippet, qemuCommandLine } from './snippets.js';
export type { FirmwareFacts, MachineType } from './snippets.js';
