#!/usr/bin/env node
// The installed command: turns on V8's compile cache, then hands over to the CLI (dist/cli/run.js,
// or its bundle for the commands that only parse: see bundleOf and runBundle).
import module from 'node:module';
import path from 'node:path';
import { userCacheDir } from '../dist/cache/paths.js';

// Not `import ... from 'node:fs'`: its ESM export list is built through getters that load the
// fs streams, a few ms of every cold start (see src/cli/run.ts).
const { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } =
  process.getBuiltinModule('node:fs');

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

/** Commands that run from the bundle: those that only parse bytes (see bundleOf). */
const FROM_BUNDLE = new Set(['extract', 'inspect']);

/**
 * The bundle to run the command from, with its stat, or null for the modules of dist/.
 * `npm run build` also makes dist/cli/run.bundle.cjs, the CLI as one script (esbuild): Node
 * loading ~60 modules one by one (resolving, reading and instantiating each) is most of what
 * extract costs on a small image above Node's own start. The bundle keeps the other commands
 * out (they import from dist/ and would bring second copies of classes such as
 * OvmfBuildError, which the CLI's error report tests with instanceof), so only the commands
 * that never load them use it. It is skipped when it is missing or older than
 * dist/cli/run.js: `tsc` alone (as the tests' rebuild of dist/ does) rebuilds dist/ only.
 */
function bundleOf(command) {
  if (!FROM_BUNDLE.has(command ?? '')) return null;
  const at = (file) => path.join(import.meta.dirname, '..', 'dist', 'cli', file);
  try {
    const bundle = statSync(at('run.bundle.cjs'));
    if (bundle.mtimeMs >= statSync(at('run.js')).mtimeMs) return { file: at('run.bundle.cjs'), stat: bundle };
  } catch {
    // no bundle (a build by tsc alone): the modules
  }
  return null;
}

/**
 * Replaces `file` with `bytes` (writeFileAtomic: temp file, fsync, rename; loaded only here, on
 * the run that writes), then removes the other code cache files of `prefix`: older bundles'
 * and temp files of killed runs. Any failure leaves the command as it was: this is only a cache.
 */
async function saveCodeCache(file, bytes, prefix) {
  try {
    const { writeFileAtomic } = await import('../dist/core/durable-fs.js');
    await writeFileAtomic(file, bytes);
    const dir = path.dirname(file);
    for (const name of readdirSync(dir)) {
      const ours = name.startsWith(prefix) || name.startsWith(`.${prefix}`);
      if (ours && name !== path.basename(file)) rmSync(path.join(dir, name), { force: true });
    }
  } catch {
    // no cache: slower start, same behaviour
  }
}

/**
 * Runs the CLI from the bundle as a script with a V8 code cache of its own. Node's compile
 * cache (above) holds only what V8 compiles before a module runs, its top level; every
 * function compiled later, when first called, is compiled again in every run, and in a
 * bundle, where each module is a function, that is nearly all of it. A vm.Script's
 * createCachedData() after the command has run holds every function the run compiled, so the
 * next run of that command compiles nothing it used. One cache per command (extract and
 * inspect use different code), named after the bundle's size and mtime, in Node's versioned
 * compile cache directory (so none without a compile cache, e.g. NODE_DISABLE_COMPILE_CACHE=1).
 * A cache V8 refuses (another Node, other V8 flags, a truncated file) is written again after
 * the run; so is a missing one, except after a usage error (exit 2), which compiles little.
 * The cache is written the way the bundle is, whole or not at all: V8 checks its version,
 * flags, source length and payload length, not a checksum, so a file damaged in place is
 * trusted as the bundle itself would be.
 */
async function runBundle(command, { file, stat }) {
  const vm = process.getBuiltinModule('node:vm');
  const cacheDir = module.getCompileCacheDir?.();
  const prefix = `run.bundle.${command}.`;
  const cacheFile =
    cacheDir === undefined
      ? undefined
      : path.join(cacheDir, `${prefix}${stat.size}-${Math.trunc(stat.mtimeMs)}.v8cache`);
  let cachedData;
  if (cacheFile !== undefined) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // none yet
    }
  }
  // A CommonJS module's wrapper, its body on the first line so that line numbers stay the file's.
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`,
    { filename: file, cachedData, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER },
  );
  const cjs = { exports: {} };
  script.runInThisContext()(cjs.exports, module.createRequire(file), cjs, file, path.dirname(file));
  await cjs.exports.run();
  if (
    cacheFile !== undefined &&
    (cachedData === undefined ? process.exitCode !== 2 : script.cachedDataRejected)
  ) {
    await saveCodeCache(cacheFile, script.createCachedData(), prefix);
  }
}

const command = process.argv[2];
const bundle = bundleOf(command);
if (bundle === null) {
  const { run } = await import('../dist/cli/run.js');
  await run();
} else {
  await runBundle(command, bundle);
}
