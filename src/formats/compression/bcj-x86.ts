// The x86 branch converter ("BCJ") of the LZMA SDK, as EDK2's LzmaF86 sections use it
// (GUID D42AE6BD-1352-4BFB-909A-CA72A6EAE889): LzmaCompress --f86 rewrites the 32-bit
// relative targets of CALL (E8) and JMP (E9) into absolute ones before compressing, so
// the same target repeats; the decoder turns them back. EDK2 runs the converter once
// over the whole buffer with ip 0 and a fresh state (F86GuidedSectionExtraction.c).
//
// Rules (LZMA SDK Bra86.c, xz "x86 BCJ filter"): a candidate is an E8/E9 byte at least
// 5 bytes before the end whose 4-byte operand has a most significant byte of 00 or FF
// (a plausible near target). A 3-bit history records which of the previous three
// bytes were E8/E9 opcodes that were *not* converted; some history patterns make the
// candidate too likely to be inside another instruction, and they skip it.

/** An operand byte that is the sign extension of a target within +-16 MiB. */
const isSignByte = (byte: number): boolean => byte === 0x00 || byte === 0xff;

/** For each history value: may a candidate following it be converted at all. */
const HISTORY_ALLOWS = [true, true, true, false, true, false, false, false] as const;
/** For each history value: which operand byte (counted from the top) is re-checked. */
const HISTORY_BYTE = [0, 1, 2, 2, 3, 3, 3, 3] as const;

/**
 * Decodes x86 BCJ in place over `data` (starting instruction pointer 0) and returns it.
 * The last four bytes are never converted, matching the encoder.
 */
export function decodeBcjX86InPlace(data: Uint8Array): Uint8Array {
  const size = data.length;
  if (size < 5) {
    return data;
  }
  const lastCandidate = size - 5;
  let history = 0;
  let previousCandidate = -4;
  let position = 0;
  while (position <= lastCandidate) {
    if ((data[position]! & 0xfe) !== 0xe8) {
      position++;
      continue;
    }
    const distance = position - previousCandidate;
    if (distance > 3) {
      history = 0;
    } else {
      history = (history << (distance - 1)) & 7;
      if (history !== 0) {
        const checked = data[position + 4 - HISTORY_BYTE[history]!]!;
        if (!HISTORY_ALLOWS[history]! || isSignByte(checked)) {
          previousCandidate = position;
          history = ((history << 1) & 7) | 1;
          position++;
          continue;
        }
      }
    }
    previousCandidate = position;
    if (!isSignByte(data[position + 4]!)) {
      history = ((history << 1) & 7) | 1;
      position++;
      continue;
    }
    // The encoder added the address of the next instruction (position + 5).
    const nextInstruction = position + 5;
    let operand =
      (data[position + 1]! |
        (data[position + 2]! << 8) |
        (data[position + 3]! << 16) |
        (data[position + 4]! << 24)) >>>
      0;
    let target: number;
    for (;;) {
      target = (operand - nextInstruction) >>> 0;
      if (history === 0) {
        break;
      }
      const shift = HISTORY_BYTE[history]! * 8;
      if (!isSignByte((target >>> (24 - shift)) & 0xff)) {
        break;
      }
      operand = (target ^ ((1 << (32 - shift)) - 1)) >>> 0;
    }
    data[position + 1] = target & 0xff;
    data[position + 2] = (target >>> 8) & 0xff;
    data[position + 3] = (target >>> 16) & 0xff;
    data[position + 4] = (target >>> 24) & 1 ? 0xff : 0x00;
    position += 5;
  }
  return data;
}
