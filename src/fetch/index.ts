export { download, DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_DOWNLOAD_TIMEOUT_MS } from './download.js';
export type { DownloadOptions, DownloadResult } from './download.js';
export { DownloadError } from './errors.js';
export { resolveInput } from './resolve-input.js';
export type { InputSpec, InputOrigin, ResolvedInput, ResolveInputOptions } from './resolve-input.js';
export { DEFAULT_MAX_INPUT_BYTES, MAX_TEXT_INPUT_BYTES, readInputFile, readInputText } from './read-input.js';
export type { ReadInputOptions } from './read-input.js';
export { downloadResumable, getSmall, removePart } from './http-get.js';
export type { GetSmallOptions, GetSmallResult, ResumableOptions, ResumableResult } from './http-get.js';
