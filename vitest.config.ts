import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * Integration files in a fixed order: test/build.int.test.ts first. It makes the one clean
 * EDK2 build that commits the warm workspace (and checks that a build started meanwhile waits
 * for it); every later file that only needs some build then starts warm. Left to file sizes,
 * another file could pay for a clean build first and build.int a second one.
 */
class IntegrationSequencer extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    if (!files.every((file) => file.project.name === 'integration')) return super.sort(files);
    const rank = (file: TestSpecification): number =>
      file.moduleId.endsWith('/test/build.int.test.ts') ? 0 : 1;
    return Promise.resolve(
      [...files].sort((a, b) => rank(a) - rank(b) || a.moduleId.localeCompare(b.moduleId)),
    );
  }
}

export default defineConfig({
  test: {
    // A root option (not per project); it leaves the unit project's order to Vitest.
    sequence: { sequencer: IntegrationSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/*.e2e.test.ts', 'node_modules/**', 'dist/**'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['src/**/*.int.test.ts', 'test/**/*.int.test.ts', 'test/**/*.e2e.test.ts'],
          exclude: ['node_modules/**', 'dist/**'],
          testTimeout: 1_800_000,
          hookTimeout: 1_800_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
