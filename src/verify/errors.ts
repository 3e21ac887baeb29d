import { OvmfBuildError } from '../core/errors.js';

/**
 * A built OVMF failed verification (E_VERIFY_*: structure; E_BOOT_*: boot in QEMU).
 * Both families map to exit code 10.
 */
export class VerificationError extends OvmfBuildError {}
