// EFI 1.1 compressor with the semantics of EDK2 BaseTools/Source/C/Common/EfiCompress.c
// (the LHA "ar002" scheme the UEFI spec's chapter 19 describes): an 8 KiB sliding window
// indexed by a Patricia tree of hashed child links, lazy match evaluation (a match is
// taken only if the next position does not match longer), and blocks of up to ~16 KiB
// of buffered symbols, each sent with its own Huffman codes. Following the same data
// structures and tie-breaking makes the output byte-identical to EfiCompress (and so to
// `EfiRom -ec` and `TianoCompress --uefi`), which the fixture tests check.
//
// Tree nodes are 16-bit signed values as in the C code (NODE is INT16): positions with
// the PERC_FLAG bit set are negative, and that sign is part of the algorithm.

import { EfiBitWriter } from './efi-bit-writer.js';
import { CBIT, EFI_HEADER_SIZE, MAX_MATCH, NC, NT, TBIT, THRESHOLD } from './efi-format.js';
import { EfiHuffmanEncoder } from './efi-huffman-encoder.js';

const WINDOW_BITS = 13;
const WINDOW_SIZE = 1 << WINDOW_BITS;
const PERC_FLAG = 0x8000;
const NIL = 0;
const MAX_HASH_VALUE = 3 * WINDOW_SIZE + (WINDOW_SIZE / 512 + 1) * 0xff;
/** Position set: bit lengths 0..WINDOW_BITS of a distance. */
const NP = WINDOW_BITS + 1;
const PBIT = 4;
const NPT = Math.max(NT, NP);
/** Symbol buffer EfiCompress allocates (mBufSiz); a block is sent when it fills. */
const BUFFER_SIZE = 16 * 1024;

const int16 = (value: number): number => (value << 16) >> 16;
const hash = (node: number, char: number): number => node + (char << (WINDOW_BITS - 9)) + WINDOW_SIZE * 2;

/** EFI 1.1 compressor (as EfiRom -ec uses), for option ROM generation. */
export function compressEfi(data: Uint8Array): Uint8Array {
  return new EfiCompressor(data).run();
}

class EfiCompressor {
  readonly #source: Uint8Array;
  #sourcePosition = 0;

  readonly #bits: EfiBitWriter;

  // Sliding dictionary (InitSlide and friends).
  readonly #text = new Uint8Array(WINDOW_SIZE * 2 + MAX_MATCH);
  readonly #level = new Uint8Array(WINDOW_SIZE + 256);
  readonly #childCount = new Uint8Array(WINDOW_SIZE + 256);
  readonly #position = new Int16Array(WINDOW_SIZE + 256);
  readonly #parent = new Int16Array(WINDOW_SIZE * 2);
  readonly #previous = new Int16Array(WINDOW_SIZE * 2);
  readonly #next = new Int16Array(MAX_HASH_VALUE + 1);
  #remainder = 0;
  #matchLength = 0;
  #matchPosition = 0;
  #currentPosition = 0;
  #available = 1;

  // Symbol buffer (Output) and Huffman state (SendBlock, MakeTree).
  readonly #buffer = new Uint8Array(BUFFER_SIZE);
  #bufferPosition = 0;
  #flagMask = 0;
  #flagPosition = 0;
  readonly #cFrequency = new Uint16Array(2 * NC - 1);
  readonly #pFrequency = new Uint16Array(2 * NP - 1);
  readonly #tFrequency = new Uint16Array(2 * NT - 1);
  readonly #cLength = new Uint8Array(NC);
  readonly #cCode = new Uint16Array(NC);
  readonly #ptLength = new Uint8Array(NPT);
  readonly #ptCode = new Uint16Array(NPT);
  readonly #huffman = new EfiHuffmanEncoder();

