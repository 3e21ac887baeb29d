/**
 * One base class for every failure the tool knows about. Each error carries a
 * fixed `code` (E_..., registered in error-codes.ts with its exit status and
 * class) and its context in `details` (offsets, paths, digests, container ids),
 * so callers and tests match on data, not on message text. The CLI's single
 * top-level catch maps codes to exit codes (src/cli/exit-codes.ts).
 */
import type { ErrorCode } from './error-codes.js';

export class OvmfBuildError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Wrong command-line usage or a bad option value. */
export class UsageError extends OvmfBuildError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('E_USAGE', message, details);
  }
}

/** A structure in a binary input is malformed, truncated or hostile. */
export class FormatError extends OvmfBuildError {}

/**
 * An input file or directory cannot be used as given: missing, unreadable, not a regular file,
 * too large (E_INPUT_NOT_FOUND, E_INPUT_UNREADABLE, E_INPUT_NOT_A_FILE, E_INPUT_TOO_LARGE).
 */
export class InputError extends OvmfBuildError {}

/** Something that was searched for is not in the input (no GOP, no VBT...). */
export class NotFoundError extends OvmfBuildError {}

/** The process was asked to stop (AbortSignal, SIGINT, SIGTERM). */
export class AbortError extends OvmfBuildError {
  constructor(message = 'operation aborted', details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super('E_ABORTED', message, details, options);
  }
}

export function isOvmfBuildError(error: unknown): error is OvmfBuildError {
  return error instanceof OvmfBuildError;
}

/** Throws an AbortError if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new AbortError(
      `operation aborted: ${String(signal.reason ?? 'signal')}`,
      {},
      { cause: signal.reason },
    );
  }
}
