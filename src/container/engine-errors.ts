// How an engine request's failure becomes one of our errors: the engine's 404
// recognised in one place, aborts kept as aborts, anything else coded with the
// engine's own message.
import type { ErrorCode } from '../core/error-codes.js';
import { OvmfBuildError } from '../core/errors.js';

/**
 * Whether the engine answered 404 (no such container, image or path). docker-modem
 * rejects with an Error carrying the HTTP status as `statusCode`.
 */
export function isNotFound(error: unknown): boolean {
  return (error as { statusCode?: unknown } | null)?.statusCode === 404;
}

/** The HTTP status of a failed engine request, if the engine answered at all. */
export function engineStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** An AbortSignal fired under the request (dockerode's abortSignal, stream.pipeline, fetch). */
export function isAbort(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'AbortError' || (error as { code?: string }).code === 'ABORT_ERR')
  );
}

/**
 * An engine request failed: keep our own coded errors and aborts as they are,
 * give everything else a code and the engine's message.
 */
export function engineFailure(
  code: ErrorCode,
  what: string,
  error: unknown,
  details: Record<string, unknown>,
): unknown {
  if (error instanceof OvmfBuildError || isAbort(error)) {
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  return new OvmfBuildError(code, `${what} failed: ${message}`, details, { cause: error });
}

/** Runs an engine request whose 404 means "absent": resolves to `absent` then, rethrows anything else. */
export async function unlessNotFound<T, A>(request: Promise<T>, absent: A): Promise<T | A> {
  try {
    return await request;
  } catch (error) {
    if (isNotFound(error)) {
      return absent;
    }
    throw error;
  }
}
