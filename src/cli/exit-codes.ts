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
  /** SIGINT (128 + 2). */
  interrupted: 130,
  /** SIGTERM (128 + 15). */
  terminated: 143,
} as const;

const EXACT: Readonly<Record<string, number>> = {
  E_USAGE: EXIT.usage,
  // A wrong --out is a mistake on the command line, like a bad option value.
  E_OUTPUT_DIR_MISSING: EXIT.usage,
  E_OUTPUT_IS_DIRECTORY: EXIT.usage,
  // stdout or an output file could not be written (disk full, permissions): no more specific code.
  E_OUTPUT_WRITE_FAILED: EXIT.failure,
  // A <key> argument of `cache why` that is malformed, unknown or ambiguous: the same
  // mistake on the command line, so the same exit code as any other bad argument.
  E_CACHE_BAD_KEY: EXIT.usage,
  E_CACHE_KEY_NOT_FOUND: EXIT.usage,
  E_CACHE_KEY_AMBIGUOUS: EXIT.usage,
  E_NOT_FIRMWARE: EXIT.notFirmware,
  E_GOP_NOT_FOUND: EXIT.gopNotFound,
  E_VBT_NOT_FOUND: EXIT.vbtNotFound,
  E_GOP_CORRUPT: EXIT.invalidInput,
  E_TRUNCATED: EXIT.invalidInput,
  E_ABORTED: EXIT.interrupted,
  E_NOT_IMPLEMENTED: EXIT.failure,
  E_INTERNAL: EXIT.bug,
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
  // Parser and decompressor codes (src/formats): the input is malformed.
  ['E_FV_', EXIT.invalidInput],
  ['E_FFS_', EXIT.invalidInput],
  ['E_SECTION_', EXIT.invalidInput],
  ['E_FW_', EXIT.invalidInput],
  ['E_PE_', EXIT.invalidInput],
  ['E_ROM_', EXIT.invalidInput],
  ['E_VBT_', EXIT.invalidInput],
  ['E_OPREGION_', EXIT.invalidInput],
  ['E_CAPSULE_', EXIT.invalidInput],
  ['E_DESCRIPTOR_', EXIT.invalidInput],
  ['E_BPDT_', EXIT.invalidInput],
  ['E_DECOMPRESS_', EXIT.invalidInput],
];

/** Whether a code has an exit code of its own (exact or by prefix), not only the fallback. */
export function isRegisteredCode(code: string): boolean {
  return EXACT[code] !== undefined || PREFIXES.some(([prefix]) => code.startsWith(prefix));
}

export function exitCodeFor(error: OvmfBuildError): number {
  const exact = EXACT[error.code];
  if (exact !== undefined) return exact;
  for (const [prefix, code] of PREFIXES) {
    if (error.code.startsWith(prefix)) return code;
  }
  if (error instanceof FormatError) return EXIT.invalidInput;
  return EXIT.failure;
}
