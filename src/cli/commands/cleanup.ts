import pino from 'pino';
import { parseCommandArgs } from '../args.js';
import type { Command } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { connectEngine } from '../../container/index.js';

const USAGE = [
  'usage: ovmf-build cleanup [--all] [--job <id>] [--json]',
  '',
  'Removes containers left behind by ovmf-build runs whose process is gone (found by their',
  'ovmf-build.job label), and sockets of private podman services whose owner is gone.',
  '',
  '  --all        remove every ovmf-build container, also those of running jobs',
  '  --job <id>   only containers of this job (label ovmf-build.job=<id>)',
  '  --json       print {"removed": [container ids]}',
].join('\n');

export const command: Command = {
  name: 'cleanup',
  summary: 'remove containers left by crashed runs',
  usage: USAGE,
  async run(ctx) {
    const { values } = parseCommandArgs(
      ctx.argv,
      {
        all: { type: 'boolean' },
        job: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      USAGE,
      false,
    );
    if (values.help === true) {
      writeLine(ctx.stdout, USAGE);
      return 0;
    }
    if (values.job === '') {
      throw new UsageError('--job needs a job id');
    }
    const logger = pino({ level: ctx.env['OVMF_BUILD_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
    await using engine = await connectEngine({ env: ctx.env, logger, signal: ctx.signal });
    const removed = await engine.removeLeftovers({
      all: values.all === true,
      ...(values.job === undefined ? {} : { jobId: values.job }),
    });
    if (values.json === true) {
      writeJson(ctx.stdout, { removed });
    } else {
      writeLine(
        ctx.stdout,
        removed.length === 0
          ? 'no leftover containers'
          : `removed ${removed.length} container(s): ${removed.map((id) => id.slice(0, 12)).join(' ')}`,
      );
    }
    return 0;
  },
};
