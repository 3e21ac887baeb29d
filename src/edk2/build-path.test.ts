import { describe, expect, it } from 'vitest';
import { chooseBuildPath, type BuildPathInput } from './build-path.js';
import { toolsImageRef, TOOLS_REPOSITORY } from './tools-image.js';

const same = { overlayDigest: 'o1', platformDigest: 'p1' };
const input = (over: Partial<BuildPathInput>): BuildPathInput => ({
  workspaceExists: true,
  allowVariant: true,
  workspace: same,
  shipped: same,
  ...over,
});

describe('chooseBuildPath', () => {
  it('no workspace: clean, whatever else', () => {
    expect(chooseBuildPath(input({ workspaceExists: false }))).toBe('clean');
    expect(chooseBuildPath(input({ workspaceExists: false, shipped: { ...same, overlayDigest: 'x' } }))).toBe(
      'clean',
    );
  });

  it('a workspace compiled from the same overlay and platform files: variant (GenFds only)', () => {
    expect(chooseBuildPath(input({}))).toBe('variant');
  });

  it('an overlay file (C source, INF, the generated device header) shipped differently: warm', () => {
    expect(chooseBuildPath(input({ shipped: { ...same, overlayDigest: 'o2' } }))).toBe('warm');
  });

  it('a patched DSC or FDF shipped differently: warm', () => {
    expect(chooseBuildPath(input({ shipped: { ...same, platformDigest: 'p2' } }))).toBe('warm');
  });

  it('variant not allowed by the caller: warm', () => {
    expect(chooseBuildPath(input({ allowVariant: false }))).toBe('warm');
  });
});

describe('toolsImageRef', () => {
  it('one tag per source digest and builder image', () => {
    const ref = toolsImageRef('sha256-a', 'sha256:b');
    expect(ref).toMatch(new RegExp(`^${TOOLS_REPOSITORY}:[0-9a-f]{24}$`));
    expect(toolsImageRef('sha256-a', 'sha256:b')).toBe(ref);
    expect(toolsImageRef('sha256-c', 'sha256:b')).not.toBe(ref);
    expect(toolsImageRef('sha256-a', 'sha256:d')).not.toBe(ref);
  });
});
