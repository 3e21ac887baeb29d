import { OvmfBuildError } from '../core/errors.js';

/** The EDK2 build ran and failed (E_BUILD_FAILED), or its output is missing (E_BUILD_OUTPUT_MISSING). */
export class BuildError extends OvmfBuildError {}

/** The EDK2 source could not be acquired, unpacked or patched (E_EDK2_*). */
export class Edk2Error extends OvmfBuildError {}
