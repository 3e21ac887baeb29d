#!/usr/bin/env node
// The installed command: turns on V8's compile cache, then hands over to the CLI (dist/cli/run.js,
// or its bundle for the commands that only parse: see cliEntry).
import module from 'node:module';
import path from 'node:path';
import { userCacheDir } from '../dist/cache/paths.js';

// Not `import ... from 'node:fs'`: its ESM export list is built through getters that load the
// fs streams, a few ms of every cold start (see src/cli/run.ts).
const { existsSync, mkdirSync, statSync } = process.getBuiltinModule('node:fs');

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

/** Commands that run from the bundle: those that only parse bytes (see cliEntry). */
const FROM_BUNDLE = new Set(['extract', 'inspect']);

/**
 * The module to run. `npm run build` also makes dist/cli/run.bundle.js, the CLI as one file
 * (esbuild): Node loading ~60 modules one by one (resolving, reading and instantiating each)
 * is most of what extract costs on a small image above Node's own start. The bundle keeps
 * the other commands out (they import from dist/ and would bring second copies of classes
 * such as OvmfBuildError, which the CLI's error report tests with instanceof), so only the
 * commands that never load them use it. It is skipped when it is missing or older than
 * dist/cli/run.js: `tsc` alone (as the tests' rebuild of dist/ does) rebuilds dist/ only.
 */
function cliEntry() {
  const modules = '../dist/cli/run.js';
  const bundle = '../dist/cli/run.bundle.js';
  if (!FROM_BUNDLE.has(process.argv[2] ?? '')) return modules;
  const mtimeMs = (file) => statSync(path.join(import.meta.dirname, file)).mtimeMs;
  try {
    if (mtimeMs(bundle) >= mtimeMs(modules)) return bundle;
  } catch {
    // no bundle (a build by tsc alone): the modules
  }
  return modules;
}

const { run } = await import(cliEntry());
await run();
