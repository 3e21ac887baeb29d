// A fresh temporary directory for each test of a file, removed after it: the beforeEach/afterEach
// pair many unit tests spelled out, once. Hooks run in the order they are registered, so a
// beforeEach registered after this call already finds the directory.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';

/**
 * Registers the hooks (call it at the top level of a test file or in a describe) and returns a
 * function that gives the current test's directory (`<tmpdir>/<prefix>XXXXXX`).
 */
export function tempDirPerTest(prefix: string): () => string {
  let dir: string | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), prefix));
  });
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (dir === undefined) throw new TypeError('Expected tempDirPerTest() to be read inside a test');
    return dir;
  };
}
