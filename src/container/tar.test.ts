import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorOf } from '../../test/rejection.js';
import { addEntry, checkEntryName, createPack, extractInMemory, packHostTree, walkHostTree } from './tar.js';

/** Builds a tar archive in memory with tar-stream (what a hostile engine or container could send). */
async function archive(
  entries: readonly (Partial<tar.Header> & { name: string; data?: string })[],
): Promise<Buffer> {
  const pack = tar.pack();
  for (const { data, ...header } of entries) {
    await addEntry(pack, header, data === undefined ? undefined : Buffer.from(data));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function extract(
  buffer: Buffer,
  limits?: Parameters<typeof extractInMemory>[1],
): Promise<Map<string, Uint8Array>> {
  return extractInMemory(Readable.from([buffer]), limits);
}

describe('checkEntryName', () => {
  it.each([
    ['FV/OVMF_CODE.fd', 'FV/OVMF_CODE.fd'],
    ['./FV//x.fd', 'FV/x.fd'],
    ['dir/', 'dir'],
  ])('accepts %s as %s', (name, normalised) => {
    expect(checkEntryName(name)).toEqual({ ok: true, name: normalised });
  });

  it.each([
    ['/etc/passwd', 'absolute path'],
    ['../escape', 'path contains `..`'],
    ['a/../../b', 'path contains `..`'],
    ['a\\..\\b', 'path contains `..`'],
    ['C:\\x', 'absolute path'],
    ['./', 'empty path'],
    ['a\0b', 'name contains a NUL byte'],
  ])('refuses %j: %s', (name, reason) => {
    expect(checkEntryName(name)).toEqual({ ok: false, reason });
  });
});

describe('extractInMemory', () => {
  it('returns regular files byte-exact keyed by normalised name, skipping directories', async () => {
    const buffer = await archive([
      { name: 'FV/', type: 'directory' },
      { name: 'FV/OVMF_CODE.fd', data: 'code' },
      { name: './FV/OVMF_VARS.fd', data: 'vars' },
    ]);
    const files = await extract(buffer);
    expect([...files.entries()].map(([k, v]) => [k, Buffer.from(v).toString()])).toEqual([
      ['FV/OVMF_CODE.fd', 'code'],
      ['FV/OVMF_VARS.fd', 'vars'],
    ]);
  });

  it.each([
    [{ name: '/etc/cron.d/x', data: 'evil' }, 'absolute path'],
    [{ name: '../../escape', data: 'evil' }, 'path contains `..`'],
    [
      { name: 'FV/link', type: 'symlink' as const, linkname: '/etc/shadow' },
      'entry type symlink is not allowed',
    ],
    [
      { name: 'FV/hard', type: 'link' as const, linkname: 'FV/OVMF_CODE.fd' },
      'entry type link is not allowed',
    ],
    [
      { name: 'dev', type: 'character-device' as const, devmajor: 1, devminor: 3 },
      'entry type character-device is not allowed',
    ],
    [
      { name: 'blk', type: 'block-device' as const, devmajor: 8, devminor: 0 },
      'entry type block-device is not allowed',
    ],
    [{ name: 'pipe', type: 'fifo' as const }, 'entry type fifo is not allowed'],
  ])(
    'refuses a hostile entry %j with E_ARCHIVE_UNSAFE_ENTRY and returns nothing',
    async (hostile, reason) => {
      const buffer = await archive([{ name: 'FV/OVMF_CODE.fd', data: 'code' }, hostile]);
      const outcome = await errorOf(extract(buffer));
      expect(outcome.code).toBe('E_ARCHIVE_UNSAFE_ENTRY');
      expect((outcome.details as { reason: string }).reason).toBe(reason);
    },
  );

  it('refuses a duplicate name', async () => {
    const buffer = await archive([
      { name: 'a', data: '1' },
      { name: './a', data: '2' },
    ]);
    expect((await errorOf(extract(buffer))).code).toBe('E_ARCHIVE_UNSAFE_ENTRY');
  });

  it('bounds the total size and the entry count with E_ARCHIVE_TOO_LARGE', async () => {
    const buffer = await archive([
      { name: 'a', data: 'x'.repeat(600) },
      { name: 'b', data: 'x'.repeat(600) },
    ]);
    expect((await errorOf(extract(buffer, { maxTotalBytes: 1_000 }))).code).toBe('E_ARCHIVE_TOO_LARGE');
    expect((await errorOf(extract(buffer, { maxEntries: 1 }))).code).toBe('E_ARCHIVE_TOO_LARGE');
    expect((await extract(buffer, { maxTotalBytes: 1_200, maxEntries: 2 })).size).toBe(2);
  });
});

describe('host trees', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-tar-test-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('packs files, directories and inner symlinks that round-trip byte-exact with modes', async () => {
    await mkdir(path.join(root, 'sub/deeper'), { recursive: true });
    const blob = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 251));
    await writeFile(path.join(root, 'sub/deeper/blob.bin'), blob);
    await writeFile(path.join(root, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await symlink('deeper/blob.bin', path.join(root, 'sub/link'));
    const entries = await walkHostTree(root);
    expect(entries.map((e) => `${e.type} ${e.relative}`)).toEqual([
      'file run.sh',
      'directory sub',
      'directory sub/deeper',
      'file sub/deeper/blob.bin',
      'symlink sub/link',
    ]);
    const pack = createPack();
    const done = packHostTree(pack, root, entries, 'edk2/in', { uid: 1000, gid: 1000 }).then(() =>
      pack.finalize(),
    );
    const seen: string[] = [];
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      const hash = createHash('sha256');
      stream.on('data', (chunk: unknown) => hash.update(chunk as Buffer));
      stream.on('end', () => {
        seen.push(
          `${header.type} ${header.name} ${(header.mode ?? 0).toString(8)} ${header.uid}:${header.gid} ${header.linkname ?? ''} ${header.type === 'file' ? hash.digest('hex').slice(0, 12) : ''}`.trim(),
        );
        next();
      });
    });
    pack.pipe(extract);
    await Promise.all([done, new Promise<void>((resolve) => extract.on('finish', () => resolve()))]);
    const blobHash = createHash('sha256').update(blob).digest('hex').slice(0, 12);
    const scriptHash = createHash('sha256').update('#!/bin/sh\n').digest('hex').slice(0, 12);
    expect(seen).toEqual([
      `file edk2/in/run.sh 755 1000:1000  ${scriptHash}`,
      'directory edk2/in/sub 755 1000:1000',
      'directory edk2/in/sub/deeper 755 1000:1000',
      `file edk2/in/sub/deeper/blob.bin 644 1000:1000  ${blobHash}`,
      'symlink edk2/in/sub/link 777 1000:1000 deeper/blob.bin',
    ]);
  });

  it.each([
    ['/etc/passwd', 'absolute'],
    ['../../outside', 'escaping'],
  ])('refuses a symlink to %s (%s) before packing anything', async (target) => {
    await mkdir(path.join(root, 'sub'));
    await symlink(target, path.join(root, 'sub/bad'));
    expect((await errorOf(walkHostTree(root))).code).toBe('E_INPUT_UNSAFE_ENTRY');
  });

  it('refuses a fifo', async () => {
    execFileSync('mkfifo', [path.join(root, 'pipe')]);
    expect((await errorOf(walkHostTree(root))).code).toBe('E_INPUT_UNSAFE_ENTRY');
  });

  it('refuses a missing or non-directory root', async () => {
    expect((await errorOf(walkHostTree(path.join(root, 'missing')))).code).toBe('E_INPUT_NOT_FOUND');
    await writeFile(path.join(root, 'file'), 'x');
    expect((await errorOf(walkHostTree(path.join(root, 'file')))).code).toBe('E_INPUT_NOT_A_DIRECTORY');
  });
});
