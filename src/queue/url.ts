// The `--queue` URL of the BullMQ scale-out, checked without loading BullMQ or ioredis, so a
// command can refuse a bad value (exit 2) before it loads the queue stack.
import { UsageError } from '../core/errors.js';

/**
 * Checks a `--queue` value: `redis://[user:password@]HOST:PORT[/DB]` or `rediss://` (TLS).
 * Anything else is a usage error (exit 2).
 */
export function parseQueueUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--queue must be a redis://HOST:PORT URL, got \`${value}\``, { queue: value });
  }
  const db = url.pathname.replace(/^\//, '');
  if (
    (url.protocol !== 'redis:' && url.protocol !== 'rediss:') ||
    url.hostname === '' ||
    !/^\d*$/.test(db) ||
    url.search !== '' ||
    url.hash !== ''
  ) {
    throw new UsageError(`--queue must be a redis://HOST:PORT[/DB] URL, got \`${value}\``, { queue: value });
  }
  return url;
}

/** The URL with its password left out, for messages and logs. */
export function redactedQueueUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password !== '') copy.password = '***';
  return copy.href;
}
