// The container layer's public surface; everything else in src/container is internal.
export { connectEngine } from './engine.js';
// types.ts is the layer's contract and nothing else: all of it is public.
export type * from './types.js';
