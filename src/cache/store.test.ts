import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { SAMPLE_KEY_DETAILS as DETAILS } from '../../test/cache-key-details.js';
import { computeCacheKey } from './key.js';
import { CacheStore } from './store.js';
import { tempDirPerTest } from '../../test/temp-dir.js';

const KEY = computeCacheKey(DETAILS);
const CODE = new Uint8Array(4096).map((_, i) => i & 0xff);
const VARS = new Uint8Array(1024).fill(0xff);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
/** A pid far above any pid_max, so never alive. */
const DEAD_PID = 2 ** 30;

const tempDir = tempDirPerTest('ovmf-cache-');
let root: string;
let store: CacheStore;
beforeEach(() => {
  root = tempDir();
  store = new CacheStore({ root });
});

describe('CacheStore put/lookup', () => {
  it('round-trips files with their digests and leaves only the entry dir', async () => {
    expect(await store.lookup(KEY)).toEqual({ hit: false, reason: 'absent' });
    const entry = await store.put(KEY, { 'OVMF_CODE.fd': CODE, 'OVMF_VARS.fd': VARS }, { durationMs: 5 });
    expect(entry.files).toEqual({
      'OVMF_CODE.fd': { sha256: sha(CODE), sizeInBytes: 4096 },
      'OVMF_VARS.fd': { sha256: sha(VARS), sizeInBytes: 1024 },
    });
    const hit = await store.lookup(KEY);
    expect(hit.hit).toBe(true);
    if (!hit.hit) return;
    expect(hit.entry.details).toEqual(DETAILS);
    expect(hit.entry.meta).toEqual({ durationMs: 5 });
    expect(Buffer.compare(hit.files.get('OVMF_CODE.fd') as Uint8Array, CODE)).toBe(0);
    expect((await readdir(root)).sort()).toEqual([KEY.value]);
    expect((await readdir(path.join(root, KEY.value))).sort()).toEqual([
      'OVMF_CODE.fd',
      'OVMF_VARS.fd',
      'entry.json',
    ]);
  });

  it('never serves a temp dir left by a crashed writer, and gc removes it', async () => {
    // A complete-looking entry that never got its final rename (the writer was killed).
    const tmp = path.join(root, `.tmp-${DEAD_PID}-abcdef`);
    await mkdir(tmp, { recursive: true });
    await writeFile(path.join(tmp, 'OVMF_CODE.fd'), CODE);
    expect(await store.lookup(KEY)).toEqual({ hit: false, reason: 'absent' });
    expect(await store.list()).toEqual([]);
    const report = await store.gc();
    expect(report.removed).toEqual([
      { kind: 'temp', path: tmp, reason: `writer process ${DEAD_PID} is gone`, sizeInBytes: 4096 },
    ]);
    expect(await readdir(root)).toEqual([]);
  });

  it('keeps the temp dir of a live writer', async () => {
    const tmp = path.join(root, `.tmp-${process.pid}-abcdef`);
    await mkdir(tmp, { recursive: true });
    expect((await store.gc()).removed).toEqual([]);
    expect(await readdir(root)).toEqual([path.basename(tmp)]);
  });

  it('treats a partial entry (files, no entry.json) as corrupt: removed, never served', async () => {
    const dir = path.join(root, KEY.value);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'OVMF_CODE.fd'), CODE);
    expect(await store.lookup(KEY)).toEqual({
      hit: false,
      reason: 'corrupt',
      corruption: { file: 'entry.json', problem: 'entry.json is missing' },
    });
    expect(await readdir(root)).toEqual([]);
  });

  it('detects a flipped byte, discards the entry, and a rebuild is served afterwards', async () => {
    await store.put(KEY, { 'OVMF_CODE.fd': CODE, 'OVMF_VARS.fd': VARS });
    const file = path.join(root, KEY.value, 'OVMF_CODE.fd');
    const bytes = await readFile(file);
    bytes[100] = (bytes[100] as number) ^ 0x01;
    await writeFile(file, bytes);
    const miss = await store.lookup(KEY);
    expect(miss).toEqual({
      hit: false,
      reason: 'corrupt',
      corruption: {
        file: 'OVMF_CODE.fd',
        problem: `sha256 is ${sha(bytes)} (4096 bytes), entry.json says ${sha(CODE)} (4096 bytes)`,
        expected: sha(CODE),
        actual: sha(bytes),
      },
    });
    expect(await readdir(root)).toEqual([]);
    await store.put(KEY, { 'OVMF_CODE.fd': CODE, 'OVMF_VARS.fd': VARS });
    expect((await store.lookup(KEY)).hit).toBe(true);
  });

  it('detects a missing file and an entry.json edited to other details', async () => {
    await store.put(KEY, { 'OVMF_CODE.fd': CODE, 'OVMF_VARS.fd': VARS });
    await rm(path.join(root, KEY.value, 'OVMF_VARS.fd'));
    expect(await store.lookup(KEY)).toMatchObject({
      reason: 'corrupt',
      corruption: { file: 'OVMF_VARS.fd' },
    });
    await store.put(KEY, { 'OVMF_CODE.fd': CODE });
    const entryFile = path.join(root, KEY.value, 'entry.json');
    const entry = JSON.parse(await readFile(entryFile, 'utf8')) as { details: Record<string, string> };
    entry.details['vbt'] = '0'.repeat(64);
    await writeFile(entryFile, JSON.stringify(entry));
    expect(await store.lookup(KEY)).toEqual({
      hit: false,
      reason: 'corrupt',
      corruption: { file: 'entry.json', problem: 'entry.json is unusable: details do not hash to the key' },
    });
    await store.put(KEY, { 'OVMF_CODE.fd': CODE });
    await writeFile(entryFile, '{"formatVersion":1,');
    expect(await store.lookup(KEY)).toMatchObject({ reason: 'corrupt', corruption: { file: 'entry.json' } });
  });

  it('refuses file names that could escape the entry', async () => {
    await expect(store.put(KEY, { '../x': CODE })).rejects.toThrow('Expected a plain file name, got `../x`');
    await expect(store.put(KEY, { 'entry.json': CODE })).rejects.toThrow(TypeError);
  });
});

