import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB } from './igd-trace.js';
import { isZeroFile } from './igd-run.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'igd-run-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileOf(bytes: Uint8Array): Promise<string> {
  const file = path.join(dir, `f${Math.random().toString(16).slice(2)}.bin`);
  await writeFile(file, bytes);
  return file;
}

describe('isZeroFile (the stolen-memory dump)', () => {
  const size = 3 * MiB + 5;

  it('is true for exactly the size, all zero (chunks of a MiB and a short last one)', async () => {
    expect(await isZeroFile(await fileOf(new Uint8Array(size)), size)).toBe(true);
    expect(await isZeroFile(await fileOf(new Uint8Array(0)), 0)).toBe(true);
  });

  it.each([0, MiB - 1, MiB, 2 * MiB + 7, size - 1])('is false for one non-zero byte at %i', async (at) => {
    const bytes = new Uint8Array(size);
    bytes[at] = 0x80;
    expect(await isZeroFile(await fileOf(bytes), size)).toBe(false);
  });

  it('is false for a dump shorter or longer than asked, even if zero', async () => {
    expect(await isZeroFile(await fileOf(new Uint8Array(size - 1)), size)).toBe(false);
    expect(await isZeroFile(await fileOf(new Uint8Array(size + 1)), size)).toBe(false);
    expect(await isZeroFile(await fileOf(new Uint8Array(0)), size)).toBe(false);
  });
});
