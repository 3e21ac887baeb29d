// EDK2 from a tarball, local or downloaded, pinned by its sha256: the digest is checked before
// anything is unpacked, and names the cache entry.
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { download } from '../../fetch/download.js';
import { Edk2Error } from '../errors.js';
import type { AcquireSourceOptions, Edk2Source } from '../source.js';
import { materialise, SOURCE_SUBDIR } from './cache.js';
import { sha256File, singleTopDir } from './files.js';
import { runTool } from './run-tool.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export async function acquireTarball(
  spec: { readonly path?: string; readonly url?: string; readonly sha256: string },
  cacheDir: string,
  options: AcquireSourceOptions,
): Promise<Edk2Source> {
  if (typeof spec.sha256 !== 'string' || !SHA256_HEX.test(spec.sha256)) {
    throw new TypeError(`Expected \`sha256\` to be 64 lower-case hex digits, got \`${String(spec.sha256)}\``);
  }
  const digest = `sha256-${spec.sha256}`;
  const origin = spec.path ?? spec.url ?? '';
  return materialise(cacheDir, digest, options, async (tempDir) => {
    let tarball: string;
    if (spec.path !== undefined) {
      tarball = path.resolve(spec.path);
      const actual = await sha256File(tarball, options.signal).catch((error: unknown) => {
        throw new Edk2Error(
          'E_EDK2_SOURCE_UNAVAILABLE',
          `cannot read ${tarball}: ${(error as Error).message}`,
          {
            path: tarball,
          },
        );
      });
      if (actual !== spec.sha256) {
        throw new Edk2Error(
          'E_EDK2_SOURCE_DIGEST_MISMATCH',
          `${tarball}: sha256 ${actual}, expected ${spec.sha256}`,
          {
            path: tarball,
            expected: spec.sha256,
            actual,
          },
        );
      }
    } else {
      tarball = path.join(tempDir, 'source.tar');
      // download() verifies the digest while streaming (E_DOWNLOAD_DIGEST_MISMATCH).
      await download({
        url: spec.url as string,
        sha256: spec.sha256,
        dest: tarball,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    }
    const unpackDir = path.join(tempDir, 'unpack');
    await mkdir(unpackDir);
    await runTool('tar', ['-xf', tarball, '-C', unpackDir, '--no-same-owner', '--no-same-permissions'], {
      env: options.env,
      signal: options.signal,
      code: 'E_EDK2_SOURCE_UNPACK_FAILED',
    });
    await rename(await singleTopDir(unpackDir), path.join(tempDir, SOURCE_SUBDIR));
    await rm(unpackDir, { recursive: true, force: true });
    if (spec.path === undefined) await rm(tarball, { force: true });
    return {
      description: `EDK2 tarball ${path.basename(origin)} (sha256 ${spec.sha256.slice(0, 12)})`,
      details: { kind: 'tarball', origin, sha256: spec.sha256 },
    };
  });
}
