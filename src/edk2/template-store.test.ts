import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeTemplate } from './template-file.js';
import { TemplateStore } from './template-store.js';
import { smallTemplate } from '../../test/variant-template-fixture.js';
import { VariantTemplates } from './variant-templates.js';

const key = (n: number): string => n.toString(16).padStart(24, '0');

const template = smallTemplate;

/** A logger whose lines land in `lines` (parsed). */
function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'template-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('TemplateStore', () => {
  it('writes a file per key (mode 0600) that a new store reads back equal', async () => {
    const store = new TemplateStore(path.join(dir, 'templates'));
    const file = await store.save(key(1), template('a'));
    expect(file).toBe(path.join(dir, 'templates', `${key(1)}.template`));
    expect((await stat(file as string)).mode & 0o777).toBe(0o600);
    expect(await readFile(file as string)).toEqual(
      Buffer.from(encodeTemplate(key(1), template('a')) as Uint8Array),
    );
    expect(await new TemplateStore(path.join(dir, 'templates')).load(key(1))).toEqual(template('a'));
    expect(await store.load(key(2))).toBeUndefined();
  });

  it('removes a damaged file and says why; leaves a directory or a link in its place alone', async () => {
    const store = new TemplateStore(dir);
    const file = (await store.save(key(1), template('a'))) as string;
    const bytes = await readFile(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    await writeFile(file, bytes);
    const { logger, lines } = capture();
    expect(await store.load(key(1), logger)).toBeUndefined();
    expect(lines.map((line) => [line['msg'], line['reason']])).toEqual([
      ['build: variant template on disk is damaged; removed', 'gopPolicy does not match its SHA-256'],
    ]);
    expect(await readdir(dir)).toEqual([]);

    await mkdir(store.fileOf(key(2)));
    await symlink(path.join(dir, 'elsewhere'), store.fileOf(key(3)));
    expect([await store.load(key(2), logger), await store.load(key(3), logger)]).toEqual([
      undefined,
      undefined,
    ]);
    expect((await readdir(dir)).sort()).toEqual([`${key(2)}.template`, `${key(3)}.template`]);
  });

  it('keeps the four most recently used files; reading a file counts as a use', async () => {
    const store = new TemplateStore(dir);
    const old = new Date(Date.now() - 60_000);
    for (const n of [1, 2, 3, 4]) {
      await store.save(key(n), template(`job${n}`));
      await utimes(
        store.fileOf(key(n)),
        new Date(old.getTime() + n * 1000),
        new Date(old.getTime() + n * 1000),
      );
    }
    // key 1 is the oldest file, but it was just used.
    expect((await store.load(key(1)))?.jobId).toBe('job1');
    await store.save(key(5), template('job5'));
    expect((await readdir(dir)).sort()).toEqual([1, 3, 4, 5].map((n) => `${key(n)}.template`));
  });

  it('sweeps temp files of killed writes once they are 10 min old', async () => {
    const store = new TemplateStore(dir);
    const stale = path.join(dir, `.${key(9)}.template.0123456789ab.tmp`);
    const fresh = path.join(dir, `.${key(8)}.template.ba9876543210.tmp`);
    await writeFile(stale, 'partial');
    await writeFile(fresh, 'partial');
    const longAgo = new Date(Date.now() - 11 * 60_000);
    await utimes(stale, longAgo, longAgo);
    await store.save(key(1), template('a'));
    expect((await readdir(dir)).sort()).toEqual(
      [fresh, store.fileOf(key(1))].map((f) => path.basename(f)).sort(),
    );
  });

  it('takes only hex workspace keys as file names', () => {
    const store = new TemplateStore(dir);
    expect(() => store.fileOf('../escape')).toThrow(
      new TypeError('Expected `key` to be a hex workspace key, got `../escape`'),
    );
    expect(() => new TemplateStore(dir, { maxFiles: 0 })).toThrow(TypeError);
  });

  it('does not store a template whose OVMF.fd is not VARS then CODE', async () => {
    const store = new TemplateStore(dir);
    const bad = { ...template('a'), combined: new Uint8Array(3) };
    expect(await store.save(key(1), bad)).toBeNull();
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('VariantTemplates with a store', () => {
  it('writes what is offered, and a later process finds it on disk by key', async () => {
    const { logger, lines } = capture();
    const first = new VariantTemplates(new TemplateStore(dir), logger);
    first.offer(key(1), template('clean'));
    first.offer(key(1), template('later', 7)); // the first of a key is kept, and written once
    await first.settled();
    expect(lines.map((line) => line['msg'])).toEqual(['build: variant template kept on disk']);

    const later = new VariantTemplates(new TemplateStore(dir));
    expect(later.get(key(1))).toBeUndefined();
    expect(later.hasCompiled('compiled-clean')).toBe(false);
    const waiting = later.waitFor(key(1), new AbortController().signal);
    expect(await later.load(key(1))).toEqual(template('clean'));
    // Found on disk, it is this process's from then on, and wakes builds waiting for the key.
    expect(await waiting).toBe(true);
    expect([later.get(key(1))?.jobId, later.hasCompiled('compiled-clean')]).toEqual(['clean', true]);
    expect(await later.load(key(2))).toBeUndefined();
  });

  it('without a store, load answers from memory only', async () => {
    await new TemplateStore(dir).save(key(1), template('on-disk'));
    const memory = new VariantTemplates();
    expect(await memory.load(key(1))).toBeUndefined();
    memory.offer(key(1), template('here'));
    await memory.settled();
    expect((await memory.load(key(1)))?.jobId).toBe('here');
  });

  it('a write that fails is logged and the template stays usable in memory', async () => {
    await writeFile(path.join(dir, 'file'), 'not a directory');
    const { logger, lines } = capture();
    const templates = new VariantTemplates(new TemplateStore(path.join(dir, 'file', 'templates')), logger);
    templates.offer(key(1), template('a'));
    await templates.settled();
    expect(lines.map((line) => [line['level'], line['msg']])).toEqual([
      [40, 'build: variant template could not be kept on disk'],
    ]);
    expect(templates.get(key(1))?.jobId).toBe('a');
  });
});
