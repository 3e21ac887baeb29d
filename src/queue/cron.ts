// The `--schedule` cron pattern of `nightly --queue` (issue 11 item 4: BullMQ's
// upsertJobScheduler runs the night from Redis). Checked here, before BullMQ or Redis is
// loaded, with the parser BullMQ itself uses (cron-parser), so a pattern that passes here is
// one the job scheduler accepts, and a bad one is a usage error (exit 2) instead of a failure
// after connecting. cron-parser alone takes a pattern of 4 fields or an empty one (it fills in
// the rest); a night's schedule must say every field, so we ask for 5 or 6.
import { CronExpressionParser } from 'cron-parser';
import { UsageError } from '../core/errors.js';

/** A checked schedule: the pattern, its time zone and when it fires next. */
export interface CronSchedule {
  /** 5 fields (minute hour day month weekday) or 6 (seconds first), or an @alias such as @daily. */
  readonly pattern: string;
  /** The IANA time zone the pattern is read in. */
  readonly tz: string;
  /** When it fires next after `from`, in ms since the epoch. */
  readonly nextMs: number;
}

/** The time zone of this process (what `date` shows), named the IANA way. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/**
 * Checks a cron pattern and a time zone: a bad one is a usage error naming the option.
 * @param tz the IANA zone the pattern is read in; defaults to this process's zone
 */
export function parseCronSchedule(
  pattern: string,
  tz: string = localTimeZone(),
  from = Date.now(),
): CronSchedule {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new UsageError(`--tz must be an IANA time zone such as UTC or Europe/Berlin, got \`${tz}\``, {
      tz,
    });
  }
  const text = pattern.trim();
  const fields = text.split(/\s+/).length;
  const alias = /^@[a-z]+$/.test(text);
  let nextMs: number;
  try {
    if (!alias && fields !== 5 && fields !== 6)
      throw new Error(`${fields === 1 && text === '' ? 0 : fields} fields`);
    nextMs = CronExpressionParser.parse(text, { tz, currentDate: new Date(from) })
      .next()
      .getTime();
  } catch (error) {
    throw new UsageError(
      `--schedule must be a cron pattern of 5 fields (minute hour day month weekday) or 6 (seconds first), ` +
        `e.g. "0 3 * * *", got \`${pattern}\`: ${(error as Error).message}`,
      { schedule: pattern },
    );
  }
  return { pattern: text, tz, nextMs };
}
