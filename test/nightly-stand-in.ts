// A stand-in nightly job (issue 10 endorses stand-in stages) for the runner's tests: its key is
// a digest of the recipe's pinned inputs, its "cache" a directory of published entries written
// with the real atomic directory store, its "build" a sleep that logs when it starts and when
// it published. Failures are injected per recipe as registered error codes, so the runner's
// retry decisions go through the real exit-code registry. Real builds: test/nightly.int.test.ts.
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import { writeDirAtomic } from '../src/core/dir-store.js';
import type { ErrorCode } from '../src/core/error-codes.js';
import { AbortError, isOvmfBuildError, OvmfBuildError } from '../src/core/errors.js';
import { recipeInputs, type Recipe } from '../src/jobs/recipe.js';
import type { InputSpec } from '../src/fetch/index.js';
import type { NightlyJob, NightlyOutcome, NightlyStageContext } from '../src/nightly/types.js';

export const MARKER = 'COMPLETE';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A recipe whose pinned inputs are made up from its name (`variant` changes its key). */
export function standInRecipe(name: string, variant = ''): Recipe {
  return {
    name,
    gop: { path: `/nonexistent/${name}.efi`, sha256: sha256(`gop ${name}${variant}`) },
    vbt: { path: `/nonexistent/${name}.vbt`, sha256: sha256(`vbt ${name}`) },
    devices: [],
  };
}

export interface StandInOptions {
  /** Holds `published/<key>/` and `builds.log`. */
  readonly root: string;
  /** @default 50 */
  readonly buildMs?: number;
  /** Per recipe, the error code each successive run attempt throws before one succeeds. */
  readonly failures?: Readonly<Record<string, readonly ErrorCode[]>>;
}

export class StandInJob implements NightlyJob {
  readonly #options: StandInOptions;
  readonly #failures = new Map<string, ErrorCode[]>();
  running = 0;
  maxRunning = 0;

  constructor(options: StandInOptions) {
    this.#options = options;
    for (const [name, codes] of Object.entries(options.failures ?? {})) this.#failures.set(name, [...codes]);
  }

  get buildLog(): string {
    return path.join(this.#options.root, 'builds.log');
  }

  key(recipe: Recipe): Promise<string> {
    // The pinned digests (GOP and VBT, or the firmware image): same inputs, same key.
    const pins = Object.values(recipeInputs(recipe)).map((input: InputSpec) => input.sha256);
    return Promise.resolve(sha256(pins.join(' ')));
  }

  async run(recipe: Recipe, context: NightlyStageContext): Promise<NightlyOutcome> {
    const code = this.#failures.get(recipe.name)?.shift();
    if (code !== undefined)
      throw new OvmfBuildError(code, `stand-in failure ${code}`, { recipe: recipe.name });
    const key = await this.key(recipe);
    const target = path.join(this.#options.root, 'published', key);
    const outcome = (cacheHit: boolean): NightlyOutcome => ({
      cacheHit,
      version: key.slice(0, 8),
      artifactDir: target,
      // Like the real job: the facts' build path, which the runner reports for builds only.
      buildPath: 'stand-in',
    });
    if (
      await stat(path.join(target, MARKER)).then(
        () => true,
        () => false,
      )
    )
      return outcome(true);
    context.onPhase('build');
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await mkdir(this.#options.root, { recursive: true });
      await appendFile(this.buildLog, `${recipe.name} start ${process.pid}\n`);
      try {
        await sleep(this.#options.buildMs ?? 50, undefined, { signal: context.signal });
      } catch {
        throw new AbortError('stand-in build aborted');
      }
      context.onPhase('publish');
      await writeDirAtomic({
        target,
        fill: (dir) => writeFile(path.join(dir, 'OVMF_CODE.fd'), key),
        marker: MARKER,
        existing: () => Promise.resolve(null),
      });
      await appendFile(this.buildLog, `${recipe.name} published ${process.pid}\n`);
    } finally {
      this.running -= 1;
    }
    return outcome(false);
  }

  /** builds.log as lines ("<recipe> start|published <pid>"). */
  async builds(): Promise<string[]> {
    const text = await readFile(this.buildLog, 'utf8').catch(() => '');
    return text.split('\n').filter((line) => line !== '');
  }
}

export const silentLogger = pino({ level: 'silent' });

export const exitCodeOf = (error: unknown): number => (isOvmfBuildError(error) ? exitCodeFor(error) : 70);
