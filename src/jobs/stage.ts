// What every stage of the job (pipeline.ts) is given besides its input: the abort signal, a
// logger already labelled with the stage, the event sink of the terminal and the job's session
// (one engine connection and the EDK2 tree shared by the stages of one run).
import type { Logger } from 'pino';
import type { JobEvent } from './job-types.js';
import type { JobSession } from './session.js';

export interface StageContext {
  readonly signal: AbortSignal;
  /** `logger.child({ stage })` of the run's logger. */
  readonly logger: Logger;
  readonly emit: (event: JobEvent) => void;
  readonly session: JobSession;
}

/** One stage: a plain async function from its input to its value. */
export type Stage<I, O> = (input: I, context: StageContext) => Promise<O>;
