// 7z archives, Microsoft cabinets (LVFS .cab: firmware plus metainfo.xml) and self-extracting
// archives (an .exe or ELF stub with a 7z, cab or rar archive appended), unpacked by Debian's
// 7z (p7zip-full) through a bounded child process (bounded-child.ts). The archive is listed
// first (`7z l -slt`) and refused before anything is written when an entry is absolute, climbs
// out with "..", is a symlink or a special file, is encrypted, or a size bound would be
// crossed; then it is extracted into a fresh temp dir that is removed on every path, and what
// was written is checked again (only regular files and directories, inside the temp dir).
import { lstat, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FormatError, OvmfBuildError } from '../core/errors.js';
import { runBounded } from './bounded-child.js';
import { checkEntryCount, checkEntrySize, checkRatio } from './limits.js';
import type { PackageChild, UnpackContext, Unpacker } from './unpacker.js';

const SEVEN_ZIP = '7z';
/** Most bytes of `7z l` output read: about 200 bytes an entry. */
const LISTING_BYTES_PER_ENTRY = 1024;
const SIG_7Z = Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]);
const SIG_CAB = Buffer.from('MSCF\0\0\0\0', 'latin1');
const SIG_RAR = Buffer.from('Rar!\x1a\x07', 'latin1');
const SIG_ZIP = Buffer.from('PK\x03\x04', 'latin1');
const SIG_ELF = Buffer.from('\x7fELF', 'latin1');

/** One entry of `7z l -slt`. */
export interface ListedEntry {
  readonly path: string;
  readonly sizeInBytes: number;
  readonly directory: boolean;
  /** The Unix file type letter of the mode string ('-' file, 'd', 'l', 'c', ...), or null. */
  readonly unixType: string | null;
  readonly encrypted: boolean;
}

export interface Listing {
  /** 7z's archive type ("7z", "Cab", "zip", "Rar5", ...): the last Type of the header. */
  readonly type: string | null;
  readonly entries: readonly ListedEntry[];
}

function blocks(text: string): Map<string, string>[] {
  return text
    .split(/\n\s*\n/u)
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.split('\n')) {
        const at = line.indexOf(' = ');
        if (at > 0) fields.set(line.slice(0, at), line.slice(at + 3));
      }
      return fields;
    })
    .filter((fields) => fields.has('Path'));
}

/** Parses `7z l -slt` output: the archive header (after "--") and the entries (after "----------"). */
export function parseListing(stdout: string): Listing {
  const text = stdout.replace(/\r/gu, '');
  const split = text.indexOf('\n----------\n');
  const head = split < 0 ? text : text.slice(0, split);
  const types = [...head.matchAll(/^Type = (.*)$/gmu)].map((m) => m[1] ?? '');
  const entries =
    split < 0
      ? []
      : blocks(text.slice(split + 12)).map((fields): ListedEntry => {
          const attributes = fields.get('Attributes') ?? '';
          // "A -rw-r--r--", "D drwxr-xr-x", "A_ -lrwxrwxrwx": Windows letters, then a Unix mode.
          const mode = /(?:^|\s)-?([-dlcbps])[-rwxsStT]{9}$/u.exec(attributes);
          const unixType = mode?.[1] ?? null;
          return {
            path: fields.get('Path') ?? '',
            sizeInBytes: Number(fields.get('Size') ?? '0') || 0,
            directory: fields.get('Folder') === '+' || /^[A-Z_]*D/u.test(attributes) || unixType === 'd',
            unixType,
            encrypted: fields.get('Encrypted') === '+',
          };
        });
  return { type: types.at(-1) ?? null, entries };
}

/** Why an archive path could land outside the directory it is extracted into, or null. */
export function unsafePathReason(entryPath: string): string | null {
  if (entryPath === '' || entryPath.includes('\0')) return 'an empty or NUL-bearing name';
  const slashed = entryPath.replace(/\\/gu, '/');
  if (path.posix.isAbsolute(slashed) || /^[A-Za-z]:/u.test(slashed)) return 'an absolute path';
  if (slashed.split('/').includes('..')) return 'a path that climbs out with ".."';
  return null;
}

