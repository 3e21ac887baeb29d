// Child process of decompression-bomb.test.ts: parses one image and reports the outcome and
// its own peak RSS (process.resourceUsage().maxRSS, in KiB), so the parent measures the parse
// alone, not the test runner.
import { readFileSync } from 'node:fs';
import { OvmfBuildError } from '../src/core/errors.js';
import { parseFirmware } from '../src/formats/firmware-tree.js';

const [file] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: decompression-bomb-child.ts <image>');
const bytes = new Uint8Array(readFileSync(file));
const baselineKiB = process.resourceUsage().maxRSS;
let outcome: Record<string, unknown>;
try {
  const tree = parseFirmware(bytes, { verifyChecksums: false, summarizePe: false });
  outcome = { ok: true, stats: tree.stats };
} catch (error) {
  if (!(error instanceof OvmfBuildError)) throw error;
  outcome = { ok: false, code: error.code, message: error.message, details: error.details };
}
process.stdout.write(
  JSON.stringify({ ...outcome, baselineKiB, maxRssKiB: process.resourceUsage().maxRSS }) + '\n',
);
