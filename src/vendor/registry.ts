// The unpackers the outside-in loop tries, in order (on equal confidence the first wins).
// Pure parsers from src/formats register here with one line each.
import type { Unpacker } from './unpacker.js';
import { zipUnpacker } from './zip.js';

export const UNPACKERS: readonly Unpacker[] = [zipUnpacker];
