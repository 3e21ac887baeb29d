// A stand-in JobBackend for the job's cache/lock/publish tests: it "builds" in
// milliseconds by deriving firmware bytes from the GOP and VBT, so the tests exercise the
// real cache, lock, publish and CLI code without a twenty-minute EDK2 build. The real
// backend is exercised by test/ovmf-e2e.int.test.ts.
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { CommandContext } from '../src/cli/context.js';
import type { BuildEnvironment, BuildRequest, BuiltFirmware, JobBackend } from '../src/jobs/backend.js';

export const STAND_IN_ENVIRONMENT: BuildEnvironment = {
  edk2SourceDigest: `sha256-${'5'.repeat(64)}`,
  edk2SourceDescription: 'stand-in EDK2',
  overlayDigest: '6'.repeat(64),
  builderImageId: `sha256:${'7'.repeat(64)}`,
  builderImageRef: 'localhost/ovmf-build/edk2-builder:stand-in',
  fromMemo: true,
};

export class StandInBackend implements JobBackend {
  builds = 0;
  leftoverSweeps = 0;
  constructor(readonly environment: BuildEnvironment = STAND_IN_ENVIRONMENT) {}

  resolveEnvironment(): Promise<BuildEnvironment> {
    return Promise.resolve(this.environment);
  }

  removeLeftovers(): Promise<readonly string[]> {
    this.leftoverSweeps += 1;
    return Promise.resolve([]);
  }

  build(request: BuildRequest): Promise<BuiltFirmware> {
    this.builds += 1;
    request.onProgress('stand-in build');
    const seed = createHash('sha256').update(request.gop).update(request.vbt).digest();
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

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

export interface Captured {
  readonly ctx: CommandContext;
  stdout(): string;
  stderr(): string;
}

/** A CommandContext with captured output, the given env and cwd. */
export function captureContext(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Captured {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  return {
    ctx: { argv, stdout, stderr, env, cwd, signal: new AbortController().signal },
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
  };
}
