// The EDK2 builder image's recipe directory and repository. A file of its own, with no
// imports, so the job's key stage can name the builder image without loading the build
// (and through it the EDK2 source and download stack) on a cache hit.
import { fileURLToPath } from 'node:url';

/** containers/edk2-builder of this package. */
export const DEFAULT_BUILDER_CONTEXT = fileURLToPath(
  new URL('../../containers/edk2-builder', import.meta.url),
);
export const DEFAULT_BUILDER_REPOSITORY = 'localhost/ovmf-build/edk2-builder';
