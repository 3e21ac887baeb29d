// Mutations of a real compressed stream for the decompressor fuzz tests (test/fuzz-decompress,
// and the WebAssembly-against-JS differential test): flip bytes, flip bits, truncate, cut a
// hole, or duplicate a run.
import fc from 'fast-check';

export const streamMutation = fc.oneof(
  fc.record({
    kind: fc.constant('bytes' as const),
    at: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
    value: fc.nat(255),
  }),
  fc.record({ kind: fc.constant('bit' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('hole' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
);
export type StreamMutation = typeof streamMutation extends fc.Arbitrary<infer T> ? T : never;

/**
 * `seed` with `change` applied at or after byte `from` (0: anywhere; a header's size keeps the
 * header's fields, so most mutants reach the decoder proper). Returns a new array.
 */
export function mutateStream(seed: Uint8Array, change: StreamMutation, from = 0): Uint8Array {
  const at = (index: number): number => from + (index % Math.max(1, seed.length - from));
  switch (change.kind) {
    case 'bytes': {
      const out = seed.slice();
      for (const index of change.at) {
        out[at(index)] = change.value;
      }
      return out;
    }
    case 'bit': {
      const out = seed.slice();
      out[at(change.at)]! ^= 1 << change.bit;
      return out;
    }
    case 'truncate':
      return seed.slice(0, at(change.at));
    case 'hole': {
      const start = at(change.at);
      const end = Math.min(seed.length, start + change.length);
      const out = new Uint8Array(seed.length - (end - start));
      out.set(seed.subarray(0, start));
      out.set(seed.subarray(end), start);
      return out;
    }
    case 'repeat': {
      const start = at(change.at);
      const run = seed.subarray(start, start + change.length);
      const out = new Uint8Array(seed.length + run.length);
      out.set(seed.subarray(0, start + run.length));
      out.set(seed.subarray(start), start + run.length);
      return out;
    }
  }
}
