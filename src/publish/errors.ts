import { OvmfBuildError } from '../core/errors.js';

/**
 * Publishing or checking an artifact directory, or managing signing keys, failed (exit 11).
 * Codes: E_PUBLISH_FAILED; E_SIGNATURE_INVALID, E_SIGNATURE_MISSING, E_SIGNATURE_UNTRUSTED
 * (intact, but signed by a key the user does not trust; details.signingKeyFingerprint);
 * E_SIGNATURE_KEY (a broken private key), E_SIGNATURE_KEY_UNAVAILABLE (the config directory
 * cannot hold the key), E_SIGNATURE_KEY_INVALID (not an ed25519 public key),
 * E_SIGNATURE_KEY_STORE (the trusted-keys directory), E_SIGNATURE_KEY_NOT_FOUND;
 * E_ARTIFACT_DIR_NOT_FOUND, E_ARTIFACT_NOT_A_VERSION_DIR, E_ARTIFACT_UNSAFE_ENTRY (a link or
 * special file inside), E_ARTIFACT_SUMS_INVALID, E_ARTIFACT_DIGEST_MISMATCH,
 * E_ARTIFACT_FILE_MISSING, E_ARTIFACT_MANIFEST_INVALID. `details.file` names the file.
 */
export class PublishError extends OvmfBuildError {}
