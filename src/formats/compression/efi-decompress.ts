// EFI 1.1 ("UEFI compression", UEFI spec 2.10 chapter 19) and Tiano decompression.
// Layout: 4-byte LE compressed size, 4-byte LE original size, then a bit stream (MSB
// first) of blocks. Each block starts with a 16-bit symbol count and three canonical
// Huffman code-length tables: the "extra set" (T, codes the C lengths), the
// "char&len set" (C: 256 literals + 254 match lengths 3..256) and the "position set"
// (P: the bit length of a match distance). The two variants differ only in the width of
// the P-table count field: 4 bits for EFI 1.1 (13-bit window), 5 bits for Tiano (19-bit
// window) - EDK2 BaseUefiDecompressLib UefiTianoDecompress, Version 1 vs 2.
//
// This decoder accepts exactly the streams EDK2's decoder accepts that a compressor can
// produce, and is stricter on the rest: over-subscribed or incomplete codes, symbols
// outside their alphabet, back-references before the start of the output, and streams
// that need more bits than the header's compressed size are E_DECOMPRESS_CORRUPT.
import { FormatError, throwIfAborted } from '../../core/errors.js';
import {
  boundedOutputSize,
  corruptError,
  headerView,
  resolveMaxOutputBytes,
  type DecompressLimits,
} from './limits.js';
import { CBIT, EFI_HEADER_SIZE, NC, NT, TBIT, THRESHOLD } from './efi-format.js';
import { decodeEfiWasm } from './efi-decompress-wasm.js';

export type EfiVariant = 'efi' | 'tiano';

// Names and values as EDK2's BaseUefiDecompressLib.h / .c define them (MAXNP, NPT).
/** Largest P alphabet either variant can declare: (1 << MAXPBIT) - 1. */
const MAXNP = 31;
const NPT = 31;
const MAX_CODE_LENGTH = 16;
/** A table entry is symbol | length << LENGTH_SHIFT: symbols are below NC (510), lengths at most 16. */
const LENGTH_SHIFT = 9;
const SYMBOL_MASK = (1 << LENGTH_SHIFT) - 1;
/** A table slot of an empty code: a symbol above every alphabet, no length. */
const NONE = SYMBOL_MASK;

const P_COUNT_BITS: Readonly<Record<EfiVariant, number>> = { efi: 4, tiano: 5 };

export interface EfiHeader {
  readonly compressedSizeInBytes: number;
  readonly originalSizeInBytes: number;
}

/** Reads and bounds the 8-byte header (same for both variants). */
export function readEfiHeader(
  data: Uint8Array,
  maxOutputBytes: number,
  variant: EfiVariant = 'efi',
): EfiHeader {
  const view = headerView(data, EFI_HEADER_SIZE, variant);
  const compressedSizeInBytes = view.getUint32(0, true);
  const originalSizeInBytes = boundedOutputSize(variant, view.getUint32(4, true), maxOutputBytes);
  const available = data.length - EFI_HEADER_SIZE;
  if (compressedSizeInBytes > available) {
    throw corruptError(
      variant,
      0,
      `header declares ${compressedSizeInBytes} compressed bytes, only ${available} follow the header`,
      { compressedSizeInBytes, availableBytes: available },
    );
  }
  return { compressedSizeInBytes, originalSizeInBytes };
}

export interface EfiDecodeResult {
  readonly output: Uint8Array;
  /** Bits of the compressed stream the decoder used; a faithful stream ends in its last byte. */
  readonly consumedBits: number;
  readonly compressedSizeInBytes: number;
}

/** Decodes one variant; throws E_DECOMPRESS_* on any inconsistency, E_ABORTED when `signal` fires (checked per block). */
export function decodeEfiVariant(
  data: Uint8Array,
  variant: EfiVariant,
  maxOutputBytes: number,
  signal?: AbortSignal,
): EfiDecodeResult {
  const header = readEfiHeader(data, maxOutputBytes, variant);
  const stream = data.subarray(EFI_HEADER_SIZE, EFI_HEADER_SIZE + header.compressedSizeInBytes);
  // An aborted signal goes to the JS decoder, which reports it as it always has.
  if (signal?.aborted !== true) {
    const fast = decodeEfiWasm(stream, header.originalSizeInBytes, variant);
    if (fast !== undefined) {
      return { ...fast, compressedSizeInBytes: header.compressedSizeInBytes };
    }
  }
  return decodeEfiJs(data, variant, header, signal);
}

/**
 * The JS decoder alone, after readEfiHeader: it gives every error with its code, reason and
 * offsets. Exported for the differential test against the WebAssembly decoder.
 */
