// The parsers' one way to refuse malformed input: a FormatError with a registered code and the
// context (offset, field, found value) in its details. No I/O.
import type { ErrorCode } from '../core/error-codes.js';
import { FormatError } from '../core/errors.js';

/** Throws FormatError `code`, so that a check reads `if (bad) fail(...)` and narrows after it. */
export function fail(code: ErrorCode, message: string, details: Record<string, unknown>): never {
  throw new FormatError(code, message, details);
}
