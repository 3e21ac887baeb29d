// EDK2 from Debian's `edk2` source package via apt-get: the .dsc's sha256 from the apt index
// names the entry, and the downloaded .dsc is checked against it before unpacking.
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Edk2Error } from '../errors.js';
import type { AcquireSourceOptions, Edk2Source } from '../source.js';
import { materialise, SOURCE_SUBDIR } from './cache.js';
import { sha256File } from './files.js';
import { runTool } from './run-tool.js';

/** Debian's `edk2` source package (a deb-src entry is needed; scripts/install.sh adds one). */
export async function acquireDebian(
  version: string | undefined,
  cacheDir: string,
  options: AcquireSourceOptions,
): Promise<Edk2Source> {
  const pkg = version === undefined ? 'edk2' : `edk2=${version}`;
  const { stdout } = await runTool('apt-get', ['source', '--print-uris', '-qq', pkg], {
    env: options.env,
    signal: options.signal,
    code: 'E_EDK2_SOURCE_UNAVAILABLE',
  });
  // Lines: 'uri' filename size SHA256:hex
  const dscLine = stdout
    .split('\n')
    .map((line) => /^'[^']+'\s+(\S+\.dsc)\s+\d+\s+SHA256:([0-9a-f]{64})\s*$/.exec(line.trim()))
    .find((match) => match !== null);
  if (dscLine === undefined || dscLine === null) {
    throw new Edk2Error(
      'E_EDK2_SOURCE_UNAVAILABLE',
      `apt-get knows no source package ${pkg} with a SHA256 .dsc; is a deb-src entry configured (scripts/install.sh)?`,
      { package: pkg, output: stdout.slice(0, 2000) },
    );
  }
  const dscName = dscLine[1] as string;
  const dscSha256 = dscLine[2] as string;
  const debVersion = /^edk2_(.+)\.dsc$/.exec(dscName)?.[1] ?? 'unknown';
  const digest = `sha256-${dscSha256}`;
  const description = `Debian edk2 ${debVersion} (.dsc sha256 ${dscSha256.slice(0, 12)})`;
  return materialise(cacheDir, digest, options, async (tempDir) => {
    const work = path.join(tempDir, 'apt');
    await mkdir(work);
    options.logger.info({ package: `edk2=${debVersion}` }, 'edk2 source: apt-get source');
    await runTool('apt-get', ['source', '-qq', `edk2=${debVersion}`], {
      cwd: work,
      env: options.env,
      signal: options.signal,
      code: 'E_EDK2_SOURCE_UNAVAILABLE',
    });
    const actual = await sha256File(path.join(work, dscName), options.signal);
    if (actual !== dscSha256) {
      throw new Edk2Error(
        'E_EDK2_SOURCE_DIGEST_MISMATCH',
        `${dscName}: sha256 ${actual}, apt index says ${dscSha256}`,
        {
          file: dscName,
          expected: dscSha256,
          actual,
        },
      );
    }
    const unpackedName = (await readdir(work, { withFileTypes: true })).find(
      (entry) => entry.isDirectory() && entry.name.startsWith('edk2-'),
    );
    if (unpackedName === undefined) {
      throw new Edk2Error('E_EDK2_SOURCE_UNAVAILABLE', `apt-get source ${pkg} left no edk2-* directory`, {
        package: pkg,
      });
    }
    await rename(path.join(work, unpackedName.name), path.join(tempDir, SOURCE_SUBDIR));
    await rm(work, { recursive: true, force: true });
    return { description, details: { kind: 'debian', version: debVersion, dsc: dscName, dscSha256 } };
  });
}
