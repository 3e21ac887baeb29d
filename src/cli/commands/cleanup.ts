import path from 'node:path';
import pino from 'pino';
import { defineCommand } from '../command-args.js';
import { writeJson, writeLine } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { connectEngine } from '../../container/index.js';
import { userCacheDir } from '../../cache/paths.js';
import { WORKSPACE_REPOSITORY } from '../../edk2/build.js';
import {
  keepWorkspacesOf,
  parseKeep,
  pruneWorkspaces,
  WorkspaceUse,
} from '../../edk2/workspace-retention.js';
import { TOOLS_REPOSITORY } from '../../edk2/tools-image.js';

const USAGE = [
  'usage: ovmf-build cleanup [--all] [--job <id>] [--workspaces | --keep-workspaces N] [--json]',
  '',
  'Removes containers left behind by ovmf-build runs whose process is gone (found by their',
  'ovmf-build.job label), sockets of private podman services whose owner is gone, untagged',
  'warm-workspace images replaced by a newer build, and the warm workspaces beyond the N most',
  'recently used (not with --job). A workspace used within the last hour and an image that a',
  'container still uses are never removed. A build that commits a workspace does the same.',
  '',
  '  --all                 remove every ovmf-build container, also those of running jobs',
  '  --job <id>            only containers of this job (label ovmf-build.job=<id>), no images',
  '  --workspaces          also remove every warm workspace (about 1 GB each) and the EDK2 tools',
  '                        images (source + compiled BaseTools); the next build is clean',
  '  --keep-workspaces N   warm workspaces to keep (default: OVMF_BUILD_KEEP_WORKSPACES, else 3)',
  '  --json                print {"removed": [container ids], "images": {"removed": [...], "inUse": [...]}}',
].join('\n');

export const command = defineCommand({
  name: 'cleanup',
  summary: 'remove containers left by crashed runs',
  usage: USAGE,
  options: {
    all: { type: 'boolean' },
    job: { type: 'string' },
    workspaces: { type: 'boolean' },
    'keep-workspaces': { type: 'string' },
    json: { type: 'boolean' },
  },
  allowPositionals: false,
  async run(ctx, { values }) {
    if (values.job === '') {
      throw new UsageError('--job needs a job id');
    }
    if (values.job !== undefined && values.workspaces === true) {
      throw new UsageError('--workspaces removes images, which belong to no job: use it without --job');
    }
    if (values['keep-workspaces'] !== undefined && (values.workspaces === true || values.job !== undefined)) {
      throw new UsageError(
        '--keep-workspaces goes with neither --workspaces (which removes them all) nor --job',
      );
    }
    const retention = {
      use: new WorkspaceUse(path.join(userCacheDir(ctx.env), 'workspace-use')),
      keep:
        values['keep-workspaces'] === undefined
          ? keepWorkspacesOf(ctx.env)
          : parseKeep(values['keep-workspaces'], '--keep-workspaces'),
    };
    const logger = pino({ level: ctx.env['OVMF_BUILD_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
    await using engine = await connectEngine({ env: ctx.env, logger, signal: ctx.signal });
    const removed = await engine.removeLeftovers({
      all: values.all === true,
      ...(values.job === undefined ? {} : { jobId: values.job }),
    });
    // After the containers, so images only they used can go in the same run. Images belong to
    // no job: a run limited to one job's containers leaves them alone.
    let images: { removed: readonly string[]; inUse: readonly string[] } = { removed: [], inUse: [] };
    if (values.job === undefined) {
      // The workspaces beyond the ones kept first: their tags go, so the untagged images
      // left behind are pruned next in the same run.
      const workspaces =
        values.workspaces === true
          ? { removed: [], inUse: [] }
          : await pruneWorkspaces(engine, WORKSPACE_REPOSITORY, retention, logger);
      const pruned = await engine.pruneImages(
        values.workspaces === true ? { repositories: [WORKSPACE_REPOSITORY, TOOLS_REPOSITORY] } : {},
      );
      if (values.workspaces === true) await retention.use.forgetAllBut(WORKSPACE_REPOSITORY, new Set());
      images = {
        removed: [...workspaces.removed, ...pruned.removed],
        inUse: [...workspaces.inUse, ...pruned.inUse],
      };
    }
    if (values.json === true) {
      writeJson(ctx.stdout, { removed, images });
    } else {
      const short = (ref: string): string => (ref.startsWith('sha256:') ? ref.slice(7, 19) : ref);
      writeLine(
        ctx.stdout,
        removed.length === 0
          ? 'no leftover containers'
          : `removed ${removed.length} container(s): ${removed.map((id) => id.slice(0, 12)).join(' ')}`,
      );
      if (values.job === undefined) {
        writeLine(
          ctx.stdout,
          images.removed.length === 0
            ? 'no stale images'
            : `removed ${images.removed.length} image(s): ${images.removed.map(short).join(' ')}`,
        );
      }
      if (images.inUse.length > 0) {
        writeLine(
          ctx.stdout,
          `kept ${images.inUse.length} image(s) still used by a container: ${images.inUse.map(short).join(' ')}`,
        );
      }
    }
    return 0;
  },
});
