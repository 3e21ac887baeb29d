// Public API of ovmf-build, exported by name. Everything else is internal.
export { OvmfBuildError, FormatError, NotFoundError, UsageError, AbortError } from './core/errors.js';
