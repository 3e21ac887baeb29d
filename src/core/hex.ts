/** Formatting helpers for offsets and sizes in messages: `0x1a2b0`. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