export function decodeEfiJs(
  data: Uint8Array,
  variant: EfiVariant,
  header: EfiHeader,
  signal?: AbortSignal,
): EfiDecodeResult {
  startReader(data.subarray(EFI_HEADER_SIZE, EFI_HEADER_SIZE + header.compressedSizeInBytes), variant);
  const output = new Uint8Array(header.originalSizeInBytes);
  try {
    decodeInto(output, signal);
    return { output, consumedBits: consumedBits(), compressedSizeInBytes: header.compressedSizeInBytes };
  } finally {
    // The reader state is module-wide: it must not keep the caller's image alive.
    startReader(NO_INPUT, variant);
  }
}

/** EFI 1.1 "standard" compression (EFI_STANDARD_COMPRESSION, UEFI spec 19). */
export function decompressEfi(data: Uint8Array, limits: DecompressLimits = {}): Uint8Array {
  return decodeEfiVariant(data, 'efi', resolveMaxOutputBytes(limits), limits.signal).output;
}

/** Tiano compression (the EFI format with a larger dictionary, EDK TianoCompress). */
export function decompressTiano(data: Uint8Array, limits: DecompressLimits = {}): Uint8Array {
  return decodeEfiVariant(data, 'tiano', resolveMaxOutputBytes(limits), limits.signal).output;
}

/**
 * EDK2's compressors end the stream with at most a byte of padding after the last code,
 * and the decoder's 32-bit look-ahead is not counted as consumed, so a faithful decode
 * stops within the last 32 bits. A decode with the wrong variant that happens to
 * succeed almost never lands there.
 */
const FAITHFUL_END_SLACK_BITS = 32;

const endsFaithfully = (result: EfiDecodeResult): boolean =>
  result.compressedSizeInBytes * 8 - result.consumedBits < FAITHFUL_END_SLACK_BITS;

/**
 * A compression section of type EFI_STANDARD_COMPRESSION may hold either EFI 1.1 or
 * Tiano data (vendors use both under one type byte). Like UEFITool, both are tried:
 * EFI 1.1 first; a decode that succeeds and uses the stream up to its end wins at once;
 * otherwise any successful decode (EFI 1.1 preferred) is returned; if both fail, the
 * error carries both reasons. UEFITool breaks a tie between two successful decodes by
 * parsing the output as sections; here the end-of-stream check decides, and callers
 * that want more can check the output themselves.
 */
export function decompressStandard(
  data: Uint8Array,
  limits: DecompressLimits = {},
): { variant: EfiVariant; output: Uint8Array } {
  const maxOutputBytes = resolveMaxOutputBytes(limits);
  const attempt = (variant: EfiVariant): EfiDecodeResult | FormatError => {
    try {
      return decodeEfiVariant(data, variant, maxOutputBytes, limits.signal);
    } catch (error) {
      // The header is common to both variants: a size or truncation problem is final.
      if (
        error instanceof FormatError &&
        error.code === 'E_DECOMPRESS_CORRUPT' &&
        error.details['offset'] !== 0
      ) {
        return error;
      }
      throw error;
    }
  };
  const efi = attempt('efi');
  if (!(efi instanceof FormatError) && endsFaithfully(efi)) {
    return { variant: 'efi', output: efi.output };
  }
  const tiano = attempt('tiano');
  if (!(tiano instanceof FormatError) && (endsFaithfully(tiano) || efi instanceof FormatError)) {
    return { variant: 'tiano', output: tiano.output };
  }
  if (!(efi instanceof FormatError)) {
    return { variant: 'efi', output: efi.output };
  }
  const tianoError = tiano as FormatError;
  throw new FormatError(
    'E_DECOMPRESS_CORRUPT',
    `standard-compression stream is neither EFI 1.1 (${efi.message}) nor Tiano (${tianoError.message})`,
    {
      format: 'efi',
      offset: efi.details['offset'],
      reason: 'neither variant decodes',
      efi: efi.details,
      tiano: tianoError.details,
    },
  );
}

// The decoder is plain functions over module-level state, not a class: a cold process runs
// this code mostly before V8 has optimized it, where private methods and fields cost a lookup
// each, and small functions reach optimized code sooner and compile faster. Module variables
// also carry no type feedback, so optimized code never deoptimizes for lack of it when the hot
// loop stores the reader state back (object fields did, on every call). Decoding is
// synchronous and never re-entered, so one set of state and tables serves every call (a worker
// thread has its own module instance).

