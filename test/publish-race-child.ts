// Child process for src/publish/artifact.test.ts: one of two processes publishing the same
// content under the same name at the same moment. Prints one JSON line with what it got.
import { createHash } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { publishArtifact } from '../src/publish/artifact.js';

const [storeDir, configDir, barrier] = process.argv.slice(2) as [string, string, string];
const KEY = '5ace0f00'.repeat(8);
const CODE = new Uint8Array(8192).map((_, i) => (i * 13) & 0xff);

// Start line: both publish only once both are running, so the race does not depend on start-up times.
await appendFile(barrier, `${process.pid}\n`);
while ((await readFile(barrier, 'utf8')).trim().split('\n').length < 2) await sleep(5);

const published = await publishArtifact({
  name: 'race',
  keyValue: KEY,
  files: { code: CODE, vars: new Uint8Array(2048).fill(0xff), rom: new Uint8Array([0x55, 0xaa, 0, 0]) },
  manifest: { cache: { key: KEY }, publisher: process.pid },
  storeDir,
  configDir,
  machine: 'q35',
  target: 'DEBUG',
  secureBoot: false,
});
const digests = createHash('sha256');
for (const file of ['OVMF_CODE.fd', 'OVMF_VARS.fd', 'igd.rom', 'SHA256SUMS', 'manifest.json']) {
  digests.update(await readFile(path.join(published.artifactDir, file)));
}
process.stdout.write(
  `${JSON.stringify({
    version: published.version,
    artifactDir: published.artifactDir,
    reused: published.reused,
    digests: digests.digest('hex'),
  })}\n`,
);
