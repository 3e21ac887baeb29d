// A running container's log, followed and demultiplexed (no TTY: stdout and
// stderr share one framed stream) into lines for the caller's callback and
// the tail kept for error reports, without buffering the whole log.
import { Writable } from 'node:stream';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LineSplitter } from './line-splitter.js';
import type { TailBuffer } from './line-splitter.js';

export interface LogSink {
  readonly tail: TailBuffer;
  readonly onLine?: ((line: string, stream: 'stdout' | 'stderr') => void) | undefined;
  readonly logger: Logger;
}

/** Follows the log until the stream ends (the container exited) or `signal` fires. */
export async function streamLogs(
  docker: Docker,
  container: Docker.Container,
  sink: LogSink,
  signal: AbortSignal,
): Promise<void> {
  const stream = (await container.logs({
    follow: true,
    stdout: true,
    stderr: true,
    abortSignal: signal,
  } as Docker.ContainerLogsOptions & { follow: true })) as unknown as Readable;
  let callbackFailures = 0;
  const lines = (name: 'stdout' | 'stderr'): { writable: Writable; splitter: LineSplitter } => {
    const splitter = new LineSplitter((line) => {
      sink.tail.push(line);
      try {
        sink.onLine?.(line, name);
      } catch (error) {
        // A throwing callback must not tear down the log stream (or the process); the build goes on.
        callbackFailures += 1;
        if (callbackFailures === 1) {
          sink.logger.warn({ error: String(error) }, 'onLine callback threw; later failures are not logged');
        }
      }
    });
    const writable = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        splitter.write(chunk);
        callback();
      },
    });
    return { writable, splitter };
  };
  const out = lines('stdout');
  const err = lines('stderr');
  docker.modem.demuxStream(stream, out.writable, err.writable);
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  out.splitter.end();
  err.splitter.end();
}
