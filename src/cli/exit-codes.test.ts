// The error registry (src/core/error-codes.ts) against the sources and the README: every code the
// sources write is registered and every registered code is used; each code is thrown by the class
// the registry names; each class's codes exit under that class's meaning; the codes whose exit
// status is documented keep it; and the README's exit table says what the registry does.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CacheError } from '../cache/store.js';
import { ERROR_CODES, type ErrorClassName, type ErrorCode, type ExitKind } from '../core/error-codes.js';
import {
  AbortError,
  FormatError,
  InputError,
  NotFoundError,
  OvmfBuildError,
  UsageError,
} from '../core/errors.js';
import { BuildError, Edk2Error } from '../edk2/errors.js';
import { DownloadError } from '../fetch/errors.js';
import { PublishError } from '../publish/errors.js';
import { VerificationError } from '../verify/errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

const SRC = path.resolve(import.meta.dirname, '..');
const REGISTRY = path.join(SRC, 'core', 'error-codes.ts');
const README = path.resolve(SRC, '..', 'README.md');
const CODE = /['"`](E_[A-Z0-9_]*[A-Z0-9])['"`]/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && full !== REGISTRY ? [full] : [];
  });
}

const SOURCES: ReadonlyArray<{ file: string; text: string }> = sourceFiles(SRC).map((file) => ({
  file: path.relative(SRC, file),
  text: readFileSync(file, 'utf8'),
}));

const REGISTERED = new Set<string>(Object.keys(ERROR_CODES));

/** Complete codes written as string literals in src/ (not prefixes such as 'E_BOOT_'), with a file using each. */
function codesInSources(): Map<string, string> {
  const codes = new Map<string, string>();
  for (const { file, text } of SOURCES) {
    for (const match of text.matchAll(CODE)) codes.set(match[1] as string, file);
  }
  return codes;
}

/**
 * Where a class is statically visible: `new XError('E_...'` (also a ternary of codes as the
 * first argument), and calls of a file's helper `function f(code: ErrorCode, ...) { throw|return
 * new XError(code` with a literal code, as the parsers use (`fail('E_VBT_TRUNCATED', ...)`).
 */
