// Templates for the variant path without a container: per warm-workspace key, the images of one
// build made from exactly the compiled inputs that key names, and the GOP and VBT it packaged. A
// later build in the same process with that key makes only the IGD volume again over them
// (igd-volume.ts spliceIgdVolume), in milliseconds, instead of starting a container from the
// committed workspace (2-4 s here) and running GenSec, GenFfs and GenFv in it. It also need not
// wait for a clean build's workspace commit (10-17 s here): a template is left when the clean
// build's outputs come out, before the commit. Every job session keeps one set
// (jobs/session.ts), backed by a TemplateStore on disk (template-store.ts): each template
// offered is also written there, and a key this process has none of is looked up there
// (load), so a later process makes its variants without a container too.
import type { Logger } from 'pino';
import type { IgdVolumeTemplate } from './igd-volume.js';
import type { TemplateStore } from './template-store.js';

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
  readonly #store: TemplateStore | undefined;
  readonly #logger: Logger | undefined;
  /** Writes to the store not yet done (settled() waits for them). */
  readonly #writing = new Set<Promise<void>>();

  /**
   * @param store where templates are also kept for later processes (none: this process only)
   * @param logger for the store's outcomes when a call gives none
   */
  constructor(store?: TemplateStore, logger?: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  get(key: string): VariantTemplate | undefined {
    return this.#byKey.get(key);
  }

  /**
   * The template of `key`: this process's, else the store's (then kept here too). Only for a
   * build whose environment was verified in this job: a template found on disk counts as this
   * session's from then on (hasCompiled).
   */
  async load(key: string, logger?: Logger): Promise<VariantTemplate | undefined> {
    const here = this.#byKey.get(key);
    if (here !== undefined || this.#store === undefined) return here;
    const stored = await this.#store.load(key, logger ?? this.#logger).catch(() => undefined);
    if (stored === undefined) return undefined;
    this.#keep(key, stored);
    return this.#byKey.get(key);
  }

  /** Resolves once every template offered so far is written to the store (or failed to be). */
  async settled(): Promise<void> {
    while (this.#writing.size > 0) await Promise.all(this.#writing);
  }

  /** A template of these compiled inputs (VariantTemplate.compiled) is here. */
  hasCompiled(compiled: string): boolean {
    for (const template of this.#byKey.values()) if (template.compiled === compiled) return true;
    return false;
  }

  /**
   * Keeps the first template of a key (the oldest goes beyond MAX_TEMPLATES) and wakes its
   * waiters; a new one is also written to the store, in the background (settled()).
   */
  offer(key: string, template: VariantTemplate, logger?: Logger): void {
    if (!this.#keep(key, template) || this.#store === undefined) return;
    const log = logger ?? this.#logger;
    const writing: Promise<void> = this.#store
      .save(key, template)
      .then(
        (file) => log?.debug({ file, key }, 'build: variant template kept on disk'),
        (error: unknown) =>
          log?.warn({ err: error, key }, 'build: variant template could not be kept on disk'),
      )
      .finally(() => this.#writing.delete(writing));
    this.#writing.add(writing);
  }

  /** Keeps `template` unless `key` has one (true when it was kept), and wakes the key's waiters. */
  #keep(key: string, template: VariantTemplate): boolean {
    const kept = !this.#byKey.has(key);
    if (kept) {
      this.#byKey.set(key, template);
      for (const oldest of this.#byKey.keys()) {
        if (this.#byKey.size <= MAX_TEMPLATES) break;
        this.#byKey.delete(oldest);
      }
    }
    const waiters = this.#waiting.get(key);
    this.#waiting.delete(key);
    for (const wake of waiters ?? []) wake();
    return kept;
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