  constructor(source: Uint8Array) {
    this.#source = source;
    // Output rarely exceeds the input by more than the per-block tables; grow if needed.
    this.#bits = new EfiBitWriter(Math.max(64, source.length + (source.length >>> 3) + 64), EFI_HEADER_SIZE);
  }

  run(): Uint8Array {
    this.#initSlide();
    this.#cFrequency.fill(0);
    this.#pFrequency.fill(0);
    this.#bufferPosition = 0;
    this.#flagMask = 0;
    this.#remainder = this.#read(WINDOW_SIZE, WINDOW_SIZE + MAX_MATCH);
    this.#matchLength = 0;
    this.#currentPosition = WINDOW_SIZE;
    this.#insertNode();
    if (this.#matchLength > this.#remainder) {
      this.#matchLength = this.#remainder;
    }
    while (this.#remainder > 0) {
      let lastMatchLength = this.#matchLength;
      const lastMatchPosition = this.#matchPosition;
      this.#getNextMatch();
      if (this.#matchLength > this.#remainder) {
        this.#matchLength = this.#remainder;
      }
      if (this.#matchLength > lastMatchLength || lastMatchLength < THRESHOLD) {
        this.#output(this.#text[this.#currentPosition - 1]!, 0);
      } else {
        this.#output(
          lastMatchLength + (0x100 - THRESHOLD),
          (this.#currentPosition - lastMatchPosition - 2) & (WINDOW_SIZE - 1),
        );
        while (--lastMatchLength > 0) {
          this.#getNextMatch();
        }
        if (this.#matchLength > this.#remainder) {
          this.#matchLength = this.#remainder;
        }
      }
    }
    this.#sendBlock();
    this.#bits.putBits(7, 0);
    // EfiCompress appends a zero byte and counts it in the compressed size.
    this.#bits.pushByte(0);
    return this.#bits.finish((view) => {
      view.setUint32(0, this.#bits.length - EFI_HEADER_SIZE, true);
      view.setUint32(4, this.#sourcePosition, true);
    });
  }

  /** FreadCrc without the CRC (EfiCompress computes one and never uses it). */
  #read(at: number, count: number): number {
    const available = Math.min(count, this.#source.length - this.#sourcePosition);
    this.#text.set(this.#source.subarray(this.#sourcePosition, this.#sourcePosition + available), at);
    this.#sourcePosition += available;
    return available;
  }

  // --- sliding dictionary --------------------------------------------------------------

