import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Command } from '../context.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { connectEngine } from '../../container/index.js';

const USAGE = [
  'usage: ovmf-build cleanup [--all] [--json]',
  '',
  'Removes containers left behind by ovmf-build runs whose process is gone (found by their',
  'ovmf-build.job label), and sockets of private podman services whose owner is gone.',
  '',
  '  --all    remove every ovmf-build container, also those of running jobs',
  '  --json   print {"removed": [container ids]}',
].join('\n');

export const command: Command = {
  name: 'cleanup',
  summary: 'remove containers left by crashed runs',
  usage: USAGE,
  async run(ctx) {
    let values: { all?: boolean; json?: boolean; help?: boolean };
    try {
      ({ values } = parseArgs({
        args: [...ctx.argv],
        options: {
          all: { type: 'boolean' },
          json: { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        },
        allowPositionals: false,
        strict: true,
      }));
    } catch (error) {
      throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    }
    if (values.help === true) {
      writeLine(ctx.stdout, USAGE);
      return 0;
    }
    const logger = pino({ level: ctx.env['OVMF_BUILD_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
    await using engine = await connectEngine({ env: ctx.env, logger, signal: ctx.signal });
    const removed = await engine.removeLeftovers({ all: values.all === true });
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