// Bit reader, as EDK2 FillBuf: `bitBuffer` always holds the next 32 unread bits (as an int32,
// read with >>>), `pendingByte` the last fetched byte with `pendingBits` of it not yet in
// `bitBuffer`. Past the end of the input the reader supplies zero bytes (as EDK2 does) and
// counts them in `fetchedBytes`, so over-reads are detected rather than silently decoded.
// wasm/efi-decompress.c holds the same state under the same names (its decode() resets it as
// startReader does, and its functions are these, one for one): it mirrors this decoder on purpose
// so that both accept the same streams, and C compiled to WebAssembly cannot share the TS code.
const NO_INPUT = new Uint8Array(0);
let input: Uint8Array = NO_INPUT;
let inputLength = 0;
let variantNow: EfiVariant = 'efi';
let inputPosition = 0;
let fetchedBytes = 0;
let bitBuffer = 0;
let pendingByte = 0;
let pendingBits = 0;

function startReader(data: Uint8Array, variant: EfiVariant): void {
  input = data;
  inputLength = data.length;
  variantNow = variant;
  inputPosition = 0;
  fetchedBytes = 0;
  bitBuffer = 0;
  pendingByte = 0;
  pendingBits = 0;
}

// Decoding tables indexed by the next 16 bits, the longest code, where EDK2 indexes by 12 (C) or
// 8 (P, T) bits and walks a tree below for longer codes. One lookup gives a symbol and its
// length, so the hot loop has no tree walk: in a cold process a branch the interpreter has not
// yet run sends optimized code back to the interpreter (a deopt) and costs a recompile, and
// filling 65,536 slots per table and block costs less than that.
const ptLength = new Uint8Array(NPT + 1);
const cLength = new Uint8Array(NC);
const ptTable = new Uint16Array(1 << MAX_CODE_LENGTH);
const cTable = new Uint16Array(1 << MAX_CODE_LENGTH);
const lengthCount = new Uint32Array(MAX_CODE_LENGTH + 2);
const nextCode = new Uint32Array(MAX_CODE_LENGTH + 2);

function consumedBits(): number {
  return Math.max(0, fetchedBytes * 8 - 32 - pendingBits);
}

function corrupt(reason: string, outputOffset: number): Error {
  const inputOffset = EFI_HEADER_SIZE + Math.min(inputLength, consumedBits() >>> 3);
  return corruptError(variantNow, inputOffset, reason, { outputOffset });
}

function checkNotOverread(position: number): void {
  if (consumedBits() > inputLength * 8) {
    throw corrupt(`stream needs more than the ${inputLength} compressed bytes the header declares`, position);
  }
}

/**
 * EDK2 FillBuf (MdePkg/Library/BaseUefiDecompressLib/BaseUefiDecompressLib.c): drops `count`
 * (<= 29) bits and refills from the input. The same lines stand again, inlined on purpose, in
 * readCLengths and decodeSymbols' hot loop below (see the comments there); keep the copies in
 * step with this one.
 */
function fill(count: number): void {
  bitBuffer <<= count;
  while (count > pendingBits) {
    count -= pendingBits;
    bitBuffer |= pendingByte << count;
    pendingByte = inputPosition < inputLength ? input[inputPosition++]! : 0;
    fetchedBytes++;
    pendingBits = 8;
  }
  pendingBits -= count;
  bitBuffer |= pendingByte >>> pendingBits;
}

function getBits(count: number): number {
  const value = bitBuffer >>> (32 - count);
  fill(count);
  return value;
}

/** EDK2 ReadPTLen: the T table (count in 5 bits) or the P table (count in 4/5 bits). */
function readPtLengths(alphabetSize: number, countBits: number, zeroRunAfter: number): void {
  const count = getBits(countBits);
  if (count === 0) {
    // A code with a single symbol is stored as that symbol; it takes zero bits.
    const only = getBits(countBits);
    if (only >= alphabetSize) {
      throw corrupt(`single-symbol code names symbol ${only}, alphabet has ${alphabetSize}`, 0);
    }
    ptTable.fill(only);
    ptLength.fill(0);
    return;
  }
  let index = 0;
  while (index < count && index < NPT) {
    let length = bitBuffer >>> 29;
    if (length === 7) {
      // Lengths of 7 and more continue in unary: one 1-bit per extra unit, then a 0.
      let mask = 1 << 28;
      while (mask !== 0 && (bitBuffer & mask) !== 0) {
        mask >>>= 1;
        length++;
      }
      if (length > MAX_CODE_LENGTH) {
        throw corrupt(`code length ${length} is above ${MAX_CODE_LENGTH}`, 0);
      }
    }
    fill(length < 7 ? 3 : length - 3);
    ptLength[index++] = length;
    if (index === zeroRunAfter) {
      let zeros = getBits(2);
      while (zeros-- > 0 && index < NPT) {
        ptLength[index++] = 0;
      }
    }
  }
  ptLength.fill(0, Math.min(index, alphabetSize));
  makeTable(alphabetSize, ptLength, ptTable);
}

