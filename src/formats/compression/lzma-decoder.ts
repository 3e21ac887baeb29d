// An LZMA1 decoder that writes into one preallocated buffer of exactly the declared size
// (Igor Pavlov, lzma-specification.txt and its reference decoder LzmaSpec.cpp, public
// domain). The whole output is the dictionary, so memory is the output and nothing else: a
// section that declares 256 MiB costs 256 MiB, where the native decoder's growing vector and
// copy cost about three times that. Used for large sections (see lzma.ts).
import { throwIfAborted } from '../../core/errors.js';
import { corruptError, type CompressionFormat } from './limits.js';
import type { LzmaHeader } from './lzma.js';

// Names and values as in LzmaSpec.cpp (kNumBitModelTotalBits, kNumStates, ...), so each line
// can be checked against the reference decoder.
const NUM_BIT_MODEL_TOTAL_BITS = 11;
const BIT_MODEL_TOTAL = 1 << NUM_BIT_MODEL_TOTAL_BITS;
const NUM_MOVE_BITS = 5;
const PROB_INIT = BIT_MODEL_TOTAL >>> 1;
const TOP_VALUE = 1 << 24;

const NUM_STATES = 12;
const NUM_POS_BITS_MAX = 4;
const NUM_LEN_TO_POS_STATES = 4;
const NUM_ALIGN_BITS = 4;
const START_POS_MODEL_INDEX = 4;
const END_POS_MODEL_INDEX = 14;
const NUM_FULL_DISTANCES = 1 << (END_POS_MODEL_INDEX >>> 1);
const MATCH_MIN_LEN = 2;
/** The smallest dictionary LzmaSpec.cpp uses, whatever the header says. */
const MIN_DICTIONARY_BYTES = 1 << 12;
/** How often (output bytes) a long decode looks at its AbortSignal. */
const ABORT_CHECK_BYTES = 1 << 22;

// Offsets into one Uint16Array of probabilities (LzmaSpec.cpp's CLzmaDecoder members).
const IS_MATCH = 0;
const IS_REP = IS_MATCH + (NUM_STATES << NUM_POS_BITS_MAX);
const IS_REP_G0 = IS_REP + NUM_STATES;
const IS_REP_G1 = IS_REP_G0 + NUM_STATES;
const IS_REP_G2 = IS_REP_G1 + NUM_STATES;
const IS_REP0_LONG = IS_REP_G2 + NUM_STATES;
const POS_SLOT = IS_REP0_LONG + (NUM_STATES << NUM_POS_BITS_MAX);
const POS_DECODERS = POS_SLOT + (NUM_LEN_TO_POS_STATES << 6);
const ALIGN = POS_DECODERS + 1 + NUM_FULL_DISTANCES - END_POS_MODEL_INDEX;
// CLenDecoder: Choice, Choice2, LowCoder[16] (3 bits), MidCoder[16] (3 bits), HighCoder (8 bits).
const LEN_CHOICE = 0;
const LEN_CHOICE2 = 1;
const LEN_LOW = 2;
const LEN_MID = LEN_LOW + (1 << NUM_POS_BITS_MAX) * 8;
const LEN_HIGH = LEN_MID + (1 << NUM_POS_BITS_MAX) * 8;
const LEN_SIZE = LEN_HIGH + 256;
const LEN_DECODER = ALIGN + (1 << NUM_ALIGN_BITS);
const REP_LEN_DECODER = LEN_DECODER + LEN_SIZE;
const LITERALS = REP_LEN_DECODER + LEN_SIZE;

class Decoder {
  readonly #input: Uint8Array;
  readonly #format: CompressionFormat;
  #in: number;
  #range = 0xffff_ffff;
  #code = 0;
  readonly probs: Uint16Array;