function constructions(): Array<{ code: string; errorClass: string; file: string }> {
  const found: Array<{ code: string; errorClass: string; file: string }> = [];
  for (const { file, text } of SOURCES) {
    for (const match of text.matchAll(/new (\w+)\(\s*([^,()]*?),/g)) {
      for (const code of (match[2] as string).matchAll(CODE)) {
        found.push({ code: code[1] as string, errorClass: match[1] as string, file });
      }
    }
    const helpers = text.matchAll(
      /function (\w+)\(\s*code: ErrorCode\b[\s\S]{0,200}?\{\s*(?:throw|return) new (\w+)\(code\b/g,
    );
    for (const [, helper, errorClass] of helpers) {
      for (const call of text.matchAll(new RegExp(`\\b${helper}\\(\\s*'(E_[A-Z0-9_]+)'`, 'g'))) {
        found.push({ code: call[1] as string, errorClass: errorClass as string, file });
      }
    }
  }
  return found;
}

const CLASSES: Readonly<Record<ErrorClassName, new (...args: never[]) => OvmfBuildError>> = {
  OvmfBuildError,
  UsageError,
  FormatError,
  NotFoundError,
  AbortError,
  InputError,
  DownloadError,
  Edk2Error,
  BuildError,
  CacheError,
  PublishError,
  VerificationError,
};

/** The exit statuses each class may carry: its own meaning (OvmfBuildError itself: any). */
const CLASS_EXITS: Readonly<Record<Exclude<ErrorClassName, 'OvmfBuildError'>, readonly ExitKind[]>> = {
  UsageError: ['usage'],
  FormatError: ['invalidInput', 'notFirmware'],
  NotFoundError: ['gopNotFound', 'vbtNotFound'],
  AbortError: ['interrupted'],
  InputError: ['invalidInput'],
  DownloadError: ['fetch'],
  Edk2Error: ['build'],
  BuildError: ['build'],
  // A `cache why` key argument that is malformed, unknown or ambiguous is a command-line mistake.
  CacheError: ['store', 'usage'],
  PublishError: ['store'],
  VerificationError: ['verification'],
};

describe('error registry', () => {
  it('registers every E_ code written in src/', () => {
    const codes = codesInSources();
    expect(codes.size).toBeGreaterThan(200);
    const unregistered = [...codes].filter(([code]) => !REGISTERED.has(code)).map(([c, f]) => `${c} (${f})`);
    expect(unregistered).toEqual([]);
  });

  it('registers no code that src/ never uses', () => {
    const used = codesInSources();
    expect([...REGISTERED].filter((code) => !used.has(code))).toEqual([]);
  });

  it('names, for each code, the class that constructs it', () => {
    const seen = constructions();
    expect(seen.length).toBeGreaterThan(150);
    const wrong = seen
      .filter(({ code, errorClass }) => ERROR_CODES[code as ErrorCode]?.class !== errorClass)
      .map(({ code, errorClass, file }) => `${code}: new ${errorClass} in ${file}`);
    expect(wrong).toEqual([]);
  });

  it('names real classes, each exiting under its own meaning', () => {
    for (const [name, errorClass] of Object.entries(CLASSES)) expect(errorClass.name).toBe(name);
    const drift = Object.entries(ERROR_CODES)
      .filter(
        ([, entry]) => entry.class !== 'OvmfBuildError' && !CLASS_EXITS[entry.class].includes(entry.exit),
      )
      .map(([code, entry]) => `${code}: ${entry.class} exits ${entry.exit}`);
    expect(drift).toEqual([]);
  });
});

describe('exit codes', () => {
  it('maps by code, whatever the class (a bare OvmfBuildError gets the same status as a subclass)', () => {
    const status = (code: ErrorCode): number => exitCodeFor(new OvmfBuildError(code, code));
    expect(
      Object.fromEntries(
        (
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
            'E_VBT_BDB_OVERFLOW',
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
          ] as const
        ).map((code) => [code, status(code)]),
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
      E_VBT_BDB_OVERFLOW: 6,
      E_DOWNLOAD_DIGEST_MISMATCH: 7,
      // Only the container engine's output archives are read as tar: an engine failure, not a download.
      E_ARCHIVE_UNSAFE_ENTRY: 8,
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

  it('a code outside the registry (only reachable through a cast) exits 1, whatever the class', () => {
    const stray = 'E_SOMETHING_NEW' as ErrorCode;
    expect(exitCodeFor(new FormatError(stray, 'x'))).toBe(1);
    expect(exitCodeFor(new OvmfBuildError(stray, 'x'))).toBe(1);
  });

  it("the README's exit table lists every status and the codes it names exit with their row's status", () => {
    const readme = readFileSync(README, 'utf8');
    const rows = [...readme.matchAll(/^\| (\d+) \| (.*) \|$/gm)].map((m) => ({
      status: Number(m[1]),
      text: m[2] as string,
    }));
    expect(rows.map((r) => r.status)).toEqual(Object.values(EXIT));
    const named = rows.flatMap(({ status, text }) =>
      [...text.matchAll(/`(E_[A-Z0-9_]+)`/g)].map((m) => ({ code: m[1] as string, status })),
    );
    expect(named.length).toBeGreaterThan(0);
    for (const { code, status } of named) {
      expect(REGISTERED.has(code), code).toBe(true);
      expect([code, EXIT[ERROR_CODES[code as ErrorCode].exit]]).toEqual([code, status]);
    }
    const mentioned = [...readme.matchAll(/`(E_[A-Z0-9_]+)`/g)].map((m) => m[1] as string);
    expect(mentioned.filter((code) => !REGISTERED.has(code))).toEqual([]);
    // Prose that gives a code's status in passing: "`E_INPUT_TOO_LARGE` (6)".
    const inProse = [...readme.matchAll(/`(E_[A-Z0-9_]+)` \((\d+)\)/g)];
    expect(inProse.length).toBeGreaterThan(0);
    for (const [, code, status] of inProse) {
      expect([code, EXIT[ERROR_CODES[code as ErrorCode].exit]]).toEqual([code, Number(status)]);
    }
  });
});
