// The Redis connection of the BullMQ scale-out (issue 11 item 4). BullMQ 6 takes an ioredis
// client from an ES module (it cannot require() one), so this file makes them, from the one URL
// form the CLI accepts, and turns "no Redis there" into a coded error instead of ioredis's
// endless reconnect loop.
import { Redis } from 'ioredis';
import { OvmfBuildError } from '../core/errors.js';
import { redactedQueueUrl } from './url.js';

/** How long a command waits for Redis to answer before it gives up. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The name of the nightly queue in Redis (its keys are `bull:ovmf-build-nightly:*`). */
export const QUEUE_NAME = 'ovmf-build-nightly';

/**
 * A connected client. BullMQ needs `maxRetriesPerRequest: null` on the clients of workers (their
 * blocking commands must not fail while Redis restarts); a Redis that does not answer within
 * CONNECT_TIMEOUT_MS is E_QUEUE_UNREACHABLE.
 */
export async function connectRedis(url: URL, signal?: AbortSignal): Promise<Redis> {
  const client = new Redis(url.href, { maxRetriesPerRequest: null, lazyConnect: true });
  let lastError: Error | undefined;
  client.on('error', (error: Error) => {
    lastError = error;
  });
  const timeout = AbortSignal.timeout(CONNECT_TIMEOUT_MS);
  const stop = signal === undefined ? timeout : AbortSignal.any([timeout, signal]);
  try {
    await new Promise<void>((resolve, reject) => {
      stop.addEventListener('abort', () => reject(stop.reason as Error), { once: true });
      client.once('ready', () => resolve());
      // A failed first connect rejects here while ioredis keeps retrying; the timeout decides.
      client.connect().catch((error: Error) => {
        lastError = error;
      });
    });
  } catch (error) {
    client.disconnect();
    if (signal?.aborted) throw error;
    throw new OvmfBuildError(
      'E_QUEUE_UNREACHABLE',
      `no Redis answered at ${redactedQueueUrl(url)} within ${CONNECT_TIMEOUT_MS / 1000} s` +
        (lastError === undefined ? '' : `: ${lastError.message}`),
      { queue: redactedQueueUrl(url) },
    );
  }
  return client;
}
