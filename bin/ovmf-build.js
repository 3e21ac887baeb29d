#!/usr/bin/env node
// The installed command: turns on V8's compile cache, then hands over to the CLI (dist/cli/run.js).
import module from 'node:module';
import path from 'node:path';
import { userCacheDir } from '../dist/cache/paths.js';

// Not `import ... from 'node:fs'`: its ESM export list is built through getters that load the
// fs streams, a few ms of every cold start (see src/cli/run.ts).
const { existsSync, mkdirSync } = process.getBuiltinModule('node:fs');

/**
 * Creates `dir` one missing component at a time. Not mkdir's `recursive` (nor Node's own
 * creation of the cache directory): Node 22's recursive mkdir never returns for a path under
 * /proc, whose mkdir answers ENOENT although the parent exists. Throws when it cannot.
 */
function makeDirectory(dir) {
  const missing = [];
  for (let at = dir; !existsSync(at); at = path.dirname(at)) {
    missing.push(at);
    if (path.dirname(at) === at) break;
  }
  for (const component of missing.reverse()) mkdirSync(component);
}

// V8's on-disk compile cache (Node >= 22.1): every run after the first loads our modules from
// code compiled once, which is most of what a short command (extract on a small image) costs
// above Node's own start. It lives in $XDG_CACHE_HOME/ovmf-build/compile-cache (default
// ~/.cache/ovmf-build/compile-cache); NODE_COMPILE_CACHE=DIR, if set, wins (Node enabled it
// already) and NODE_DISABLE_COMPILE_CACHE=1 turns it off. It is only a cache: a directory that
// cannot be written leaves the command as it is, just slower to start.
try {
  const dir = path.join(userCacheDir(process.env), 'compile-cache');
  makeDirectory(dir);
  module.enableCompileCache?.(dir);
} catch {
  // no cache: slower start, same behaviour
}

const { run } = await import('../dist/cli/run.js');
await run();
