// The BullMQ scale-out of the nightly (issue 11 item 4): the only folder that imports bullmq and
// ioredis (eslint.config.js). `nightly --queue` enqueues and waits; `worker` runs the jobs.
export { addRecipeJobAt } from './add-job.js';
export { CONNECT_TIMEOUT_MS, QUEUE_NAME } from './connection.js';
export { runQueuedNightly, type RunQueuedNightlyOptions } from './enqueue.js';
export { parseCronSchedule, localTimeZone, type CronSchedule } from './cron.js';
export { queueJobFacts, type QueueJobFacts } from './inspect.js';
export {
  decodeFailure,
  KEEP_FINISHED_JOBS_S,
  nightlyJobId,
  type JobFailure,
  type NightlyJobData,
  type ScheduleJobResult,
} from './nightly-job.js';
export {
  listNightlySchedules,
  nightlyScheduleId,
  removeNightlySchedule,
  upsertNightlySchedule,
  type NightlyScheduleInfo,
  type UpsertNightlyScheduleOptions,
} from './schedule.js';
export { parseQueueUrl, redactedQueueUrl } from './url.js';
export {
  DEFAULT_LOCK_DURATION_MS,
  runQueueWorker,
  type QueueWorkerEvent,
  type QueueWorkerOptions,
} from './worker.js';
