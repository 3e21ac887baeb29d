// Durable run state of the nightly runner under the user's state directory (issue 11):
//   nightly/jobs/<jobId>.json      one job's last known state
//   nightly/locks/<jobId>.lock     the cross-process lock of a job (src/cache/lock.ts)
//   nightly/runs/<runId>/run.json  a run: its pid, recipes and whether it finished
//   nightly/runs/<runId>/summary.{json,md}
// Every file is replaced atomically (temp, fsync, rename), so a kill -9 leaves the old or the
// new state, never half of one; a run or job left "running" by a dead process is recognised
// by its pid and taken over.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../core/durable-fs.js';
import { isProcessAlive, processStartTicks } from '../core/process-alive.js';

/** Who wrote a "running" record: on this host, a dead pid (or a reused one) means it died. */
export interface Writer {
  readonly pid: number;
  readonly host: string;
  readonly startTicks: number | null;
}

export interface JobState {
  readonly jobId: string;
  readonly recipe: string;
  readonly key: string;
  readonly status: 'running' | 'succeeded' | 'failed';
  readonly runId: string;
  readonly attempts: number;
  readonly writer: Writer;
  readonly updatedAt: string;
  readonly version: string | null;
  readonly errorCode: string | null;
}

export interface RunRecord {
  readonly runId: string;
  readonly status: 'running' | 'finished' | 'interrupted';
  readonly writer: Writer;
  readonly startedAt: string;
  readonly recipes: readonly string[];
  /** For an interrupted run: the run that took over its jobs. */
  readonly resumedBy?: string;
}

export function currentWriter(): Writer {
  return { pid: process.pid, host: hostname(), startTicks: processStartTicks(process.pid) };
}

/** True when the writer of a "running" record is known to be gone (never for another host). */
export function writerIsGone(writer: Writer): boolean {
  return writer.host === hostname() && !isProcessAlive(writer.pid, writer.startTicks);
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // A state file is only ever replaced by rename, so an unreadable one is foreign debris:
    // treat it as absent rather than stopping the night.
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

export class NightlyState {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = path.join(stateDir, 'nightly');
  }

  jobFile(jobId: string): string {
    return path.join(this.root, 'jobs', `${jobId}.json`);
  }

  lockFile(jobId: string): string {
    return path.join(this.root, 'locks', `${jobId}.lock`);
  }

  runDir(runId: string): string {
    return path.join(this.root, 'runs', runId);
  }

  async init(): Promise<void> {
    for (const dir of ['jobs', 'locks', 'runs']) await mkdir(path.join(this.root, dir), { recursive: true });
  }

  readJob(jobId: string): Promise<JobState | null> {
    return readJson<JobState>(this.jobFile(jobId));
  }

  async writeJob(state: JobState): Promise<void> {
    await writeFileAtomic(this.jobFile(state.jobId), `${JSON.stringify(state, null, 2)}\n`);
  }

  readRun(runId: string): Promise<RunRecord | null> {
    return readJson<RunRecord>(path.join(this.runDir(runId), 'run.json'));
  }

  async writeRun(record: RunRecord): Promise<void> {
    await mkdir(this.runDir(record.runId), { recursive: true });
    await writeFileAtomic(
      path.join(this.runDir(record.runId), 'run.json'),
      `${JSON.stringify(record, null, 2)}\n`,
    );
  }

  async writeRunFile(runId: string, name: string, text: string): Promise<string> {
    const file = path.join(this.runDir(runId), name);
    await writeFileAtomic(file, text);
    return file;
  }

  /**
   * Runs that did not finish and that no later run took over: marked running by a runner that
   * died, or interrupted (SIGINT, SIGTERM). Their unfinished jobs are this run's to finish.
   */
  async deadRuns(): Promise<RunRecord[]> {
    const names = await readdir(path.join(this.root, 'runs')).catch(() => [] as string[]);
    const dead: RunRecord[] = [];
    for (const name of names.sort()) {
      const record = await this.readRun(name);
      if (record === null) continue;
      const died = record.status === 'running' && writerIsGone(record.writer);
      if (died || (record.status === 'interrupted' && record.resumedBy === undefined)) dead.push(record);
    }
    return dead;
  }
}
