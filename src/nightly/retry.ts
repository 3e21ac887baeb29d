// Which failures the nightly runner retries (issue 11): only those that may go away by
// themselves. The CLI's exit codes already sort errors that way: 7 download or archive, 8
// container engine, 9 EDK2 build. Invalid input (6) and everything else fail at once, because
// the same bytes fail the same way again.
export const TRANSIENT_EXIT_CODES: readonly number[] = [7, 8, 9];

/** @default 3 attempts in all (the first and two retries) */
export const DEFAULT_MAX_ATTEMPTS = 3;

/** Wait before retry n (n = 1 after the first failure): 30 s, then 90 s. */
export function defaultBackoffMs(failedAttempt: number): number {
  return 30_000 * 3 ** (failedAttempt - 1);
}

export function isTransientExitCode(exitCode: number): boolean {
  return TRANSIENT_EXIT_CODES.includes(exitCode);
}
