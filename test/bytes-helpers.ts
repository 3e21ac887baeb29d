// Small helpers shared by the byte-level unit tests.
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { FormatError, OvmfBuildError } from '../src/core/errors.js';

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The same bytes at a non-zero byteOffset inside a larger buffer. */
export function atOffset(data: Uint8Array, offset = 7): Uint8Array {
  const backing = new Uint8Array(data.length + offset + 5).fill(0xa5);
  backing.set(data, offset);
  return backing.subarray(offset, offset + data.length);
}

/** Runs `action`, expects a FormatError with `code`, returns it for further checks. */
export function expectFormatError(action: () => unknown, code: string): FormatError {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(FormatError);
  const error = thrown as FormatError;
  expect(error.code).toBe(code);
  return error;
}

/**
 * The code of the OvmfBuildError `action` throws; 'no error' when it returns, 'TypeError'
 * for a rejected argument, `foreign <error>` for anything else (which no expected code matches).
 */
export function errorCodeOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof OvmfBuildError) return error.code;
    if (error instanceof TypeError) return 'TypeError';
    return `foreign ${String(error)}`;
  }
  return 'no error';
}

/** Deterministic pseudo-random bytes (xorshift32), so tests do not depend on a seed source. */
export function pseudoRandomBytes(length: number, seed = 0x1234_5678): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < length; index++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[index] = state & 0xff;
  }
  return out;
}
