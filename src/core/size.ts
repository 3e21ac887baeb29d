/**
 * A byte count for messages: the exact number, plus KiB/MiB/GiB when that reads easier
 * ("0 bytes", "1 byte", "4096 bytes (4 KiB)", "268435456 bytes (256 MiB)"). Offsets stay
 * in hex; sizes a person compares with a file listing are decimal.
 */
export function formatSize(sizeInBytes: number | bigint): string {
  const exact = `${String(sizeInBytes)} ${sizeInBytes === 1 || sizeInBytes === 1n ? 'byte' : 'bytes'}`;
  const value = Number(sizeInBytes);
  if (value < 1024) return exact;
  const { scaled, unit } = scaleBinary(value);
  const shown = Number.isInteger(scaled) ? String(scaled) : scaled.toFixed(1);
  return `${exact} (${shown} ${unit})`;
}

/** A short size for table columns: "512 B", "4.0 KiB", "3.5 MiB" (the exact count is in --json). */
export function formatSizeShort(sizeInBytes: number): string {
  if (sizeInBytes < 1024) return `${sizeInBytes} B`;
  const { scaled, unit } = scaleBinary(sizeInBytes);
  return `${scaled.toFixed(1)} ${unit}`;
}

const BINARY_UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const;

/** A count of at least 1024 bytes in the largest binary unit that keeps it at 1 or more (TiB at most). */
function scaleBinary(sizeInBytes: number): { readonly scaled: number; readonly unit: string } {
  let scaled = sizeInBytes / 1024;
  let index = 0;
  while (scaled >= 1024 && index < BINARY_UNITS.length - 1) {
    scaled /= 1024;
    index += 1;
  }
  return { scaled, unit: BINARY_UNITS[index] as string };
}
