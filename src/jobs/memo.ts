// Memoized resolutions of the build environment (EDK2 source digest, builder image id) so
// a warm run computes its cache key without apt-get or the container engine. Stored as one
// JSON file written atomically; a lost or unreadable memo only costs a slower resolution.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../core/durable-fs.js';

export interface SourceMemo {
  readonly digest: string;
  readonly dir: string;
  readonly description: string;
  /** Validity stamp: changes when the resolution could (e.g. the apt lists' mtime). */
  readonly stamp: string;
}

export interface ImageMemo {
  readonly id: string;
  readonly ref: string;
}

export interface ResolutionMemo {
  readonly sources: Record<string, SourceMemo>;
  readonly images: Record<string, ImageMemo>;
}

export class MemoFile {
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  async read(): Promise<ResolutionMemo> {
    try {
      const parsed = JSON.parse(await readFile(this.#file, 'utf8')) as Partial<ResolutionMemo>;
      return { sources: parsed.sources ?? {}, images: parsed.images ?? {} };
    } catch {
      return { sources: {}, images: {} };
    }
  }

  async update(change: (memo: ResolutionMemo) => ResolutionMemo): Promise<void> {
    const next = change(await this.read());
    await mkdir(path.dirname(this.#file), { recursive: true });
    await writeFileAtomic(this.#file, `${JSON.stringify(next, null, 2)}\n`);
  }
}
