// node:crypto is taken when hashing, not imported: loading it costs about 2 ms of every cold
// `extract`, and an image with neither a GOP nor a VBT never hashes.
import type * as Crypto from 'node:crypto';

const crypto = (): typeof Crypto => process.getBuiltinModule('node:crypto');

/** Lower-case hex SHA-256 of some bytes. */
export function sha256(bytes: Uint8Array | string): string {
  return crypto().createHash('sha256').update(bytes).digest('hex');
}
