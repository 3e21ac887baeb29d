// Erased flash (all 0xFF, or 0x00 in a volume of erase polarity 0) is most of a big image:
// free space in volumes, gaps between NVRAM stores. Scanning it byte by byte in JavaScript is
// slow in a cold process, before V8 has optimized the loop; a native compare (memcmp) against
// a constant block skips it in large steps, then smaller ones, so at most a few bytes are
// looked at one by one.
const BLOCK_SIZES_IN_BYTES = [0x1_0000, 0x1000, 0x100, 0x10] as const;
const LARGEST_BLOCK = BLOCK_SIZES_IN_BYTES[0];
const ERASED_BLOCKS: Readonly<Record<number, Buffer>> = {
  0x00: Buffer.alloc(LARGEST_BLOCK, 0x00),
  0xff: Buffer.alloc(LARGEST_BLOCK, 0xff),
};

/** Offset of the first byte in [from, to) that is not `value`, or `to`. Never throws. */
export function firstNotErased(bytes: Uint8Array, from: number, to: number, value: number): number {
  const block = ERASED_BLOCKS[value];
  let at = from;
  if (block !== undefined) {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const size of BLOCK_SIZES_IN_BYTES) {
      while (to - at >= size && buffer.compare(block, 0, size, at, at + size) === 0) at += size;
    }
  }
  while (at < to && bytes[at] === value) at++;
  return at;
}