  constructor(input: Uint8Array, start: number, format: CompressionFormat, literalStates: number) {
    this.#input = input;
    this.#format = format;
    this.probs = new Uint16Array(LITERALS + 0x300 * literalStates).fill(PROB_INIT);
    if (input.length < start + 5) {
      throw corruptError(format, start, 'the range coder needs 5 bytes after the header');
    }
    if (input[start] !== 0) {
      throw corruptError(format, start, `the range coder's first byte is ${input[start]}, not 0`);
    }
    for (let i = 1; i < 5; i++) this.#code = ((this.#code << 8) | (input[start + i] as number)) >>> 0;
    this.#in = start + 5;
    if (this.#code === this.#range)
      throw corruptError(format, start, 'the range coder starts in an impossible state');
  }

  fail(reason: string): never {
    throw corruptError(this.#format, this.#in, reason);
  }

  #nextByte(): number {
    if (this.#in >= this.#input.length) this.fail('the stream ends before the declared size is decoded');
    return this.#input[this.#in++] as number;
  }

  bit(index: number): number {
    const prob = this.probs[index] as number;
    const bound = (this.#range >>> NUM_BIT_MODEL_TOTAL_BITS) * prob;
    let symbol: number;
    if (this.#code < bound) {
      this.probs[index] = prob + ((BIT_MODEL_TOTAL - prob) >>> NUM_MOVE_BITS);
      this.#range = bound;
      symbol = 0;
    } else {
      this.probs[index] = prob - (prob >>> NUM_MOVE_BITS);
      this.#code -= bound;
      this.#range -= bound;
      symbol = 1;
    }
    if (this.#range < TOP_VALUE) {
      this.#range = (this.#range << 8) >>> 0;
      this.#code = ((this.#code << 8) | this.#nextByte()) >>> 0;
    }
    return symbol;
  }

  directBits(count: number): number {
    let result = 0;
    for (let i = 0; i < count; i++) {
      this.#range >>>= 1;
      let bit = 0;
      if (this.#code >= this.#range) {
        this.#code -= this.#range;
        bit = 1;
      }
      if (this.#code === this.#range) this.fail('the range coder reached an impossible state');
      result = ((result << 1) | bit) >>> 0;
      if (this.#range < TOP_VALUE) {
        this.#range = (this.#range << 8) >>> 0;
        this.#code = ((this.#code << 8) | this.#nextByte()) >>> 0;
      }
    }
    return result;
  }

  bitTree(base: number, bits: number): number {
    let m = 1;
    for (let i = 0; i < bits; i++) m = (m << 1) + this.bit(base + m);
    return m - (1 << bits);
  }

  bitTreeReverse(base: number, bits: number): number {
    let m = 1;
    let symbol = 0;
    for (let i = 0; i < bits; i++) {
      const bit = this.bit(base + m);
      m = (m << 1) + bit;
      symbol |= bit << i;
    }
    return symbol;
  }

  length(base: number, posState: number): number {
    if (this.bit(base + LEN_CHOICE) === 0) return this.bitTree(base + LEN_LOW + posState * 8, 3);
    if (this.bit(base + LEN_CHOICE2) === 0) return 8 + this.bitTree(base + LEN_MID + posState * 8, 3);
    return 16 + this.bitTree(base + LEN_HIGH, 8);
  }

  distance(len: number): number {
    const lenState = Math.min(len, NUM_LEN_TO_POS_STATES - 1);
    const posSlot = this.bitTree(POS_SLOT + (lenState << 6), 6);
    if (posSlot < START_POS_MODEL_INDEX) return posSlot;
    const directBits = (posSlot >>> 1) - 1;
    let dist = ((2 | (posSlot & 1)) << directBits) >>> 0;
    if (posSlot < END_POS_MODEL_INDEX) {
      return dist + this.bitTreeReverse(POS_DECODERS + dist - posSlot, directBits);
    }
    dist = (dist + this.directBits(directBits - NUM_ALIGN_BITS) * (1 << NUM_ALIGN_BITS)) >>> 0;
    return (dist + this.bitTreeReverse(ALIGN, NUM_ALIGN_BITS)) >>> 0;
  }
}

/**
 * Decodes the LZMA stream after `data`'s 13-byte header into a new buffer of exactly
 * `header.uncompressedSizeInBytes` bytes; throws E_DECOMPRESS_CORRUPT for any inconsistency
 * (a distance before the start or past the dictionary, a match past the declared size, a
 * stream that ends early).
 */
export function decodeLzmaInto(
  data: Uint8Array,
  header: LzmaHeader,
  headerSize: number,
  format: CompressionFormat,
  signal?: AbortSignal,
): Uint8Array {
  const size = header.uncompressedSizeInBytes;
  const out = new Uint8Array(size);
  if (size === 0) return out;
  const { lc, lp, pb } = header;
  const d = new Decoder(data, headerSize, format, 1 << (lc + lp));
  const dictionary = Math.max(header.dictionarySizeInBytes, MIN_DICTIONARY_BYTES);
  const pbMask = (1 << pb) - 1;
  const lpMask = (1 << lp) - 1;
  // The decoder state of LzmaSpec.cpp's CLzmaDecoder::Decode (state, rep0..rep3), kept in locals.
  let state = 0;
  let rep0 = 0;
  let rep1 = 0;
  let rep2 = 0;
  let rep3 = 0;
  let pos = 0;
  let nextAbortCheck = ABORT_CHECK_BYTES;
  while (pos < size) {
    if (pos >= nextAbortCheck) {
      throwIfAborted(signal);
      nextAbortCheck = pos + ABORT_CHECK_BYTES;
    }
    const posState = pos & pbMask;
    if (d.bit(IS_MATCH + (state << NUM_POS_BITS_MAX) + posState) === 0) {
      const prev = pos > 0 ? (out[pos - 1] as number) : 0;
      const base = LITERALS + 0x300 * (((pos & lpMask) << lc) + (prev >>> (8 - lc)));
      let symbol = 1;
      if (state >= 7) {
        let matchByte = out[pos - rep0 - 1] as number;
        do {
          const matchBit = (matchByte >>> 7) & 1;
          matchByte <<= 1;
          const bit = d.bit(base + ((1 + matchBit) << 8) + symbol);
          symbol = (symbol << 1) | bit;
          if (matchBit !== bit) break;
        } while (symbol < 0x100);
      }
      while (symbol < 0x100) symbol = (symbol << 1) | d.bit(base + symbol);
      out[pos++] = symbol - 0x100;
      state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
      continue;
    }
    let len: number;
    if (d.bit(IS_REP + state) !== 0) {
      if (pos === 0) d.fail('a repeated match before any output');
      if (d.bit(IS_REP_G0 + state) === 0) {
        if (d.bit(IS_REP0_LONG + (state << NUM_POS_BITS_MAX) + posState) === 0) {
          state = state < 7 ? 9 : 11;
          out[pos] = out[pos - rep0 - 1] as number;
          pos++;
          continue;
        }
      } else {
        let dist: number;
        if (d.bit(IS_REP_G1 + state) === 0) {
          dist = rep1;
        } else {
          if (d.bit(IS_REP_G2 + state) === 0) {
            dist = rep2;
          } else {
            dist = rep3;
            rep3 = rep2;
          }
          rep2 = rep1;
        }
        rep1 = rep0;
        rep0 = dist;
      }
      len = d.length(REP_LEN_DECODER, posState);
      state = state < 7 ? 8 : 11;
    } else {
      rep3 = rep2;
      rep2 = rep1;
      rep1 = rep0;
      len = d.length(LEN_DECODER, posState);
      state = state < 7 ? 7 : 10;
      rep0 = d.distance(len);
      if (rep0 === 0xffff_ffff) d.fail(`an end marker after ${pos} of the ${size} declared bytes`);
      if (rep0 >= pos || rep0 >= dictionary) {
        d.fail(`match distance ${rep0 + 1} reaches before the output start or past the dictionary at ${pos}`);
      }
    }
    len += MATCH_MIN_LEN;
    if (len > size - pos) d.fail(`a ${len}-byte match at ${pos} runs past the declared ${size} bytes`);
    const from = pos - rep0 - 1;
    if (rep0 === 0) {
      out.fill(out[from] as number, pos, pos + len);
    } else if (rep0 + 1 >= len) {
      out.copyWithin(pos, from, from + len);
    } else {
      for (let i = 0; i < len; i++) out[pos + i] = out[from + i] as number;
    }
    pos += len;
  }
  return out;
}