  #initSlide(): void {
    for (let node = WINDOW_SIZE; node <= WINDOW_SIZE + 0xff; node++) {
      this.#level[node] = 1;
      this.#position[node] = NIL;
    }
    this.#parent.fill(NIL, WINDOW_SIZE, WINDOW_SIZE * 2);
    this.#available = 1;
    for (let node = 1; node < WINDOW_SIZE - 1; node++) {
      this.#next[node] = node + 1;
    }
    this.#next[WINDOW_SIZE - 1] = NIL;
    this.#next.fill(NIL, WINDOW_SIZE * 2, MAX_HASH_VALUE + 1);
  }

  #child(parent: number, char: number): number {
    let node = this.#next[hash(parent, char)]!;
    this.#parent[NIL] = parent;
    while (this.#parent[node] !== parent) {
      node = this.#next[node]!;
    }
    return node;
  }

  #makeChild(parent: number, char: number, node: number): void {
    const head = hash(parent, char);
    const first = this.#next[head]!;
    this.#next[head] = node;
    this.#next[node] = first;
    this.#previous[first] = node;
    this.#previous[node] = head;
    this.#parent[node] = parent;
    this.#childCount[parent]!++;
  }

  /** Puts `replacement` where `old` stands in its doubly linked hash chain (Split, InsertNode). */
  #takePlace(old: number, replacement: number): void {
    let link = this.#previous[old]!;
    this.#previous[replacement] = link;
    this.#next[link] = replacement;
    link = this.#next[old]!;
    this.#next[replacement] = link;
    this.#previous[link] = replacement;
  }

  #split(old: number): void {
    const created = this.#available;
    this.#available = this.#next[created]!;
    this.#childCount[created] = 0;
    this.#takePlace(old, created);
    this.#parent[created] = this.#parent[old]!;
    this.#level[created] = this.#matchLength;
    this.#position[created] = this.#currentPosition;
    this.#makeChild(created, this.#text[this.#matchPosition + this.#matchLength]!, old);
    this.#makeChild(created, this.#text[this.#currentPosition + this.#matchLength]!, this.#currentPosition);
  }

  #insertNode(): void {
    const text = this.#text;
    const position = this.#currentPosition;
    let parent: number;
    let node: number;
    if (this.#matchLength >= 4) {
      // After a long match the subtree is found from matchPosition + 1, bottom up; the
      // PERC_FLAG marks positions that DeleteNode must recompute.
      this.#matchLength--;
      node = int16((this.#matchPosition + 1) | WINDOW_SIZE);
      while ((parent = this.#parent[node]!) === NIL) {
        node = this.#next[node]!;
      }
      while (this.#level[parent]! >= this.#matchLength) {
        node = parent;
        parent = this.#parent[parent]!;
      }
      let walk = parent;
      while (this.#position[walk]! < 0) {
        this.#position[walk] = position;
        walk = this.#parent[walk]!;
      }
      if (walk < WINDOW_SIZE) {
        this.#position[walk] = int16(position | PERC_FLAG);
      }
    } else {
      parent = text[position]! + WINDOW_SIZE;
      const char = text[position + 1]!;
      node = this.#child(parent, char);
      if (node === NIL) {
        this.#makeChild(parent, char, position);
        this.#matchLength = 1;
        return;
      }
      this.#matchLength = 2;
    }
    for (;;) {
      let limit: number;
      if (node >= WINDOW_SIZE) {
        limit = MAX_MATCH;
        this.#matchPosition = node;
      } else {
        limit = this.#level[node]!;
        this.#matchPosition = int16(this.#position[node]! & ~PERC_FLAG);
      }
      if (this.#matchPosition >= position) {
        this.#matchPosition -= WINDOW_SIZE;
      }
      let matchLength = this.#matchLength;
      const matchPosition = this.#matchPosition;
      while (matchLength < limit) {
        if (text[position + matchLength] !== text[matchPosition + matchLength]) {
          this.#matchLength = matchLength;
          this.#split(node);
          return;
        }
        matchLength++;
      }
      this.#matchLength = matchLength;
      if (matchLength >= MAX_MATCH) {
        break;
      }
      this.#position[node] = position;
      parent = node;
      const char = text[position + matchLength]!;
      node = this.#child(parent, char);
      if (node === NIL) {
        this.#makeChild(parent, char, position);
        return;
      }
      this.#matchLength++;
    }
    // The new position replaces the old leaf `node`, which keeps a forward link to it.
    this.#takePlace(node, position);
    this.#parent[position] = parent;
    this.#parent[node] = NIL;
    this.#next[node] = position;
  }

  #deleteNode(): void {
    const position = this.#currentPosition;
    if (this.#parent[position] === NIL) {
      return;
    }
    let r = this.#previous[position]!;
    let s = this.#next[position]!;
    this.#next[r] = s;
    this.#previous[s] = r;
    r = this.#parent[position]!;
    this.#parent[position] = NIL;
    if (r >= WINDOW_SIZE) {
      return;
    }
    // UINT8 arithmetic, as mChildCount in C.
    const children = (this.#childCount[r]! - 1) & 0xff;
    this.#childCount[r] = children;
    if (children > 1) {
      return;
    }
    let t = int16(this.#position[r]! & ~PERC_FLAG);
    if (t >= position) {
      t = int16(t - WINDOW_SIZE);
    }
    s = t;
    let q = this.#parent[r]!;
    let u: number;
    while ((u = this.#position[q]!) & PERC_FLAG) {
      u = int16(u & ~PERC_FLAG);
      if (u >= position) {
        u = int16(u - WINDOW_SIZE);
      }
      if (u > s) {
        s = u;
      }
      this.#position[q] = int16(s | WINDOW_SIZE);
      q = this.#parent[q]!;
    }
    if (q < WINDOW_SIZE) {
      if (u >= position) {
        u = int16(u - WINDOW_SIZE);
      }
      if (u > s) {
        s = u;
      }
      this.#position[q] = int16(s | WINDOW_SIZE | PERC_FLAG);
    }
    s = this.#child(r, this.#text[t + this.#level[r]!]!);
    t = this.#previous[s]!;
    u = this.#next[s]!;
    this.#next[t] = u;
    this.#previous[u] = t;
    t = this.#previous[r]!;
    this.#next[t] = s;
    this.#previous[s] = t;
    t = this.#next[r]!;
    this.#previous[t] = s;
    this.#next[s] = t;
    this.#parent[s] = this.#parent[r]!;
    this.#parent[r] = NIL;
    this.#next[r] = this.#available;
    this.#available = r;
  }

  #getNextMatch(): void {
    this.#remainder--;
    if (++this.#currentPosition === WINDOW_SIZE * 2) {
      this.#text.copyWithin(0, WINDOW_SIZE, WINDOW_SIZE * 2 + MAX_MATCH);
      this.#remainder += this.#read(WINDOW_SIZE + MAX_MATCH, WINDOW_SIZE);
      this.#currentPosition = WINDOW_SIZE;
    }
    this.#deleteNode();
    this.#insertNode();
  }

  // --- Huffman coding ------------------------------------------------------------------

  /** Output: buffers a literal (p unused) or a match (c = length + 253, p = distance - 1). */
  #output(c: number, p: number): void {
    const buffer = this.#buffer;
    this.#flagMask >>>= 1;
    if (this.#flagMask === 0) {
      this.#flagMask = 0x80;
      if (this.#bufferPosition >= BUFFER_SIZE - 3 * 8) {
        this.#sendBlock();
        this.#bufferPosition = 0;
      }
      this.#flagPosition = this.#bufferPosition++;
      buffer[this.#flagPosition] = 0;
    }
    buffer[this.#bufferPosition++] = c & 0xff;
    this.#cFrequency[c]!++;
    if (c >= 0x100) {
      buffer[this.#flagPosition]! |= this.#flagMask;
      buffer[this.#bufferPosition++] = p >>> 8;
      buffer[this.#bufferPosition++] = p & 0xff;
      this.#pFrequency[32 - Math.clz32(p)]!++;
    }
  }

  #sendBlock(): void {
    let root = this.#huffman.makeTree(NC, this.#cFrequency, this.#cLength, this.#cCode);
    const size = this.#cFrequency[root]!;
    this.#bits.putBits(16, size);
    if (root >= NC) {
      this.#countTFrequency();
      root = this.#huffman.makeTree(NT, this.#tFrequency, this.#ptLength, this.#ptCode);
      if (root >= NT) {
        this.#writePtLength(NT, TBIT, 3);
      } else {
        this.#bits.putBits(TBIT, 0);
        this.#bits.putBits(TBIT, root);
      }
      this.#writeCLength();
    } else {
      this.#bits.putBits(TBIT, 0);
      this.#bits.putBits(TBIT, 0);
      this.#bits.putBits(CBIT, 0);
      this.#bits.putBits(CBIT, root);
    }
    root = this.#huffman.makeTree(NP, this.#pFrequency, this.#ptLength, this.#ptCode);
    if (root >= NP) {
      this.#writePtLength(NP, PBIT, -1);
    } else {
      this.#bits.putBits(PBIT, 0);
      this.#bits.putBits(PBIT, root);
    }
    const buffer = this.#buffer;
    let position = 0;
    let flags = 0;
    for (let index = 0; index < size; index++) {
      if (index % 8 === 0) {
        flags = buffer[position++]!;
      } else {
        flags <<= 1;
      }
      if (flags & 0x80) {
        const c = buffer[position++]! + 0x100;
        this.#bits.putBits(this.#cLength[c]!, this.#cCode[c]!);
        const p = (buffer[position]! << 8) | buffer[position + 1]!;
        position += 2;
        const bits = 32 - Math.clz32(p);
        this.#bits.putBits(this.#ptLength[bits]!, this.#ptCode[bits]!);
        if (bits > 1) {
          this.#bits.putBits(bits - 1, p & (0xffff >>> (17 - bits)));
        }
      } else {
        const c = buffer[position++]!;
        this.#bits.putBits(this.#cLength[c]!, this.#cCode[c]!);
      }
    }
    this.#cFrequency.fill(0, 0, NC);
    this.#pFrequency.fill(0, 0, NP);
  }

  /** CountTFreq: how often each extra-set symbol codes the C lengths of this block. */
  #countTFrequency(): void {
    const frequency = this.#tFrequency.fill(0, 0, NT);
    this.#codeCLengths(this.#cLengthCount(), (symbol) => {
      frequency[symbol]!++;
    });
  }

  /** C lengths up to the last non-zero one. */
  #cLengthCount(): number {
    const lengths = this.#cLength;
    let n = NC;
    while (n > 0 && lengths[n - 1] === 0) {
      n--;
    }
    return n;
  }

  /**
   * The extra-set coding of the first `n` C lengths that CountTFreq counts and WriteCLen
   * writes (EfiCompress.c): a length L is symbol L + 2; a run of zeros is one or two
   * symbol 0s, symbol 1 and 4 bits (3..18 zeros), symbol 0 then symbol 1 and 4 bits of 15
   * (19 zeros), or symbol 2 and CBIT bits (20 or more).
   */
  #codeCLengths(n: number, emit: (symbol: number, extraBits?: number, extra?: number) => void): void {
    const lengths = this.#cLength;
    let index = 0;
    while (index < n) {
      const length = lengths[index++]!;
      if (length !== 0) {
        emit(length + 2);
        continue;
      }
      let run = 1;
      while (index < n && lengths[index] === 0) {
        index++;
        run++;
      }
      if (run <= 2) {
        for (let k = 0; k < run; k++) {
          emit(0);
        }
      } else if (run <= 18) {
        emit(1, 4, run - 3);
      } else if (run === 19) {
        emit(0);
        emit(1, 4, 15);
      } else {
        emit(2, CBIT, run - 20);
      }
    }
  }

  #writePtLength(count: number, countBits: number, zeroRunAfter: number): void {
    const lengths = this.#ptLength;
    while (count > 0 && lengths[count - 1] === 0) {
      count--;
    }
    this.#bits.putBits(countBits, count);
    let index = 0;
    while (index < count) {
      const length = lengths[index++]!;
      if (length <= 6) {
        this.#bits.putBits(3, length);
      } else {
        this.#bits.putBits(length - 3, (1 << (length - 3)) - 2);
      }
      if (index === zeroRunAfter) {
        while (index < 6 && lengths[index] === 0) {
          index++;
        }
        this.#bits.putBits(2, (index - 3) & 3);
      }
    }
  }

  /** WriteCLen: the C lengths, coded with the extra set's Huffman code. */
  #writeCLength(): void {
    const ptLength = this.#ptLength;
    const ptCode = this.#ptCode;
    const n = this.#cLengthCount();
    this.#bits.putBits(CBIT, n);
    this.#codeCLengths(n, (symbol, extraBits, extra) => {
      this.#bits.putBits(ptLength[symbol]!, ptCode[symbol]!);
      if (extraBits !== undefined) {
        this.#bits.putBits(extraBits, extra!);
      }
    });
  }
}
