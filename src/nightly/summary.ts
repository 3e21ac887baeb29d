// summary.md of a nightly run: the same facts as summary.json, as a table for people (issue 11:
// status, attempts, duration, cache hit or miss, artifact version and error code per recipe).
import type { NightlySummary } from './types.js';

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Where the jobs ran and how many at once: the embedded runner's limit, or the queue's facts. */
function where(summary: NightlySummary): string {
  const { queue } = summary;
  if (queue === undefined) return `concurrency ${summary.concurrency}`;
  const workers =
    queue.workers.length === 0
      ? 'no worker ran a job (all were finished before)'
      : `run by ${queue.workers.length} worker${queue.workers.length === 1 ? '' : 's'} (${queue.workers.join(', ')})`;
  const limit =
    queue.globalConcurrency === null
      ? 'each at its own --concurrency, no global limit'
      : `at most ${queue.globalConcurrency} jobs at once over all workers`;
  return (
    `on the BullMQ queue ${queue.url}: ${queue.enqueued} jobs enqueued, ${queue.joined} already in the queue and joined; ` +
    `${workers}, ${limit}`
  );
}

export function renderSummaryMarkdown(summary: NightlySummary): string {
  const { counts } = summary;
  const lines = [
    `# ovmf-build nightly ${summary.runId}`,
    '',
    `**${summary.status}**: ${counts.succeeded} of ${counts.recipes} recipes succeeded ` +
      `(${counts.cacheHits} cache hits, ${counts.built} built), ${counts.failed} failed, in ${seconds(summary.durationMs)}.`,
    '',
    `Started ${summary.startedAt}, finished ${summary.finishedAt}, ${where(summary)}.`,
  ];
  if (summary.resumedRuns.length > 0) {
    lines.push('', `Took over the unfinished jobs of: ${summary.resumedRuns.join(', ')}.`);
  }
  lines.push(
    '',
    '| recipe | status | attempts | duration | cache | build path | artifact version | error |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const r of summary.recipes) {
    const error = r.errorCode === null ? '' : `${r.errorCode} (exit ${r.exitCode}): ${r.message ?? ''}`;
    lines.push(
      `| ${cell(r.recipe)} | ${r.status}${r.recovered ? ' (recovered)' : ''} | ${r.attempts} | ${seconds(r.durationMs)} | ` +
        `${r.cache ?? '-'} | ${r.buildPath ?? '-'} | ${r.artifactVersion ?? '-'} | ${cell(error)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
