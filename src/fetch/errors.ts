import { OvmfBuildError } from '../core/errors.js';

/**
 * A download failed. Codes: E_FETCH_HTTP_STATUS, E_FETCH_NETWORK, E_FETCH_TIMEOUT,
 * E_DOWNLOAD_TRUNCATED, E_DOWNLOAD_DIGEST_MISMATCH, E_DOWNLOAD_TOO_LARGE. The URL and the
 * measured values (status, expected/actual digest, byte counts) are in `details`.
 */
export class DownloadError extends OvmfBuildError {}
