/**
 * A byte count for messages: the exact number, plus KiB/MiB/GiB when that reads easier
 * ("0 bytes", "1 byte", "4096 bytes (4 KiB)", "268435456 bytes (256 MiB)"). Offsets stay
 * in hex; sizes a person compares with a file listing are decimal.
 */
export function formatSize(sizeInBytes: number | bigint): string {
  const exact = `${String(sizeInBytes)} ${sizeInBytes === 1 || sizeInBytes === 1n ? 'byte' : 'bytes'}`;
  const value = Number(sizeInBytes);
  if (value < 1024) return exact;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'] as const;
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  const shown = Number.isInteger(scaled) ? String(scaled) : scaled.toFixed(1);
  return `${exact} (${shown} ${units[unit] as string})`;
}

/** A short size for table columns: "512 B", "4.0 KiB", "3.5 MiB" (the exact count is in --json). */
export function formatSizeShort(sizeInBytes: number): string {
  if (sizeInBytes < 1024) return `${sizeInBytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'] as const;
  let scaled = sizeInBytes / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${scaled.toFixed(1)} ${units[unit] as string}`;
}
