// splitRef against the reference forms the tool uses: a tagged local image, a
// registry with a port and no tag, and a Docker Hub short name.
import { describe, expect, it } from 'vitest';
import { splitRef } from './image-ref.js';

describe('splitRef', () => {
  it.each([
    ['localhost/ovmf-build/edk2-builder:0123', ['localhost/ovmf-build/edk2-builder', '0123']],
    ['localhost:5000/x', ['localhost:5000/x', 'latest']],
    ['debian:bookworm-slim', ['debian', 'bookworm-slim']],
  ])('%s', (ref, parts) => {
    expect(splitRef(ref)).toEqual(parts);
  });
});
