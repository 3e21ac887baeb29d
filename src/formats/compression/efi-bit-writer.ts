// The compressor's output bit stream (EfiCompress.c PutBits): bits go most significant
// first into bytes that grow the buffer as needed, after a reserved header.

export class EfiBitWriter {
  /** Whole bytes written so far; the partial byte waits in #pendingByte. */
  #out: Uint8Array;
  length: number;
  #pendingByte = 0;
  /** Bits of #pendingByte still free. */
  #freeBits = 8;

  /** `initialBytes` is a size hint; the first `reservedBytes` are left for a header. */
  constructor(initialBytes: number, reservedBytes: number) {
    this.#out = new Uint8Array(Math.max(initialBytes, reservedBytes));
    this.length = reservedBytes;
  }

  pushByte(byte: number): void {
    if (this.length === this.#out.length) {
      const grown = new Uint8Array(this.#out.length * 2);
      grown.set(this.#out);
      this.#out = grown;
    }
    this.#out[this.length++] = byte;
  }

  /** PutBits: writes the low `count` (<= 16) bits of `value`, most significant first. */
  putBits(count: number, value: number): void {
    if (count < this.#freeBits) {
      this.#freeBits -= count;
      this.#pendingByte |= value << this.#freeBits;
      return;
    }
    count -= this.#freeBits;
    this.pushByte((this.#pendingByte | (value >>> count)) & 0xff);
    if (count < 8) {
      this.#freeBits = 8 - count;
      this.#pendingByte = (value << this.#freeBits) & 0xff;
    } else {
      this.pushByte((value >>> (count - 8)) & 0xff);
      this.#freeBits = 16 - count;
      this.#pendingByte = (value << this.#freeBits) & 0xff;
    }
  }

  /** The bytes written (whole bytes only), with the reserved header filled by `header`. */
  finish(header: (view: DataView) => void): Uint8Array {
    header(new DataView(this.#out.buffer));
    return this.#out.slice(0, this.length);
  }
}
