// A tiny LZMA1 encoder for runs of one byte value (lzma-specification.txt: the range encoder
// of LzmaEnc.c, a literal, then rep0 matches of the longest length), for decompression-bomb
// tests: 256 MiB of zeros in about 40 KB, made in milliseconds, where a real encoder takes a
// minute. The probability layout is the spec's (the same offsets as the decoder's).
import { concat } from './ffs-builder.js';

const NUM_STATES = 12;
const POS_BITS_MAX = 4;
const IS_MATCH = 0;
const IS_REP = IS_MATCH + (NUM_STATES << POS_BITS_MAX);
const IS_REP_G0 = IS_REP + NUM_STATES;
const IS_REP0_LONG = IS_REP_G0 + 3 * NUM_STATES;
const POS_SLOT = IS_REP0_LONG + (NUM_STATES << POS_BITS_MAX);
const ALIGN = POS_SLOT + (4 << 6) + 1 + 128 - 14;
const LEN_SIZE = 2 + 2 * (16 * 8) + 256;
const REP_LEN = ALIGN + 16 + LEN_SIZE;
const LITERALS = REP_LEN + LEN_SIZE;
const MAX_MATCH = 273;
const TWO_32 = 2 ** 32;

class RangeEncoder {
  #out = new Uint8Array(4096);
  #length = 0;
  readonly probs: Uint16Array;
  #low = 0;
  #range = 0xffff_ffff;
  #cache = 0;
  #cacheSize = 1;

  constructor(lc: number, lp: number) {
    this.probs = new Uint16Array(LITERALS + 0x300 * (1 << (lc + lp))).fill(1024);
  }

  #shiftLow(): void {
    const high = Math.floor(this.#low / TWO_32);
    const low32 = this.#low % TWO_32;
    if (low32 < 0xff00_0000 || high !== 0) {
      let temp = this.#cache;
      do {
        if (this.#length === this.#out.length) {
          const grown = new Uint8Array(this.#out.length * 2);
          grown.set(this.#out);
          this.#out = grown;
        }
        this.#out[this.#length++] = (temp + high) & 0xff;
        temp = 0xff;
      } while (--this.#cacheSize !== 0);
      this.#cache = low32 >>> 24;
    }
    this.#cacheSize++;
    this.#low = (low32 & 0x00ff_ffff) * 256;
  }

  bit(index: number, bit: number): void {
    const prob = this.probs[index] as number;
    const bound = (this.#range >>> 11) * prob;
    if (bit === 0) {
      this.#range = bound;
      this.probs[index] = prob + ((2048 - prob) >>> 5);
    } else {
      this.#low += bound;
      this.#range -= bound;
      this.probs[index] = prob - (prob >>> 5);
    }
    while (this.#range < 1 << 24) {
      this.#range = (this.#range << 8) >>> 0;
      this.#shiftLow();
    }
  }

  tree(base: number, bits: number, value: number): void {
    let m = 1;
    for (let i = bits - 1; i >= 0; i--) {
      const bit = (value >>> i) & 1;
      this.bit(base + m, bit);
      m = (m << 1) | bit;
    }
  }

  length(base: number, posState: number, len: number): void {
    const value = len - 2;
    if (value < 8) {
      this.bit(base, 0);
      this.tree(base + 2 + posState * 8, 3, value);
    } else if (value < 16) {
      this.bit(base, 1);
      this.bit(base + 1, 0);
      this.tree(base + 2 + 128 + posState * 8, 3, value - 8);
    } else {
      this.bit(base, 1);
      this.bit(base + 1, 1);
      this.tree(base + 2 + 256, 8, value - 16);
    }
  }

  finish(): Uint8Array {
    for (let i = 0; i < 5; i++) this.#shiftLow();
    return this.#out.slice(0, this.#length);
  }
}

/**
 * An EDK2-style .lzma stream (13-byte header with the size, no end marker) that decodes to
 * `prefix` followed by `runLength` copies of `value`: the prefix as literals, then one
 * literal `value` and rep0 matches of it. lc=3, lp=0, pb=2, a 16 MiB dictionary, as
 * LzmaCompress writes. Literals come before any match, so the state stays 0 (plain literals).
 */
export function lzmaEncode(prefix: Uint8Array, runLength: number, value = 0): Uint8Array {
  const lc = 3;
  const pb = 2;
  const enc = new RangeEncoder(lc, 0);
  const sizeInBytes = prefix.length + runLength;
  let state = 0;
  let pos = 0;
  let prev = 0;
  const literal = (byte: number): void => {
    enc.bit(IS_MATCH + (pos & ((1 << pb) - 1)), 0);
    enc.tree(LITERALS + 0x300 * (prev >>> (8 - lc)), 8, byte);
    prev = byte;
    pos++;
  };
  for (const byte of prefix) literal(byte);
  if (runLength > 0) literal(value);
  while (pos < sizeInBytes) {
    const posState = pos & ((1 << pb) - 1);
    const left = sizeInBytes - pos;
    enc.bit(IS_MATCH + (state << POS_BITS_MAX) + posState, 1);
    enc.bit(IS_REP + state, 1);
    enc.bit(IS_REP_G0 + state, 0);
    if (left === 1) {
      enc.bit(IS_REP0_LONG + (state << POS_BITS_MAX) + posState, 0);
      state = state < 7 ? 9 : 11;
      pos++;
      continue;
    }
    enc.bit(IS_REP0_LONG + (state << POS_BITS_MAX) + posState, 1);
    const len = Math.min(MAX_MATCH, left);
    enc.length(REP_LEN, posState, len);
    state = state < 7 ? 8 : 11;
    pos += len;
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  header[0] = lc + pb * 45;
  view.setUint32(1, 1 << 24, true);
  view.setBigUint64(5, BigInt(sizeInBytes), true);
  return concat(header, enc.finish());
}

/** An .lzma stream of `sizeInBytes` copies of `value`. */
export function lzmaRun(sizeInBytes: number, value = 0): Uint8Array {
  return lzmaEncode(new Uint8Array(0), sizeInBytes, value);
}