function packageError(
  code: 'E_PACKAGE_CORRUPT' | 'E_PACKAGE_UNSAFE_ENTRY' | 'E_PACKAGE_ENCRYPTED' | 'E_PACKAGE_TOO_LARGE',
  format: string,
  context: UnpackContext,
  message: string,
  details: Record<string, unknown> = {},
): FormatError {
  return new FormatError(code, `${context.where}: ${message}`, { where: context.where, format, ...details });
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-4).join(' | ');
}

/** Refuses what must never be extracted; checks the declared sizes against the limits. */
function checkListing(
  listing: Listing,
  format: string,
  packedBytes: number,
  context: UnpackContext,
): ListedEntry[] {
  checkEntryCount(listing.entries.length, format, context);
  const files: ListedEntry[] = [];
  let layerBytes = 0;
  for (const entry of listing.entries) {
    const reason = unsafePathReason(entry.path);
    if (reason !== null) {
      throw packageError(
        'E_PACKAGE_UNSAFE_ENTRY',
        format,
        context,
        `${format} entry ${entry.path} refused: ${reason}`,
        {
          entry: entry.path,
          reason,
        },
      );
    }
    if (entry.unixType === 'l') {
      throw packageError(
        'E_PACKAGE_UNSAFE_ENTRY',
        format,
        context,
        `${format} entry ${entry.path} refused: a symbolic link`,
        {
          entry: entry.path,
          reason: 'a symbolic link',
        },
      );
    }
    if (entry.directory) continue;
    if (entry.unixType !== null && entry.unixType !== '-') {
      throw packageError(
        'E_PACKAGE_UNSAFE_ENTRY',
        format,
        context,
        `${format} entry ${entry.path} refused: a special file`,
        {
          entry: entry.path,
          reason: 'a special file',
        },
      );
    }
    if (entry.encrypted) {
      throw packageError(
        'E_PACKAGE_ENCRYPTED',
        format,
        context,
        `${format} entry ${entry.path} is encrypted`,
        {
          entry: entry.path,
        },
      );
    }
    layerBytes += entry.sizeInBytes;
    checkEntrySize(entry.path, entry.sizeInBytes, layerBytes, format, context);
    files.push(entry);
  }
  checkRatio(packedBytes, layerBytes, format, context);
  return files;
}

/** Everything under `dir` must be a directory or a regular file (no links, devices, FIFOs). */
async function assertPlainTree(
  dir: string,
  root: string,
  format: string,
  context: UnpackContext,
): Promise<void> {
  for (const name of await readdir(dir)) {
    const full = path.join(dir, name);
    const info = await lstat(full);
    if (info.isDirectory()) await assertPlainTree(full, root, format, context);
    else if (!info.isFile()) {
      const entry = path.relative(root, full);
      throw packageError(
        'E_PACKAGE_UNSAFE_ENTRY',
        format,
        context,
        `${format} entry ${entry} refused: not a regular file`,
        {
          entry,
          reason: 'not a regular file',
        },
      );
    }
  }
}

