// Templates for the variant path without a container: per warm-workspace key, the images of one
// build made from exactly the compiled inputs that key names, and the GOP and VBT it packaged. A
// later build in the same process with that key makes only the IGD volume again over them
// (igd-volume.ts spliceIgdVolume), in milliseconds, instead of starting a container from the
// committed workspace (2-4 s here) and running GenSec, GenFfs and GenFv in it. It also need not
// wait for a clean build's workspace commit (10-17 s here): a template is left when the clean
// build's outputs come out, before the commit. A nightly run or a worker keeps one per session
// (jobs/session.ts); nothing is kept on disk, so a new process starts from the workspace.
import type { IgdVolumeTemplate } from './igd-volume.js';

export interface VariantTemplate extends IgdVolumeTemplate {
  readonly vars: Uint8Array;
  readonly helperDrivers: { readonly igdAssignment: Uint8Array; readonly gopPolicy: Uint8Array };
  /** The job whose build left it (for the log and the build facts). */
  readonly jobId: string;
  /** The builder image it was compiled in (its id is part of the workspace key). */
  readonly builder: { readonly id: string; readonly ref: string };
  /**
   * The caller's key of the same compiled inputs (jobs/early-rom.ts compiledInputsKey), when
   * given: a job can tell before its build stage that a template will serve it.
   */
  readonly compiled?: string;
}

/** Templates kept at most (about 9 MB each at 4 MiB): one per workspace key in use. */
const MAX_TEMPLATES = 4;

export class VariantTemplates {
  readonly #byKey = new Map<string, VariantTemplate>();
  readonly #waiting = new Map<string, Set<() => void>>();

  get(key: string): VariantTemplate | undefined {
    return this.#byKey.get(key);
  }

  /** A template of these compiled inputs (VariantTemplate.compiled) is here. */
  hasCompiled(compiled: string): boolean {
    for (const template of this.#byKey.values()) if (template.compiled === compiled) return true;
    return false;
  }

  /** Keeps the first template of a key (the oldest goes beyond MAX_TEMPLATES) and wakes its waiters. */
  offer(key: string, template: VariantTemplate): void {
    if (!this.#byKey.has(key)) {
      this.#byKey.set(key, template);
      for (const oldest of this.#byKey.keys()) {
        if (this.#byKey.size <= MAX_TEMPLATES) break;
        this.#byKey.delete(oldest);
      }
    }
    const waiters = this.#waiting.get(key);
    this.#waiting.delete(key);
    for (const wake of waiters ?? []) wake();
  }

  /** Resolves true when a template of `key` is there, false once `signal` aborts first. */
  waitFor(key: string, signal: AbortSignal): Promise<boolean> {
    if (this.#byKey.has(key)) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiters = this.#waiting.get(key) ?? new Set<() => void>();
      this.#waiting.set(key, waiters);
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const onAbort = (): void => {
        waiters.delete(wake);
        if (waiters.size === 0 && this.#waiting.get(key) === waiters) this.#waiting.delete(key);
        resolve(false);
      };
      waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
