// Variant templates on disk (template-file.ts), one file per warm-workspace key in
// `$XDG_CACHE_HOME/ovmf-build/variant-templates`, so the variant path without a container is
// not limited to one process: `ovmf-build --gop x --vbt y` run again with another VBT (what a
// user does while a screen stays black), the first jobs of a night, a worker after a restart.
// It is only a cache: a file that is missing, damaged, of another format version or another
// key is not used (a damaged one is removed), and any failure to read or write leaves the build
// on the container path. A file appears whole or not at all (writeFileAtomic). At most
// MAX_FILES are kept, the least recently used going first, about 9 MB each at 4 MiB.
import { lstat, mkdir, readdir, readFile, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../core/durable-fs.js';
import { decodeTemplate, encodeTemplate } from './template-file.js';
import type { VariantTemplate } from './variant-templates.js';

/** Template files kept (one per workspace key in use: flags, builder image, EDK2 source). */
export const MAX_TEMPLATE_FILES = 4;
/** Larger than any template of a 4 MiB build (about 9 MB): a bigger file is not read. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const SUFFIX = '.template';
/** A temp file of a write this old was left by a killed process (a write takes well under a second). */
const STALE_TEMP_MS = 600_000;
/** Workspace keys are hex digests (edk2/workspace key): nothing else names a file here. */
const KEY_RE = /^[0-9a-f]{8,128}$/;

export interface TemplateStoreOptions {
  /** Files kept at most. @default MAX_TEMPLATE_FILES */
  readonly maxFiles?: number;
}

export class TemplateStore {
  readonly dir: string;
  readonly #maxFiles: number;

  constructor(dir: string, options: TemplateStoreOptions = {}) {
    const maxFiles = options.maxFiles ?? MAX_TEMPLATE_FILES;
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 1) {
      throw new TypeError(`Expected \`maxFiles\` to be a positive integer, got \`${String(maxFiles)}\``);
    }
    this.dir = dir;
    this.#maxFiles = maxFiles;
  }

  fileOf(key: string): string {
    if (!KEY_RE.test(key)) throw new TypeError(`Expected \`key\` to be a hex workspace key, got \`${key}\``);
    return path.join(this.dir, `${key}${SUFFIX}`);
  }

  /** The template of `key`, or undefined (none, or not usable: logged, and a damaged file removed). */
  async load(key: string, logger?: Logger): Promise<VariantTemplate | undefined> {
    const file = this.fileOf(key);
    const info = await lstat(file).catch(() => null);
    if (info === null) return undefined;
    if (!info.isFile() || info.size > MAX_FILE_BYTES) {
      logger?.warn(
        { file, size: info.size },
        'build: variant template on disk ignored (not a regular file of a template size)',
      );
      return undefined;
    }
    let bytes: Uint8Array;
    try {
      const read = await readFile(file);
      // A plain Uint8Array over the file's own memory: the template's images are views of it.
      bytes = new Uint8Array(read.buffer, read.byteOffset, read.length);
    } catch (error) {
      logger?.warn({ file, err: error }, 'build: variant template on disk could not be read');
      return undefined;
    }
    const decoded = decodeTemplate(bytes, key);
    if (!decoded.ok) {
      logger?.warn({ file, reason: decoded.reason }, 'build: variant template on disk is damaged; removed');
      await rm(file, { force: true }).catch(() => undefined);
      return undefined;
    }
    // Its modification time is its last use: the least recently used file goes first.
    const now = new Date();
    await utimes(file, now, now).catch(() => undefined);
    return decoded.template;
  }

  /**
   * Writes the template of `key` (replacing an older one), then removes the least recently used
   * files beyond the limit. Returns the file, or null when the template cannot be stored.
   */
  async save(key: string, template: VariantTemplate): Promise<string | null> {
    const file = this.fileOf(key);
    const bytes = encodeTemplate(key, template);
    if (bytes === null) return null;
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(file, bytes, 0o600);
    await this.#trim(file);
    return file;
  }

  /**
   * Removes the least recently used template files beyond the limit (never `keep`, just
   * written), and temp files of writes killed over 10 min ago.
   */
  async #trim(keep: string): Promise<void> {
    const now = Date.now();
    const others: { file: string; mtimeMs: number }[] = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const file = path.join(this.dir, name);
      const template = name.endsWith(SUFFIX) && KEY_RE.test(name.slice(0, -SUFFIX.length));
      // writeFileAtomic's temp name: `.<name>.<random>.tmp`.
      const temp = name.startsWith('.') && name.endsWith('.tmp') && name.includes(SUFFIX);
      if ((!template && !temp) || file === keep) continue;
      const info = await lstat(file).catch(() => null);
      if (info?.isFile() !== true) continue;
      if (template) others.push({ file, mtimeMs: info.mtimeMs });
      else if (now - info.mtimeMs > STALE_TEMP_MS) await rm(file, { force: true });
    }
    others.sort((a, b) => b.mtimeMs - a.mtimeMs || a.file.localeCompare(b.file));
    for (const entry of others.slice(this.#maxFiles - 1)) await rm(entry.file, { force: true });
  }
}
