// The checks every unpacker makes against PackageLimits, one copy each so zip, 7z and the
// outside-in loop refuse the same things with the same codes and messages.
import { FormatError } from '../core/errors.js';
import type { PackageChild, UnpackContext } from './unpacker.js';

/** Refuses a layer with more entries than limits.maxEntries. */
export function checkEntryCount(count: number, format: string, context: UnpackContext): void {
  if (count > context.limits.maxEntries) {
    throw new FormatError(
      'E_PACKAGE_TOO_MANY_ENTRIES',
      `${context.where}: the ${format} holds ${count} entries, more than the limit of ${context.limits.maxEntries}`,
      { where: context.where, format, entries: count, limit: context.limits.maxEntries },
    );
  }
}

/**
 * Refuses an entry larger than limits.maxEntryBytes, or one that takes this layer's running
 * total (`layerBytes`, the entry included) plus what earlier layers unpacked past
 * limits.maxTotalBytes. Called with declared sizes before anything is unpacked, and with
 * the real count while bytes arrive (a header can lie).
 */
export function checkEntrySize(
  name: string,
  sizeInBytes: number,
  layerBytes: number,
  format: string,
  context: UnpackContext,
): void {
  const { maxEntryBytes, maxTotalBytes } = context.limits;
  if (sizeInBytes > maxEntryBytes) {
    throw new FormatError(
      'E_PACKAGE_TOO_LARGE',
      `${context.where}: ${format} entry ${name} unpacks to more than the limit of ${maxEntryBytes} bytes per entry`,
      { where: context.where, format, entry: name, sizeInBytes, limit: maxEntryBytes },
    );
  }
  if (context.unpackedBytes + layerBytes > maxTotalBytes) {
    throw new FormatError(
      'E_PACKAGE_TOO_LARGE',
      `${context.where}: at ${format} entry ${name} the package unpacks to more than the limit of ${maxTotalBytes} bytes in all`,
      {
        where: context.where,
        format,
        entry: name,
        sizeInBytes: context.unpackedBytes + layerBytes,
        limit: maxTotalBytes,
      },
    );
  }
}

/** Refuses a layer whose children expand past limits.maxRatio times its own size (a bomb). */
export function checkRatio(
  packedBytes: number,
  unpackedBytes: number,
  format: string,
  context: UnpackContext,
): void {
  const { maxRatio, ratioFloorBytes } = context.limits;
  if (unpackedBytes > ratioFloorBytes && unpackedBytes > packedBytes * maxRatio) {
    throw new FormatError(
      'E_PACKAGE_RATIO',
      `${context.where}: the ${format} of ${packedBytes} bytes unpacks to ${unpackedBytes} bytes, more than ${maxRatio} times its size: refused as an archive bomb`,
      { where: context.where, format, packedBytes, unpackedBytes, maxRatio },
    );
  }
}

/** Sum of the children's sizes. */
export function childBytes(children: readonly PackageChild[]): number {
  let total = 0;
  for (const child of children) total += child.bytes.length;
  return total;
}
