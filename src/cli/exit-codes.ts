import { FormatError, type OvmfBuildError } from '../core/errors.js';

/**
 * Exit codes of the `ovmf-build` command. Stable: scripts depend on them.
 * Codes are matched exactly first, then by prefix, then by error class.
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
  interrupted: 130,
} as const;

const EXACT: Readonly<Record<string, number>> = {
  E_USAGE: EXIT.usage,
  E_NOT_FIRMWARE: EXIT.notFirmware,
  E_GOP_NOT_FOUND: EXIT.gopNotFound,
  E_VBT_NOT_FOUND: EXIT.vbtNotFound,
  E_ABORTED: EXIT.interrupted,
};

const PREFIXES: ReadonlyArray<readonly [string, number]> = [
  ['E_FETCH_', EXIT.fetch],
  ['E_DOWNLOAD_', EXIT.fetch],
  ['E_ARCHIVE_', EXIT.fetch],
  ['E_ENGINE_', EXIT.engine],
  ['E_CONTAINER_', EXIT.engine],
  ['E_IMAGE_', EXIT.engine],
  ['E_BUILD_', EXIT.build],
  ['E_EDK2_', EXIT.build],
  ['E_VERIFY_', EXIT.verification],
  ['E_BOOT_', EXIT.verification],
  ['E_CACHE_', EXIT.store],
  ['E_PUBLISH_', EXIT.store],
  ['E_SIGNATURE_', EXIT.store],
  ['E_ARTIFACT_', EXIT.store],
  ['E_INPUT_', EXIT.invalidInput],
];

export function exitCodeFor(error: OvmfBuildError): number {
  const exact = EXACT[error.code];
  if (exact !== undefined) return exact;
  for (const [prefix, code] of PREFIXES) {
    if (error.code.startsWith(prefix)) return code;
  }
  if (error instanceof FormatError) return EXIT.invalidInput;
  return EXIT.failure;
}
