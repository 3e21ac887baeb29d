// The unpackers the outside-in loop tries (unpack-package.ts): the most confident detection
// wins; on equal confidence the first listed. Pure parsers from src/formats (Dell PFS,
// capsules) register here with one line each. The capsule layer asks the whole list about a
// capsule's body, so a capsule holding a zip, a PFS or another capsule goes through them all.
import { capsuleUnpacker } from '../formats/capsule-unpacker.js';
import { dellPfsUnpacker } from '../formats/pfs-unpacker.js';
import { cabUnpacker, sevenZipUnpacker, sfxUnpacker } from './seven-zip.js';
import type { Unpacker } from './unpacker.js';
import { zipUnpacker } from './zip.js';

export const UNPACKERS: readonly Unpacker[] = [
  zipUnpacker,
  sevenZipUnpacker,
  cabUnpacker,
  dellPfsUnpacker,
  capsuleUnpacker(() => UNPACKERS),
  sfxUnpacker,
];
