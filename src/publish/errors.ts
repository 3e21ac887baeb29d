import { OvmfBuildError } from '../core/errors.js';

/**
 * Publishing or checking an artifact directory failed. Codes: E_PUBLISH_FAILED,
 * E_SIGNATURE_INVALID, E_SIGNATURE_MISSING, E_SIGNATURE_KEY, E_ARTIFACT_DIGEST_MISMATCH,
 * E_ARTIFACT_FILE_MISSING, E_ARTIFACT_MANIFEST_INVALID. `details.file` names the file.
 */
export class PublishError extends OvmfBuildError {}
