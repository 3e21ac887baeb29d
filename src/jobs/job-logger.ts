// One pino log file per job under the user's state dir, so a failed or slow run can be
// read afterwards; the path is printed.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { userStateDir } from '../cache/paths.js';

export interface JobLog {
  readonly jobId: string;
  readonly logFile: string;
  readonly logger: Logger;
  /** Flushes and closes the file. */
  close(): void;
}

/** "20261124T051500Z-a1b2c3": sortable, unique enough for labels and file names. */
export function newJobId(now: Date = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export function openJobLog(env: NodeJS.ProcessEnv, jobId: string = newJobId()): JobLog {
  const dir = path.join(userStateDir(env), 'logs');
  mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, `${jobId}.log`);
  // sync: a kill -9 must not lose the lines written before it.
  const destination = pino.destination({ dest: logFile, sync: true });
  const logger = pino({ base: { jobId } }, destination);
  return {
    jobId,
    logFile,
    logger,
    close: () => {
      destination.flushSync();
      destination.end();
    },
  };
}
