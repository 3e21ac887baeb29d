// Zip archives (PKWARE APPNOTE 6.3), the most common wrapper of a vendor's BIOS download,
// read from memory with yauzl: nothing is written to disk. Entries that would escape a
// directory (absolute, "..", backslashes), symlinks and encrypted entries are refused.
import { createRequire } from 'node:module';
import type yauzl from 'yauzl';
import { FormatError, OvmfBuildError } from '../core/errors.js';
import { checkEntryCount, checkEntrySize, checkRatio } from './limits.js';
import type { PackageChild, UnpackContext, Unpacker } from './unpacker.js';

const LOCAL_HEADER = 0x04034b50;
const EMPTY_ARCHIVE = 0x06054b50;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
/** yauzl's own file-name checks (validateFileName): each is a path that could escape. */
const UNSAFE_NAME = /^(?:invalid relative path|absolute path|invalid characters in fileName)/u;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function zipError(error: unknown, context: UnpackContext): OvmfBuildError {
  if (error instanceof OvmfBuildError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (UNSAFE_NAME.test(message)) {
    return new FormatError(
      'E_PACKAGE_UNSAFE_ENTRY',
      `${context.where}: zip entry refused: ${message}`,
      { where: context.where, format: 'zip', reason: message },
      { cause: error },
    );
  }
  return new FormatError(
    'E_PACKAGE_CORRUPT',
    `${context.where}: the zip is damaged or truncated: ${message}`,
    { where: context.where, format: 'zip', reason: message },
    { cause: error },
  );
}

function unsafe(context: UnpackContext, name: string, reason: string): FormatError {
  return new FormatError('E_PACKAGE_UNSAFE_ENTRY', `${context.where}: zip entry ${name} refused: ${reason}`, {
    where: context.where,
    format: 'zip',
    entry: name,
    reason,
  });
}

/** Reads one entry into memory, counting real bytes against the limits as they arrive. */
function readEntry(
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  layerBefore: number,
  context: UnpackContext,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (error, stream) => {
      if (error !== null) {
        reject(zipError(error, context));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        try {
          checkEntrySize(entry.fileName, size, layerBefore + size, 'zip', context);
        } catch (limit) {
          stream.destroy();
          reject(limit);
          return;
        }
        chunks.push(chunk);
      });
      stream.on('error', (streamError) => reject(zipError(streamError, context)));
      stream.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks, size))));
    });
  });
}

async function unpackZip(bytes: Uint8Array, context: UnpackContext): Promise<PackageChild[]> {
  // Loaded only for a zip: `extract` on a plain image does not pay for it. Required, not
  // import()ed: bin/ovmf-build.js runs the CLI bundle as a vm.Script, whose import() goes
  // through a loader hook Node calls experimental (and warns about on stderr).
  const yauzlModule = createRequire(import.meta.url)('yauzl') as typeof yauzl;
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzlModule.fromBufferPromise(asBuffer(bytes), {
      lazyEntries: true,
      decodeStrings: true,
      validateEntrySizes: true,
      strictFileNames: true,
    });
  } catch (error) {
    throw zipError(error, context);
  }
  checkEntryCount(zip.entryCount, 'zip', context);
  const children: PackageChild[] = [];
  let layerBytes = 0;
  try {
    for (;;) {
      const entry = await new Promise<yauzl.Entry | null>((resolve, reject) => {
        const onEntry = (e: yauzl.Entry): void => {
          zip.off('end', onEnd).off('error', onError);
          resolve(e);
        };
        const onEnd = (): void => {
          zip.off('entry', onEntry).off('error', onError);
          resolve(null);
        };
        const onError = (error: unknown): void => {
          zip.off('entry', onEntry).off('end', onEnd);
          reject(zipError(error, context));
        };
        zip.once('entry', onEntry).once('end', onEnd).once('error', onError);
        zip.readEntry();
      });
      if (entry === null) break;
      context.signal?.throwIfAborted();
      const name = entry.fileName;
      // Unix mode in the high 16 bits of the external attributes when made on Unix (APPNOTE 4.4.15).
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      if (name.endsWith('/') || mode === S_IFDIR) continue;
      if (mode === S_IFLNK) throw unsafe(context, name, 'a symbolic link');
      if (mode !== 0 && mode !== S_IFREG)
        throw unsafe(context, name, `a special file (mode ${mode.toString(8)})`);
      if (entry.isEncrypted()) {
        throw new FormatError('E_PACKAGE_ENCRYPTED', `${context.where}: zip entry ${name} is encrypted`, {
          where: context.where,
          format: 'zip',
          entry: name,
        });
      }
      checkEntrySize(name, entry.uncompressedSize, layerBytes + entry.uncompressedSize, 'zip', context);
      checkRatio(bytes.length, layerBytes + entry.uncompressedSize, 'zip', context);
      const body = await readEntry(zip, entry, layerBytes, context);
      layerBytes += body.length;
      children.push({ name, bytes: body });
    }
  } finally {
    zip.close();
  }
  return children;
}

export const zipUnpacker: Unpacker = {
  name: 'zip',
  detect(bytes) {
    if (bytes.length < 22) return 0;
    const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    return magic === LOCAL_HEADER || magic === EMPTY_ARCHIVE ? 1 : 0;
  },
  unpack: unpackZip,
};
