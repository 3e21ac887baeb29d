// Stand-in stages for the job's cache/lock/publish tests: the environment is fixed and the
// build "builds" in milliseconds by deriving firmware bytes from the GOP and VBT, and the
// verify stage runs with no QEMU, so the tests exercise the real input, key, cache, lock,
// publish and CLI stages without a twenty-minute EDK2 build. The real build and verify
// stages are exercised by test/ovmf-e2e.int.test.ts.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { BuildEnvironment, BuiltFirmware } from '../src/jobs/job-types.js';
import type { PipelineStages } from '../src/jobs/pipeline.js';
import type { BuildInput } from '../src/jobs/stage-build.js';
import { createVerifyStage, type VerifyChecks } from '../src/jobs/stage-verify.js';
import type { StageContext } from '../src/jobs/stage.js';

export const STAND_IN_ENVIRONMENT: BuildEnvironment = {
  edk2SourceDigest: `sha256-${'5'.repeat(64)}`,
  edk2SourceDescription: 'stand-in EDK2',
  overlayDigest: '6'.repeat(64),
  builderImageId: `sha256:${'7'.repeat(64)}`,
  builderImageRef: 'localhost/ovmf-build/edk2-builder:stand-in',
  fromMemo: true,
};

/** Verify checks that check nothing: the stand-in firmware has no volumes and does not boot. */
export const NO_CHECKS: VerifyChecks = {
  structure: () => Promise.resolve(null),
  boot: () => Promise.resolve(null),
};

/**
 * The stand-in stages (`stages`) for runMain/runCache/runBuild: a fixed environment, a build
 * from the GOP and VBT bytes, and the real verify stage with `checks()`. Subclasses change
 * `build` or `checks`.
 */
export class StandInBuild {
  builds = 0;
  constructor(readonly environment: BuildEnvironment = STAND_IN_ENVIRONMENT) {}

  build(input: BuildInput, context: StageContext): Promise<BuiltFirmware> {
    this.builds += 1;
    context.emit({ type: 'progress', line: 'stand-in build' });
    const seed = createHash('sha256').update(input.inputs.gop.bytes).update(input.inputs.vbt.bytes).digest();
    const code = new Uint8Array(0x1_0000).map((_, i) => (seed[i % 32] as number) ^ (i & 0xff));
    const vars = new Uint8Array(0x4000).fill(0xff);
    return Promise.resolve({
      code,
      vars,
      edk2SourceDigest: this.environment.edk2SourceDigest,
      builderImageId: this.environment.builderImageId,
      durationMs: 1,
      facts: { standIn: true },
    });
  }

  checks(): VerifyChecks {
    return NO_CHECKS;
  }

  get stages(): Partial<PipelineStages> {
    return {
      resolveEnvironment: () => Promise.resolve(this.environment),
      build: (input, context) => this.build(input, context),
      verify: createVerifyStage(this.checks()),
    };
  }
}

/** A process env whose home, cache, config and state dirs all lie in `dir` (a fresh temp dir). */
export function isolatedEnv(dir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    HOME: dir,
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_STATE_HOME: path.join(dir, 'state'),
  };
}