async function unpackWith7z(
  bytes: Uint8Array,
  context: UnpackContext,
  format: string,
  types: readonly string[],
): Promise<PackageChild[]> {
  const { limits } = context;
  const temp = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-unpack-'));
  try {
    const input = path.join(temp, 'package');
    const out = path.join(temp, 'out');
    await writeFile(input, bytes);
    const common = { timeoutMs: limits.timeoutMs, signal: context.signal, cwd: temp };
    // -p with no password: an encrypted archive fails instead of asking on a terminal.
    const list = await runBounded(SEVEN_ZIP, ['l', '-slt', '-p', '--', input], {
      ...common,
      maxOutputBytes: (limits.maxEntries + 16) * LISTING_BYTES_PER_ENTRY,
    });
    const listing = parseListing(list.stdout);
    if (list.exitCode !== 0 || listing.type === null || !types.includes(listing.type)) {
      throw packageError(
        'E_PACKAGE_CORRUPT',
        format,
        context,
        `7z cannot open it as a ${format}${listing.type === null ? '' : ` (it sees ${listing.type})`}: ${lastLines(list.stderr || list.stdout)}`,
        { exitCode: list.exitCode, type: listing.type },
      );
    }
    const files = checkListing(listing, format, bytes.length, context);
    const extract = await runBounded(SEVEN_ZIP, ['x', '-y', '-bd', '-p', `-o${out}`, '--', input], {
      ...common,
      maxOutputBytes: (limits.maxEntries + 16) * LISTING_BYTES_PER_ENTRY,
      maxFileBytes: limits.maxEntryBytes + 1,
    });
    if (extract.signal === 'SIGXFSZ') {
      throw packageError(
        'E_PACKAGE_TOO_LARGE',
        format,
        context,
        `a ${format} entry grew past ${limits.maxEntryBytes} bytes while unpacking (its header lied)`,
        {
          limit: limits.maxEntryBytes,
        },
      );
    }
    if (extract.exitCode !== 0) {
      const text = `${extract.stdout}\n${extract.stderr}`;
      throw /Wrong password/iu.test(text)
        ? packageError('E_PACKAGE_ENCRYPTED', format, context, `the ${format} is encrypted`)
        : packageError(
            'E_PACKAGE_CORRUPT',
            format,
            context,
            `the ${format} is damaged or truncated: ${lastLines(extract.stderr || extract.stdout)}`,
            {
              exitCode: extract.exitCode,
            },
          );
    }
    await assertPlainTree(out, out, format, context).catch((error: unknown) => {
      if (error instanceof OvmfBuildError) throw error;
      // 7z wrote nothing (an archive of directories only): no out dir.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    });
    const children: PackageChild[] = [];
    let layerBytes = 0;
    for (const entry of files) {
      const body = new Uint8Array(await readFile(path.join(out, entry.path)));
      layerBytes += body.length;
      checkEntrySize(entry.path, body.length, layerBytes, format, context);
      children.push({ name: entry.path, bytes: body });
    }
    return children;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

function startsWith(bytes: Uint8Array, signature: Buffer, at = 0): boolean {
  if (bytes.length < at + signature.length) return false;
  for (let i = 0; i < signature.length; i++) if (bytes[at + i] !== signature[i]) return false;
  return true;
}

function contains(bytes: Uint8Array, signature: Buffer): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(signature, 2) >= 0;
}

export const sevenZipUnpacker: Unpacker = {
  name: '7z',
  detect: (bytes) => (startsWith(bytes, SIG_7Z) ? 1 : 0),
  unpack: (bytes, context) => unpackWith7z(bytes, context, '7z', ['7z']),
};

export const cabUnpacker: Unpacker = {
  name: 'cab',
  detect: (bytes) => (startsWith(bytes, SIG_CAB) ? 1 : 0),
  unpack: (bytes, context) => unpackWith7z(bytes, context, 'cab', ['Cab']),
};

/**
 * A PE (.exe) or ELF stub with an archive appended: 7-Zip, IExpress (cab), WinRAR and zip
 * self-extractors. Only a guess (0.5): a flash tool may carry these bytes for other reasons,
 * so a failure here sends the bytes on to the firmware parser instead of failing the package.
 */
export const sfxUnpacker: Unpacker = {
  name: 'self-extracting archive',
  detect(bytes) {
    const stub = (bytes[0] === 0x4d && bytes[1] === 0x5a) || startsWith(bytes, SIG_ELF);
    if (!stub) return 0;
    return contains(bytes, SIG_7Z) ||
      contains(bytes, SIG_CAB) ||
      contains(bytes, SIG_RAR) ||
      contains(bytes, SIG_ZIP)
      ? 0.5
      : 0;
  },
  unpack: (bytes, context) =>
    unpackWith7z(bytes, context, 'self-extracting archive', ['7z', 'Cab', 'Rar', 'Rar5', 'zip']),
};
