// CRC-32 as in IEEE 802.3 (reflected polynomial 0xEDB88320, initial and final XOR
// 0xFFFFFFFF): the value EFI_CRC32_GUIDED_SECTION (PI spec vol. 3, 2.1.5.3) and
// EFI_CAPSULE headers store, and what EDK2's CalculateCrc32 returns.

/**
 * Slicing-by-8 tables: slicingTables[k][b] is the CRC of byte b followed by k zero bytes. Made on the
 * first checksum, not when the module loads: an `extract` of an image without a CRC32 section
 * (OVMF_VARS) would pay about 0.7 ms of its cold start for nothing.
 */
let slicingTables: readonly Uint32Array[] | undefined;

function makeTables(): readonly Uint32Array[] {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const first = tables[0]!;
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 1 ? (crc >>> 1) ^ 0xedb8_8320 : crc >>> 1;
    }
    first[byte] = crc >>> 0;
  }
  for (let byte = 0; byte < 256; byte++) {
    for (let k = 1; k < 8; k++) {
      const previous = tables[k - 1]![byte]!;
      tables[k]![byte] = (previous >>> 8) ^ first[previous & 0xff]!;
    }
  }
  return tables;
}

/**
 * Continues a CRC-32 over `data`. Pass the result of a previous call as `previous`
 * to checksum data that arrives in pieces.
 */
export function crc32(data: Uint8Array, previous = 0): number {
  slicingTables ??= makeTables();
  const [t0, t1, t2, t3, t4, t5, t6, t7] = slicingTables as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let crc = ~previous >>> 0;
  let index = 0;
  const length = data.length;
  const bulkEnd = length - (length % 8);
  while (index < bulkEnd) {
    const low =
      (crc ^
        (data[index]! | (data[index + 1]! << 8) | (data[index + 2]! << 16) | (data[index + 3]! << 24))) >>>
      0;
    crc =
      t7[low & 0xff]! ^
      t6[(low >>> 8) & 0xff]! ^
      t5[(low >>> 16) & 0xff]! ^
      t4[low >>> 24]! ^
      t3[data[index + 4]!]! ^
      t2[data[index + 5]!]! ^
      t1[data[index + 6]!]! ^
      t0[data[index + 7]!]!;
    index += 8;
  }
  while (index < length) {
    crc = (crc >>> 8) ^ t0[(crc ^ data[index]!) & 0xff]!;
    index++;
  }
  return ~crc >>> 0;
}