describe('explainMiss', () => {
  it('names the inputs that differ from the nearest entry', async () => {
    expect(await store.explainMiss(DETAILS)).toEqual({
      nearest: null,
      differences: [],
      lines: ['the cache is empty: nothing to compare with'],
    });
    await store.put(KEY, { 'OVMF_CODE.fd': CODE });
    const far = computeCacheKey({ ...DETAILS, gop: '1'.repeat(64), vbt: '2'.repeat(64), machine: 'i440fx' });
    await store.put(far, { 'OVMF_CODE.fd': CODE });
    const explanation = await store.explainMiss({ ...DETAILS, vbt: '9a0e1b2c'.repeat(8) });
    expect(explanation.nearest?.key).toBe(KEY.value);
    expect(explanation.lines).toEqual(['vbt changed: 3f1c2a9b.. -> 9a0e1b2c..']);
    expect((await store.explainMiss(DETAILS, { excludeKey: KEY.value })).lines).toEqual([
      'gop changed: 11111111.. -> eeeeeeee..',
      'vbt changed: 22222222.. -> 3f1c2a9b..',
      'machine changed: i440fx -> q35',
    ]);
  });

  it('finds entries and request records by prefix', async () => {
    await store.put(KEY, { 'OVMF_CODE.fd': CODE });
    expect((await store.findByPrefix(KEY.value.slice(0, 8)))?.key).toBe(KEY.value);
    await expect(store.findByPrefix('xyz')).rejects.toMatchObject({ code: 'E_CACHE_BAD_KEY' });
    const other = computeCacheKey({ ...DETAILS, rom: '0'.repeat(64) });
    await store.recordRequest(other);
    expect(await store.requestedDetails(other.value.slice(0, 10))).toEqual({
      key: other.value,
      details: other.details,
    });
  });
});

describe('gc', () => {
  it('removes by age, then by size (least recently used first), with a dry run first', async () => {
    const now = Date.now();
    const keys = ['1', '2', '3'].map((v) => computeCacheKey({ ...DETAILS, buildLogicVersion: v }));
    for (const [index, key] of keys.entries()) {
      await store.put(key, { 'OVMF_CODE.fd': CODE });
      const when = new Date(now - (3 - index) * 10 * 86_400_000);
      await utimes(path.join(root, key.value), when, when);
    }
    const dry = await store.gc({ maxAgeDays: 25, dryRun: true, now });
    expect(dry.removed.map((r) => [r.kind, path.basename(r.path)])).toEqual([['entry', keys[0]?.value]]);
    expect((await store.list()).length).toBe(3);
    const aged = await store.gc({ maxAgeDays: 25, now });
    expect(aged.keptEntries).toBe(2);
    const entrySize = (await store.list())[0]?.sizeInBytes ?? 0;
    const sized = await store.gc({ maxSizeBytes: entrySize + 1, now });
    expect(sized.removed.map((r) => path.basename(r.path))).toEqual([keys[1]?.value]);
    expect((await store.list()).map((l) => l.key)).toEqual([keys[2]?.value]);
  });

  it('removes stale locks (dead pid) and keeps live ones', async () => {
    await mkdir(path.join(root, 'locks'));
    const stale = path.join(root, 'locks', `${'1'.repeat(64)}.lock`);
    const live = path.join(root, 'locks', `${'2'.repeat(64)}.lock`);
    const owner = { host: hostname(), createdAt: new Date().toISOString(), token: 't' };
    await writeFile(stale, JSON.stringify({ ...owner, pid: DEAD_PID }));
    await writeFile(live, JSON.stringify({ ...owner, pid: process.pid }));
    const report = await store.gc();
    expect(report.removed).toEqual([
      { kind: 'lock', path: stale, reason: `stale lock: process ${DEAD_PID} is gone`, sizeInBytes: 0 },
    ]);
    expect(await readdir(path.join(root, 'locks'))).toEqual([path.basename(live)]);
  });
});