/** EDK2 ReadCLen: C code lengths, themselves coded with the T table. */
function readCLengths(): void {
  const count = getBits(CBIT);
  if (count === 0) {
    const only = getBits(CBIT);
    if (only >= NC) {
      throw corrupt(`single-symbol code names symbol ${only}, alphabet has ${NC}`, 0);
    }
    cLength.fill(0);
    cTable.fill(only);
    return;
  }
  // The bit reader in locals with FillBuf inlined, as in decodeSymbols: a cold process runs this
  // loop (up to 510 lengths per block) in the interpreter, where a call per length costs more
  // than the rest of it. A zero run's count field is taken with its code in one refill.
  const bytes = input;
  const length = inputLength;
  let buffer = bitBuffer;
  let byte = pendingByte;
  let bits = pendingBits;
  let at = inputPosition;
  let fetched = fetchedBytes;
  let index = 0;
  while (index < count && index < NC) {
    const entry = ptTable[buffer >>> (32 - MAX_CODE_LENGTH)]!;
    const symbol = entry & SYMBOL_MASK;
    if (symbol >= NT) {
      bitBuffer = buffer;
      pendingByte = byte;
      pendingBits = bits;
      inputPosition = at;
      fetchedBytes = fetched;
      throw corrupt('symbol read from an empty Huffman code', 0);
    }
    let take = entry >>> LENGTH_SHIFT;
    // 0: one zero length; 1: 3..18 zeros (4-bit count); 2: 20..531 zeros (9-bit count).
    let zeros = 1;
    if (symbol === 1) {
      take += 4;
      zeros = ((buffer >>> (32 - take)) & 0xf) + 3;
    } else if (symbol === 2) {
      take += CBIT;
      zeros = ((buffer >>> (32 - take)) & 0x1ff) + 20;
    }
    buffer <<= take;
    while (take > bits) {
      take -= bits;
      buffer |= byte << take;
      byte = at < length ? bytes[at++]! : 0;
      fetched++;
      bits = 8;
    }
    bits -= take;
    buffer |= byte >>> bits;
    if (symbol > 2) {
      cLength[index++] = symbol - 2;
      continue;
    }
    const end = Math.min(index + zeros, NC);
    cLength.fill(0, index, end);
    index = end;
  }
  bitBuffer = buffer;
  pendingByte = byte;
  pendingBits = bits;
  inputPosition = at;
  fetchedBytes = fetched;
  cLength.fill(0, index);
  makeTable(NC, cLength, cTable);
}

/**
 * Canonical Huffman decoding table (EDK2 MakeTable), one slot per 16-bit prefix: a code of
 * `length` bits fills the 2^(16 - length) slots that start with it. Only a complete code (Kraft
 * sum exactly 1) or an empty one is accepted, so every slot is filled or every slot is NONE.
 */
function makeTable(alphabetSize: number, lengths: Uint8Array, table: Uint16Array): void {
  lengthCount.fill(0);
  for (let symbol = 0; symbol < alphabetSize; symbol++) {
    lengthCount[lengths[symbol]!]!++;
  }
  let kraft = 0;
  for (let length = 1; length <= MAX_CODE_LENGTH; length++) {
    kraft += lengthCount[length]! << (MAX_CODE_LENGTH - length);
  }
  if (kraft === 0) {
    table.fill(NONE);
    return;
  }
  if (kraft !== 1 << MAX_CODE_LENGTH) {
    throw corrupt(
      `code lengths ${kraft < 1 << MAX_CODE_LENGTH ? 'leave codes unused' : 'overlap'} (Kraft sum ${kraft}/65536)`,
      0,
    );
  }
  nextCode[1] = 0;
  for (let length = 1; length <= MAX_CODE_LENGTH; length++) {
    nextCode[length + 1] = nextCode[length]! + (lengthCount[length]! << (MAX_CODE_LENGTH - length));
  }
  for (let symbol = 0; symbol < alphabetSize; symbol++) {
    const length = lengths[symbol]!;
    if (length === 0) {
      continue;
    }
    const code = nextCode[length]!;
    const end = code + (1 << (MAX_CODE_LENGTH - length));
    nextCode[length] = end;
    table.fill(symbol | (length << LENGTH_SHIFT), code, end);
  }
}

