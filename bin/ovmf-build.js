#!/usr/bin/env node
import module from 'node:module';

// V8's on-disk compile cache (Node >= 22.1) roughly halves module load time on
// every run after the first; it is only a cache, so failures are ignored.
try {
  module.enableCompileCache?.();
} catch {
  // no cache: slower start, same behaviour
}

const { run } = await import('../dist/cli/run.js');
await run();
