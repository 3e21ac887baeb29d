// Little-endian reads at any offset of a byte array, for the parsers that walk headers field by
// field (capsules, PFS, the flash descriptor, IFWI, NVRAM stores). A byte past the end reads as 0,
// so a caller bounds-checks the structure once instead of each field. No I/O.

/** The UINT16 at `at`, little-endian. */
export function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
}

/** The UINT32 at `at`, little-endian, as an unsigned number. */
export function u32(bytes: Uint8Array, at: number): number {
  return (u16(bytes, at) | (u16(bytes, at + 2) << 16)) >>> 0;
}
