// The input guard on real files, FIFOs and devices: a FIFO with no writer would block
// readFile forever and /dev/zero would never end; both must fail at once with a code.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OvmfBuildError } from '../core/errors.js';
import { readInputFile, readInputText, SYNC_READ_MAX_BYTES } from './read-input.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'read-input-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<{ code: string; details: unknown }> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof OvmfBuildError)) throw new Error(`expected an OvmfBuildError, got ${String(error)}`);
  return { code: error.code, details: error.details };
}

describe('readInputFile', () => {
  it('reads a regular file byte for byte, also through a symlink', async () => {
    const file = path.join(dir, 'data.bin');
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff);
    await writeFile(file, bytes);
    await symlink(file, path.join(dir, 'link.bin'));
    expect(await readInputFile(file)).toEqual(bytes);
    expect(await readInputFile(path.join(dir, 'link.bin'))).toEqual(bytes);
    await writeFile(path.join(dir, 'empty'), '');
    expect((await readInputFile(path.join(dir, 'empty'))).length).toBe(0);
  });

  it('reads a file above the synchronous bound through the thread pool, byte for byte', async () => {
    const file = path.join(dir, 'large.bin');
    const bytes = new Uint8Array(SYNC_READ_MAX_BYTES + 4097);
    for (let i = 0; i < bytes.length; i += 4093) bytes[i] = (i >>> 12) & 0xff;
    bytes[bytes.length - 1] = 0x5a;
    await writeFile(file, bytes);
    const read = await readInputFile(file);
    expect(read.length).toBe(bytes.length);
    expect(Buffer.compare(read, bytes)).toBe(0);
    expect(await failure(readInputFile(file, { maxBytes: SYNC_READ_MAX_BYTES + 4096 }))).toEqual({
      code: 'E_INPUT_TOO_LARGE',
      details: { path: file, sizeInBytes: SYNC_READ_MAX_BYTES + 4097, maxBytes: SYNC_READ_MAX_BYTES + 4096 },
    });
    await rm(file);
  });

  it('refuses a FIFO without opening it for a blocking read (E_INPUT_NOT_A_FILE)', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const started = performance.now();
    expect(await failure(readInputFile(fifo, { what: 'image' }))).toEqual({
      code: 'E_INPUT_NOT_A_FILE',
      details: { path: fifo, kind: 'a FIFO (named pipe)' },
    });
    // A blocking open never returns (the test's timeout fails it); this bound catches a timed
    // fallback, with room for a loaded CI machine under nice.
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('refuses character devices and directories (E_INPUT_NOT_A_FILE)', async () => {
    expect(await failure(readInputFile('/dev/zero'))).toEqual({
      code: 'E_INPUT_NOT_A_FILE',
      details: { path: '/dev/zero', kind: 'a character device' },
    });
    expect(await failure(readInputFile(dir))).toEqual({
      code: 'E_INPUT_NOT_A_FILE',
      details: { path: dir, kind: 'a directory' },
    });
  });

  it('refuses a file above the limit with both sizes (E_INPUT_TOO_LARGE), readable in the message', async () => {
    const file = path.join(dir, 'big.bin');
    await writeFile(file, new Uint8Array(2048));
    const error = await readInputFile(file, { maxBytes: 1024, what: 'recipe' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OvmfBuildError);
    expect((error as OvmfBuildError).toJSON()).toEqual({
      code: 'E_INPUT_TOO_LARGE',
      message: `recipe ${file} has 2048 bytes (2 KiB), more than the limit of 1024 bytes (1 KiB)`,
      details: { path: file, sizeInBytes: 2048, maxBytes: 1024 },
    });
    expect((await readInputFile(file, { maxBytes: 2048 })).length).toBe(2048);
  });

  it('reads past the stat size of a file that reports 0 bytes (procfs), and stops one byte past the limit', async () => {
    // /proc/version is a regular file whose stat size is 0: the read starts with a 1-byte buffer
    // and grows it, the path a file that grew after its stat takes.
    const expected = new Uint8Array(readFileSync('/proc/version'));
    expect(statSync('/proc/version').size).toBe(0);
    expect(expected.length).toBeGreaterThan(16);
    expect(await readInputFile('/proc/version')).toEqual(expected);
    expect(await failure(readInputFile('/proc/version', { maxBytes: 16 }))).toEqual({
      code: 'E_INPUT_TOO_LARGE',
      details: { path: '/proc/version', sizeInBytes: 17, maxBytes: 16 },
    });
  });

  it('names a missing file E_INPUT_NOT_FOUND and honours an aborted signal', async () => {
    const missing = path.join(dir, 'nope', 'x.efi');
    expect(await failure(readInputFile(missing))).toEqual({
      code: 'E_INPUT_NOT_FOUND',
      details: { path: missing, errno: 'ENOENT' },
    });
    const controller = new AbortController();
    controller.abort();
    expect((await failure(readInputFile(missing, { signal: controller.signal }))).code).toBe('E_ABORTED');
  });

  it('readInputText decodes UTF-8 and limits text inputs to 1 MiB by default', async () => {
    const file = path.join(dir, 'recipe.json');
    await writeFile(file, '{"name":"é"}');
    expect(await readInputText(file)).toBe('{"name":"é"}');
    const big = path.join(dir, 'big.json');
    await writeFile(big, Buffer.alloc(1024 * 1024 + 1, 0x20));
    expect((await failure(readInputText(big))).code).toBe('E_INPUT_TOO_LARGE');
  });
});