/** Reads one block's three code tables and returns its symbol count. */
function readBlockHeader(position: number): number {
  checkNotOverread(position);
  // A stored count of 0 wraps to 65536 symbols in EDK2 (UINT16 decrement).
  const symbols = getBits(16) || 0x1_0000;
  readPtLengths(NT, TBIT, 3);
  readCLengths();
  readPtLengths(MAXNP, P_COUNT_BITS[variantNow], -1);
  // A block whose tables already lie past the end cannot be real data.
  checkNotOverread(position);
  return symbols;
}

/**
 * EDK2 Decode: fills `output` from the reader, block by block; throws E_DECOMPRESS_CORRUPT.
 * A block is at most 65,536 symbols (16 MiB of output): `signal` is checked before each, so
 * a large decode stops within a fraction of a second.
 */
function decodeInto(output: Uint8Array, signal: AbortSignal | undefined): void {
  const size = output.length;
  if (size === 0) {
    // EDK2 returns before reading any bits when the original size is 0.
    return;
  }
  fill(16);
  fill(16);
  let position = 0;
  while (position < size) {
    throwIfAborted(signal);
    const symbols = readBlockHeader(position);
    position = decodeSymbols(output, position, symbols);
  }
  checkNotOverread(position);
}

/**
 * The hot loop: decodes up to `symbols` symbols of one block into `output` from `position`
 * and returns the new position. Kept apart from the table readers so that V8 compiles a small
 * function (an optimizing compile of the whole decoder took longer than the decode itself in a
 * cold process). It keeps the bit reader in locals and inlines FillBuf, and stores the state
 * back into the module variables when it returns.
 */
function decodeSymbols(output: Uint8Array, start: number, symbols: number): number {
  const size = output.length;
  const bytes = input;
  const length = inputLength;
  let buffer = bitBuffer;
  let byte = pendingByte;
  let bits = pendingBits;
  let at = inputPosition;
  let fetched = fetchedBytes;
  let position = start;
  let remaining = symbols;
  while (remaining > 0 && position < size) {
    remaining--;
    let entry = cTable[buffer >>> (32 - MAX_CODE_LENGTH)]!;
    const symbol = entry & SYMBOL_MASK;
    if (symbol >= NC) {
      // The reader state is left as the block began, where the tree walk of earlier versions
      // reported it from.
      throw corrupt('symbol read from an empty Huffman code', position);
    }
    // The bit refill below is written out three times on purpose: the hot loop keeps the
    // bit reader's state in locals, which a helper would have to spill to module variables per symbol.
    let count = entry >>> LENGTH_SHIFT;
    buffer <<= count;
    while (count > bits) {
      count -= bits;
      buffer |= byte << count;
      byte = at < length ? bytes[at++]! : 0;
      fetched++;
      bits = 8;
    }
    bits -= count;
    buffer |= byte >>> bits;
    if (symbol < 256) {
      output[position++] = symbol;
      continue;
    }
    const matchLength = symbol - (256 - THRESHOLD);
    entry = ptTable[buffer >>> (32 - MAX_CODE_LENGTH)]!;
    const slot = entry & SYMBOL_MASK;
    if (slot >= MAXNP) {
      throw corrupt('symbol read from an empty Huffman code', position);
    }
    count = entry >>> LENGTH_SHIFT;
    buffer <<= count;
    while (count > bits) {
      count -= bits;
      buffer |= byte << count;
      byte = at < length ? bytes[at++]! : 0;
      fetched++;
      bits = 8;
    }
    bits -= count;
    buffer |= byte >>> bits;
    // Symbol n > 1 stands for a distance with n - 1 more bits after an implicit leading 1.
    let distance = slot;
    if (slot > 1) {
      count = slot - 1;
      distance = (1 << count) + (buffer >>> (32 - count));
      buffer <<= count;
      while (count > bits) {
        count -= bits;
        buffer |= byte << count;
        byte = at < length ? bytes[at++]! : 0;
        fetched++;
        bits = 8;
      }
      bits -= count;
      buffer |= byte >>> bits;
    }
    let from = position - distance - 1;
    if (from < 0) {
      fetchedBytes = fetched;
      pendingBits = bits;
      throw corrupt(
        `back-reference ${distance + 1} bytes back from output offset ${position} points before the start`,
        position,
      );
    }
    const end = Math.min(position + matchLength, size);
    if (end - position > 32 && end - position <= position - from) {
      output.copyWithin(position, from, end - (position - from));
      position = end;
    } else {
      // Short or overlapping copies (distance below length repeats the pattern).
      while (position < end) {
        output[position++] = output[from++]!;
      }
    }
  }
  bitBuffer = buffer;
  pendingByte = byte;
  pendingBits = bits;
  inputPosition = at;
  fetchedBytes = fetched;
  return position;
}
