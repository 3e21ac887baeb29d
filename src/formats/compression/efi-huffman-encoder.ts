// Huffman code construction of the EFI 1.1 compressor (EfiCompress.c MakeTree, MakeLen,
// MakeCode): a heap-built tree, lengths limited to 16 bits by EDK2's own folding rule, and
// canonical codes. Ties are broken exactly as the C code breaks them, because the code
// lengths are part of the output that must be byte-identical to EfiCompress.
import { NC } from './efi-format.js';

/** Builds Huffman codes for alphabets up to NC symbols, reusing its work buffers. */
export class EfiHuffmanEncoder {
  readonly #left = new Uint16Array(2 * NC - 1);
  readonly #right = new Uint16Array(2 * NC - 1);
  readonly #heap = new Int16Array(NC + 1);
  readonly #lengthCount = new Uint16Array(17);

  /**
   * MakeTree: Huffman code for `frequency[0..count)`; returns the root (a symbol below
   * `count` when at most one symbol occurs, which the caller stores as a single-symbol
   * code). Internal nodes take frequency slots from `count` up, as in EfiCompress.
   */
  makeTree(count: number, frequency: Uint16Array, lengths: Uint8Array, codes: Uint16Array): number {
    const heap = this.#heap;
    let heapSize = 0;
    heap[1] = 0;
    for (let symbol = 0; symbol < count; symbol++) {
      lengths[symbol] = 0;
      if (frequency[symbol]) {
        heap[++heapSize] = symbol;
      }
    }
    if (heapSize < 2) {
      codes[heap[1]!] = 0;
      return heap[1]!;
    }
    const downHeap = (start: number): void => {
      let index = start;
      const entry = heap[index]!;
      let child: number;
      while ((child = 2 * index) <= heapSize) {
        if (child < heapSize && frequency[heap[child]!]! > frequency[heap[child + 1]!]!) {
          child++;
        }
        if (frequency[entry]! <= frequency[heap[child]!]!) {
          break;
        }
        heap[index] = heap[child]!;
        index = child;
      }
      heap[index] = entry;
    };
    for (let index = heapSize >>> 1; index >= 1; index--) {
      downHeap(index);
    }
    // `codes` first collects the symbols in the order they leave the heap.
    let sorted = 0;
    let available = count;
    let node: number;
    do {
      const first = heap[1]!;
      if (first < count) {
        codes[sorted++] = first;
      }
      heap[1] = heap[heapSize--]!;
      downHeap(1);
      const second = heap[1]!;
      if (second < count) {
        codes[sorted++] = second;
      }
      node = available++;
      frequency[node] = frequency[first]! + frequency[second]!;
      heap[1] = node;
      downHeap(1);
      this.#left[node] = first;
      this.#right[node] = second;
    } while (heapSize > 1);
    this.#makeLengths(node, count, lengths, codes);
    this.#makeCodes(count, lengths, codes);
    return node;
  }

  /** MakeLen: depths of the leaves, then lengths above 16 folded back (Kraft sum 1). */
  #makeLengths(root: number, count: number, lengths: Uint8Array, sortedSymbols: Uint16Array): void {
    const lengthCount = this.#lengthCount.fill(0);
    const countDepths = (node: number, depth: number): void => {
      if (node < count) {
        lengthCount[Math.min(depth, 16)]!++;
      } else {
        countDepths(this.#left[node]!, depth + 1);
        countDepths(this.#right[node]!, depth + 1);
      }
    };
    countDepths(root, 0);
    let kraft = 0;
    for (let length = 16; length > 0; length--) {
      kraft += lengthCount[length]! << (16 - length);
    }
    // Kraft arithmetic is modulo 2^32 in C; the sum fits a double exactly here.
    while (kraft !== 1 << 16) {
      lengthCount[16]!--;
      for (let length = 15; length > 0; length--) {
        if (lengthCount[length] !== 0) {
          lengthCount[length]!--;
          lengthCount[length + 1]! += 2;
          break;
        }
      }
      kraft--;
    }
    let sorted = 0;
    for (let length = 16; length > 0; length--) {
      for (let k = lengthCount[length]!; k > 0; k--) {
        lengths[sortedSymbols[sorted++]!] = length;
      }
    }
  }

  /** MakeCode: canonical codes in symbol order. */
  #makeCodes(count: number, lengths: Uint8Array, codes: Uint16Array): void {
    const start = new Uint16Array(18);
    for (let length = 1; length <= 16; length++) {
      start[length + 1] = (start[length]! + this.#lengthCount[length]!) << 1;
    }
    for (let symbol = 0; symbol < count; symbol++) {
      codes[symbol] = start[lengths[symbol]!]!++;
    }
  }
}
