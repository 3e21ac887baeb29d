import { describe, expect, it } from 'vitest';
import {
  buildDefines,
  DEFAULT_BUILD_FLAGS,
  expectedImageSizes,
  flagsKey,
  resolveBuildFlags,
} from './flags.js';

describe('resolveBuildFlags', () => {
  it('fills the documented defaults', () => {
    expect(resolveBuildFlags()).toEqual({ fdSize: '4MB', target: 'DEBUG', network: true, secureBoot: false });
    expect(resolveBuildFlags({})).toEqual(DEFAULT_BUILD_FLAGS);
  });

  it('keeps given values and ignores undefined ones', () => {
    expect(resolveBuildFlags({ fdSize: '2MB', target: 'RELEASE', network: false, secureBoot: true })).toEqual(
      {
        fdSize: '2MB',
        target: 'RELEASE',
        network: false,
        secureBoot: true,
      },
    );
    expect(resolveBuildFlags({ target: undefined as unknown as 'DEBUG' })).toEqual(DEFAULT_BUILD_FLAGS);
  });

  it('rejects bad values with a TypeError naming the option', () => {
    expect(() => resolveBuildFlags({ fdSize: '8MB' as '4MB' })).toThrow(
      new TypeError("Expected `fdSize` to be '2MB' or '4MB', got `\"8MB\"` (string)"),
    );
    expect(() => resolveBuildFlags({ target: 'NOOPT' as 'DEBUG' })).toThrow(
      new TypeError("Expected `target` to be 'DEBUG' or 'RELEASE', got `\"NOOPT\"` (string)"),
    );
    expect(() => resolveBuildFlags({ network: 'yes' as unknown as boolean })).toThrow(
      new TypeError('Expected `network` to be a boolean, got `"yes"` (string)'),
    );
    expect(() => resolveBuildFlags({ secureBoot: 1 as unknown as boolean })).toThrow(
      new TypeError('Expected `secureBoot` to be a boolean, got `1` (number)'),
    );
    expect(() => resolveBuildFlags({ smm: true } as never)).toThrow(
      new TypeError('Expected `flags` to have only fdSize, target, network, secureBoot, got `smm`'),
    );
  });
});

describe('buildDefines', () => {
  it('passes every define explicitly', () => {
    // The build's argv, written as the command line reads (split on single spaces).
    expect(buildDefines(DEFAULT_BUILD_FLAGS)).toEqual(
      '-D FD_SIZE_4MB -D NETWORK_ENABLE=TRUE -D SECURE_BOOT_ENABLE=FALSE -D SMM_REQUIRE=FALSE'.split(' '),
    );
    expect(buildDefines(resolveBuildFlags({ fdSize: '2MB', network: false, secureBoot: true }))).toEqual(
      '-D FD_SIZE_2MB -D NETWORK_ENABLE=FALSE -D SECURE_BOOT_ENABLE=TRUE -D SMM_REQUIRE=TRUE'.split(' '),
    );
  });
});

describe('expectedImageSizes / flagsKey', () => {
  it('gives the OvmfPkgDefines.fdf.inc sizes', () => {
    expect(expectedImageSizes(DEFAULT_BUILD_FLAGS)).toEqual({
      codeSizeInBytes: 3_653_632,
      varsSizeInBytes: 540_672,
      combinedSizeInBytes: 4_194_304,
    });
    expect(expectedImageSizes(resolveBuildFlags({ fdSize: '2MB' }))).toEqual({
      codeSizeInBytes: 1_966_080,
      varsSizeInBytes: 131_072,
      combinedSizeInBytes: 2_097_152,
    });
  });

  it('is stable text', () => {
    expect(flagsKey(DEFAULT_BUILD_FLAGS)).toBe('fd=4MB,target=DEBUG,network=true,secureBoot=false');
  });
});
