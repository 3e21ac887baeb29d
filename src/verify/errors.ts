import { AbortError, OvmfBuildError } from '../core/errors.js';

/**
 * A built OVMF failed verification (E_VERIFY_*: structure; E_BOOT_*: boot in QEMU).
 * Both families map to exit code 10.
 */
export class VerificationError extends OvmfBuildError {}

/** The error of a QEMU run that `signal` stopped: "<what> aborted: <reason>", the reason as its cause. */
export function runAbortedError(
  what: string,
  signal: AbortSignal | undefined,
  details: Readonly<Record<string, unknown>>,
): AbortError {
  return new AbortError(`${what} aborted: ${String(signal?.reason ?? 'signal')}`, details, {
    cause: signal?.reason,
  });
}
