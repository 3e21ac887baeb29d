// Test helper: archives made for the vendor-package tests. Real firmware from the corpus is
// wrapped with 7z itself (the reference tool: `7z a`), and the few malformed zips a tool will
// not write (a "../" name, an absolute name) are written here byte by byte (APPNOTE 6.3,
// stored or deflated entries) around harmless bytes or zeros, as is a stored cabinet ([MS-CAB],
// for nesting other bytes in a cab): nothing here claims to be a vendor's file.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { afterAll } from 'vitest';

/** A temp dir for one test file, removed after its tests, and `file(name, bytes)` writing into it. */
export function scratchDir(prefix: string): {
  readonly dir: string;
  file(name: string, bytes: Uint8Array): string;
} {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    file(name, bytes) {
      const target = path.join(dir, name);
      writeFileSync(target, bytes);
      return target;
    },
  };
}

/** `7z a <type flags> archive.exe <file...>` (named .exe: an extension, so 7z adds none, that -sfx accepts; -t sets the type) run in a temp dir holding copies of `files`; returns the archive bytes. */
export function sevenZipArchive(
  flags: readonly string[],
  files: readonly string[],
  name = 'archive.exe',
): Uint8Array {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-vendor-fixture-'));
  try {
    for (const file of files) copyFileSync(file, path.join(dir, path.basename(file)));
    execFileSync('7z', ['a', '-bd', '-y', ...flags, name, ...files.map((f) => path.basename(f))], {
      cwd: dir,
      stdio: 'ignore',
    });
    return new Uint8Array(readFileSync(path.join(dir, name)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A zip with exactly these names (and Unix modes, when given), stored or deflated (level 9). */
export function storedZip(
  entries: readonly {
    name: string;
    data: Uint8Array;
    mode?: number;
    /** The uncompressed size the headers claim, when it is to lie. */
    declaredSize?: number;
  }[],
  deflate = false,
): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const crc = crc32(entry.data);
    const body = deflate ? deflateRawSync(entry.data, { level: 9 }) : Buffer.from(entry.data);
    const method = deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    // Method, CRC-32, sizes and name length: the same run of fields in both headers.
    const fields = (header: Buffer, at: number): void => {
      header.writeUInt16LE(method, at);
      header.writeUInt32LE(crc, at + 6);
      header.writeUInt32LE(body.length, at + 10);
      header.writeUInt32LE(entry.declaredSize ?? entry.data.length, at + 14);
      header.writeUInt16LE(name.length, at + 18);
    };
    fields(local, 8);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    // Made by Unix (3) when a mode is given, so the high 16 bits of the attributes are a mode.
    central.writeUInt16LE(entry.mode === undefined ? 20 : 0x0314, 4);
    central.writeUInt16LE(20, 6);
    fields(central, 10);
    central.writeUInt32LE(((entry.mode ?? 0) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, directory, end]));
}

/** Most bytes one CFDATA block holds (MS-CAB: cbData is at most 0x8000). */
const CAB_BLOCK_BYTES = 0x8000;

/**
 * A cabinet with one uncompressed folder holding these files, written as the Microsoft Cabinet
 * Format ([MS-CAB] 2.1-2.4) lays it out: CFHEADER, one CFFOLDER (typeCompress 0), a CFFILE per
 * file, CFDATA blocks with checksum 0 ("no checksum"). Stands for no vendor's file: the real
 * cabinets are in test/fixtures/vendor; this only nests other bytes in a cab (no cab writer is
 * installed here).
 */
export function storedCab(entries: readonly { name: string; data: Uint8Array }[]): Uint8Array {
  const folderData = Buffer.concat(entries.map((e) => Buffer.from(e.data)));
  const files: Buffer[] = [];
  let offsetInFolder = 0;
  for (const entry of entries) {
    const file = Buffer.alloc(16);
    file.writeUInt32LE(entry.data.length, 0);
    file.writeUInt32LE(offsetInFolder, 4);
    file.writeUInt16LE(0x20, 14); // _A_ARCH
    files.push(file, Buffer.from(`${entry.name}\0`, 'latin1'));
    offsetInFolder += entry.data.length;
  }
  const fileTable = Buffer.concat(files);
  const blocks: Buffer[] = [];
  for (let at = 0; at < folderData.length || blocks.length === 0; at += CAB_BLOCK_BYTES) {
    const chunk = folderData.subarray(at, at + CAB_BLOCK_BYTES);
    const header = Buffer.alloc(8);
    header.writeUInt16LE(chunk.length, 4);
    header.writeUInt16LE(chunk.length, 6);
    blocks.push(header, chunk);
  }
  const headerBytes = 36;
  const dataStart = headerBytes + 8 + fileTable.length;
  const total = dataStart + blocks.reduce((n, b) => n + b.length, 0);
  const header = Buffer.alloc(headerBytes);
  header.write('MSCF', 0, 'latin1');
  header.writeUInt32LE(total, 8);
  header.writeUInt32LE(headerBytes + 8, 16); // coffFiles
  header.writeUInt8(3, 24);
  header.writeUInt8(1, 25);
  header.writeUInt16LE(1, 26); // cFolders
  header.writeUInt16LE(entries.length, 28);
  const folder = Buffer.alloc(8);
  folder.writeUInt32LE(dataStart, 0);
  folder.writeUInt16LE(blocks.length / 2, 4);
  return new Uint8Array(Buffer.concat([header, folder, fileTable, ...blocks]));
}
