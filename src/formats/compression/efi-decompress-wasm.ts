// The WebAssembly EFI/Tiano decoder, the fast path of efi-decompress.ts (kept apart from the JS
// decoder, which owns every error).
import { EFI_DECOMPRESS_WASM_BASE64 } from './efi-decompress-wasm.generated.js';
import type { EfiVariant } from './efi-decompress.js';

// The WebAssembly decoder (wasm/efi-decompress.c, embedded by scripts/build-wasm.sh): V8 compiles
// a module before it runs it, where a cold process interprets the JS decode loop below for its
// first thousands of symbols (the Coffee Lake FSP's nine streams: about 20 ms of CPU in JS, 7 in
// WebAssembly, in a cold process). It mirrors the JS decoder and only says whether it succeeded;
// any failure is decoded again in JS, which owns every error message and offset.

/**
 * Largest input plus output given to the WebAssembly decoder. Its linear memory never shrinks,
 * so a larger decode would stay with the process; those go to the JS decoder, whose cold start
 * is then a small part of the work anyway.
 */
const WASM_MAX_BYTES = 16 * 1024 * 1024;
const WASM_PAGE_BYTES = 65_536;

// The lib is ES2023 without DOM and @types/node declares no WebAssembly globals: the part used here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}

interface WasmDecoder {
  readonly memory: WasmMemory;
  readonly heapBase: number;
  readonly decode: (
    input: number,
    inputLength: number,
    output: number,
    outputLength: number,
    variant: number,
  ) => number;
  readonly consumedBits: () => number;
}

/** undefined: not yet instantiated; null: this runtime refused the module. */
let wasmDecoder: WasmDecoder | null | undefined;

function loadWasmDecoder(): WasmDecoder | null {
  try {
    // Synchronous on purpose: the decoders are synchronous, and the module is 7 KiB.
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const module = new wasm.Module(Buffer.from(EFI_DECOMPRESS_WASM_BASE64, 'base64'));
    const exports = new wasm.Instance(module).exports;
    const heapBase = (exports['heap_base'] as () => number)();
    return {
      memory: exports['memory'] as WasmMemory,
      heapBase,
      decode: exports['decode'] as WasmDecoder['decode'],
      consumedBits: exports['consumed_bits'] as () => number,
    };
  } catch {
    return null;
  }
}

/**
 * Decodes `stream` (the bytes after the header) into `originalSize` bytes with the WebAssembly
 * decoder; undefined when it fails for any reason (a corrupt stream, a trap, no memory). Exported
 * for the differential test against the JS decoder.
 */
export function decodeEfiWasm(
  stream: Uint8Array,
  originalSize: number,
  variant: EfiVariant,
): { output: Uint8Array; consumedBits: number } | undefined {
  if (stream.length + originalSize > WASM_MAX_BYTES) {
    return undefined;
  }
  wasmDecoder ??= loadWasmDecoder();
  const decoder = wasmDecoder;
  if (decoder === null) {
    return undefined;
  }
  try {
    const inputAt = decoder.heapBase;
    const outputAt = inputAt + stream.length;
    const shortBytes = outputAt + originalSize - decoder.memory.buffer.byteLength;
    if (shortBytes > 0) {
      decoder.memory.grow(Math.ceil(shortBytes / WASM_PAGE_BYTES));
    }
    const memory = new Uint8Array(decoder.memory.buffer);
    memory.set(stream, inputAt);
    const status = decoder.decode(inputAt, stream.length, outputAt, originalSize, variant === 'efi' ? 0 : 1);
    if (status !== 0) {
      return undefined;
    }
    return { output: memory.slice(outputAt, outputAt + originalSize), consumedBits: decoder.consumedBits() };
  } catch {
    return undefined;
  }
}
