// The shared job options give one answer for the main command, `build` and `cache why`:
// where they once disagreed (hex case of --edk2-sha256, a tarball and a git source together,
// the directory a tarball path is relative to, --no-warm against --clean-build), each is now
// decided once, checked here through each command and through the CLI's exit codes.
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { captureContext } from '../../test/cli-harness.js';
import { CORPUS_DIR } from '../../test/corpus.js';
import type { JobRequest } from '../jobs/job-types.js';
import type { PipelineStages } from '../jobs/pipeline.js';
import type { CommandContext } from './context.js';
import { runBuild } from './commands/build.js';
import { runCache } from './commands/cache.js';
import { runMain } from './commands/ovmf.js';
import { main } from './main.js';
import { isolatedEnv } from '../../test/cache-stand-in.js';
import { tempDirPerTest } from '../../test/temp-dir.js';

const GOP = path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi');
const VBT = path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt');
const DIGEST = 'AB'.repeat(32);

const tempDir = tempDirPerTest('ovmf-job-options-');
let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(() => {
  dir = tempDir();
  env = isolatedEnv(dir);
});

type Runner = (ctx: CommandContext, stages: Partial<PipelineStages>) => Promise<number>;

/** The three commands, each with the argv prefix that selects it. */
const COMMANDS: readonly { name: string; prefix: readonly string[]; run: Runner }[] = [
  { name: 'main', prefix: [], run: runMain },
  { name: 'build', prefix: [], run: runBuild },
  { name: 'cache why', prefix: ['why'], run: runCache },
];
const CLI_PREFIX: Record<string, readonly string[]> = {
  main: [],
  build: ['build'],
  'cache why': ['cache', 'why'],
};

class Stop extends Error {}

/** The request each command hands to its first stage (the stand-in stops there). */
async function requestOf(command: (typeof COMMANDS)[number], argv: readonly string[]): Promise<JobRequest> {
  let seen: JobRequest | undefined;
  const stages: Partial<PipelineStages> = {
    resolveInputs: (request) => {
      seen = request;
      return Promise.reject(new Stop());
    },
  };
  const captured = captureContext([...command.prefix, ...argv], env, dir);
  await expect(command.run(captured.ctx, stages)).rejects.toBeInstanceOf(Stop);
  return seen as JobRequest;
}

async function exitCode(argv: readonly string[]): Promise<{ code: number; stderr: string }> {
  const captured = captureContext(argv, env, dir);
  const code = await main(captured.ctx);
  return { code, stderr: captured.stderr() };
}

describe('one option parser for the job commands', () => {
  it('an upper-case --edk2-sha256 and a relative tarball path give every command the same source', async () => {
    const argv = ['--gop', GOP, '--vbt', VBT, '--edk2-tarball', 'edk2.tar.gz', '--edk2-sha256', DIGEST];
    for (const command of COMMANDS) {
      const request = await requestOf(command, argv);
      expect({ command: command.name, source: request.source }).toEqual({
        command: command.name,
        source: { kind: 'tarball', path: path.join(dir, 'edk2.tar.gz'), sha256: DIGEST.toLowerCase() },
      });
    }
  });

  it('--clean-build means the same request for every command', async () => {
    for (const command of COMMANDS) {
      const request = await requestOf(command, ['--gop', GOP, '--vbt', VBT, '--clean-build']);
      expect([command.name, request.cleanBuild]).toEqual([command.name, true]);
    }
  });

  it('two EDK2 sources, a short digest and the old --no-warm are usage errors (exit 2) for every command', async () => {
    const cases = [
      [
        '--edk2-tarball',
        'x.tar',
        '--edk2-sha256',
        DIGEST,
        '--edk2-git',
        'https://example.invalid/edk2',
        '--edk2-ref',
        'main',
      ],
      ['--edk2-tarball', 'x.tar', '--edk2-sha256', 'abc'],
      ['--edk2-sha256', DIGEST],
      ['--no-warm'],
    ];
    for (const prefix of Object.values(CLI_PREFIX)) {
      for (const extra of cases) {
        const result = await exitCode([...prefix, '--gop', GOP, '--vbt', VBT, ...extra]);
        expect({ argv: [...prefix, ...extra], code: result.code }).toEqual({
          argv: [...prefix, ...extra],
          code: 2,
        });
      }
    }
    const both = await exitCode(['build', '--gop', GOP, '--vbt', VBT, ...(cases[0] as string[])]);
    expect(both.stderr).toContain('give one EDK2 source, not --edk2-tarball and --edk2-git');
  });

  it('a --name that is not one safe path component is a usage error before the job log opens', async () => {
    for (const name of ['../../evil', 'a/b', '.hidden']) {
      const result = await exitCode(['--gop', GOP, '--vbt', VBT, '--name', name, '--out', dir]);
      expect([result.code, result.stderr]).toEqual([
        2,
        `ovmf-build: Expected an artifact name of letters, digits, '.', '_' and '-' (max 64), got \`${name}\`; ` +
          'run `ovmf-build --help` [E_USAGE]\n',
      ]);
    }
  });
});
