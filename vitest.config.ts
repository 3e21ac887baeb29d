import { defineConfig } from 'vitest/config';

/**
 * Two projects. Integration files share one setup (test/global-setup.ts: EDK2 source, engine,
 * builder image) and ask test/harness.ts for a warm workspace, so they do not depend on each
 * other's order and run side by side: most of them wait on QEMU (TCG, one core) or the engine,
 * while the few EDK2 builds use both cores in their compile phases only.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/*.e2e.test.ts', 'node_modules/**', 'dist/**'],
          // The unit project runs under nice 10 beside the EDK2 builds (scripts/run-tests.mjs), where
          // it may get a tenth of a core: CI on 3 December took 1,047 s for it (360 s in a rehearsal
          // the day before) and timed out two beforeAll hooks at vitest's default of 10 s (one runs
          // `inspect` on a 35 MiB image to calibrate, the other publishes and syncs a mirror). The
          // bounds are for hangs, not for speed.
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['src/**/*.int.test.ts', 'test/**/*.int.test.ts', 'test/**/*.e2e.test.ts'],
          exclude: ['node_modules/**', 'dist/**'],
          globalSetup: ['test/global-setup.ts'],
          // Variant templates in memory only (src/jobs/session.ts): with the product's default, a
          // template that one file's build leaves in the user's cache would turn the container
          // builds of the files after it into template builds, whose path they do not assert.
          // test/variant-template-disk.int.test.ts and test/nightly.int.test.ts run with the default.
          env: { OVMF_BUILD_VARIANT_TEMPLATES: 'memory' },
          testTimeout: 1_800_000,
          hookTimeout: 1_800_000,
          // Files in parallel (maxWorkers, set by scripts/run-tests.mjs or the CLI); tests
          // inside a file stay in order.
          fileParallelism: true,
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
