// Every error code the sources use maps to an exit code on purpose: scanned from src/**, each
// `'E_...'` literal must be registered (exactly or by prefix) in exit-codes.ts, so a new code
// cannot silently fall back to exit 1; and the codes whose exit status is documented keep it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError, OvmfBuildError } from '../core/errors.js';
import { EXIT, exitCodeFor, isRegisteredCode } from './exit-codes.js';

const SRC = path.resolve(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** Complete codes (not prefixes such as 'E_BOOT_') written as string literals in src/. */
function codesInSources(): Map<string, string> {
  const codes = new Map<string, string>();
  for (const file of sourceFiles(SRC)) {
    for (const match of readFileSync(file, 'utf8').matchAll(/['"`](E_[A-Z0-9_]*[A-Z0-9])['"`]/g)) {
      codes.set(match[1] as string, path.relative(SRC, file));
    }
  }
  return codes;
}

describe('exit codes', () => {
  it('every E_ code used in src/ is registered in exit-codes.ts', () => {
    const codes = codesInSources();
    expect(codes.size).toBeGreaterThan(150);
    const unregistered = [...codes]
      .filter(([code]) => !isRegisteredCode(code))
      .map(([c, f]) => `${c} (${f})`);
    expect(unregistered).toEqual([]);
  });

  it('maps by code, whatever the class (a bare OvmfBuildError gets the same status as a subclass)', () => {
    const status = (code: string): number => exitCodeFor(new OvmfBuildError(code, code));
    expect(
      Object.fromEntries(
        [
          'E_USAGE',
          'E_OUTPUT_DIR_MISSING',
          'E_OUTPUT_IS_DIRECTORY',
          'E_OUTPUT_WRITE_FAILED',
          'E_NOT_FIRMWARE',
          'E_GOP_NOT_FOUND',
          'E_VBT_NOT_FOUND',
          'E_INPUT_NOT_FOUND',
          'E_INPUT_NOT_A_FILE',
          'E_INPUT_TOO_LARGE',
          'E_FV_BAD_SIGNATURE',
          'E_PE_NO_SECTIONS',
          'E_DECOMPRESS_CORRUPT',
          'E_VBT_BLOCK_OVERFLOW',
          'E_DOWNLOAD_DIGEST_MISMATCH',
          'E_ARCHIVE_UNSAFE_ENTRY',
          'E_CONTAINER_OUTPUT_DUPLICATE',
          'E_ENGINE_NOT_FOUND',
          'E_BUILD_FAILED',
          'E_BOOT_TIMEOUT',
          'E_VERIFY_GOP_MISMATCH',
          'E_CACHE_WRITE_FAILED',
          'E_CACHE_BAD_KEY',
          'E_CACHE_KEY_NOT_FOUND',
          'E_CACHE_KEY_AMBIGUOUS',
          'E_SIGNATURE_UNTRUSTED',
          'E_ARTIFACT_DIGEST_MISMATCH',
          'E_ABORTED',
          'E_INTERNAL',
        ].map((code) => [code, status(code)]),
      ),
    ).toEqual({
      E_USAGE: 2,
      E_OUTPUT_DIR_MISSING: 2,
      E_OUTPUT_IS_DIRECTORY: 2,
      E_OUTPUT_WRITE_FAILED: 1,
      E_NOT_FIRMWARE: 3,
      E_GOP_NOT_FOUND: 4,
      E_VBT_NOT_FOUND: 5,
      E_INPUT_NOT_FOUND: 6,
      E_INPUT_NOT_A_FILE: 6,
      E_INPUT_TOO_LARGE: 6,
      E_FV_BAD_SIGNATURE: 6,
      E_PE_NO_SECTIONS: 6,
      E_DECOMPRESS_CORRUPT: 6,
      E_VBT_BLOCK_OVERFLOW: 6,
      E_DOWNLOAD_DIGEST_MISMATCH: 7,
      E_ARCHIVE_UNSAFE_ENTRY: 7,
      E_CONTAINER_OUTPUT_DUPLICATE: 8,
      E_ENGINE_NOT_FOUND: 8,
      E_BUILD_FAILED: 9,
      E_BOOT_TIMEOUT: 10,
      E_VERIFY_GOP_MISMATCH: 10,
      E_CACHE_WRITE_FAILED: 11,
      E_CACHE_BAD_KEY: 2,
      E_CACHE_KEY_NOT_FOUND: 2,
      E_CACHE_KEY_AMBIGUOUS: 2,
      E_SIGNATURE_UNTRUSTED: 11,
      E_ARTIFACT_DIGEST_MISMATCH: 11,
      E_ABORTED: EXIT.interrupted,
      E_INTERNAL: EXIT.bug,
    });
  });

  it('an unregistered code falls back to its class: FormatError 6, anything else 1', () => {
    expect(isRegisteredCode('E_SOMETHING_NEW')).toBe(false);
    expect(exitCodeFor(new FormatError('E_SOMETHING_NEW', 'x'))).toBe(6);
    expect(exitCodeFor(new OvmfBuildError('E_SOMETHING_NEW', 'x'))).toBe(1);
  });
});
