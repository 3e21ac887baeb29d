// The numeric exit statuses of the CLI and the one function that turns an error into one,
// read from the error registry, so scripts can rely on a stable status per failure.
import { ERROR_CODES, isErrorCode, type ErrorCodeEntry, type ExitKind } from '../core/error-codes.js';
import type { OvmfBuildError } from '../core/errors.js';

/**
 * Exit codes of the `ovmf-build` command. Stable: scripts depend on them.
 * Each error code names its exit status in the registry (src/core/error-codes.ts).
 */
export const EXIT = {
  ok: 0,
  /** A known failure that has no more specific code. */
  failure: 1,
  usage: 2,
  notFirmware: 3,
  gopNotFound: 4,
  vbtNotFound: 5,
  invalidInput: 6,
  fetch: 7,
  engine: 8,
  build: 9,
  verification: 10,
  store: 11,
  /** An unexpected error: a bug in ovmf-build (EX_SOFTWARE). */
  bug: 70,
  /** SIGINT (128 + 2). */
  interrupted: 130,
  /** SIGTERM (128 + 15). */
  terminated: 143,
} as const satisfies Record<ExitKind | 'ok' | 'terminated', number>;

/**
 * The exit status of an error: its code's entry in the registry. A code outside the table can
 * only come through a cast; it gets the generic failure status.
 */
export function exitCodeFor(error: OvmfBuildError): number {
  const entry: ErrorCodeEntry | undefined = isErrorCode(error.code) ? ERROR_CODES[error.code] : undefined;
  return entry === undefined ? EXIT.failure : EXIT[entry.exit];
}
