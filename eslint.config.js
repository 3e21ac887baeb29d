import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'artifacts/**', 'coverage/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': 'off',
    },
  },
  {
    // Parsers take bytes: no I/O in the firmware formats layer (STYLE.md).
    files: ['src/formats/**/*.ts', 'src/core/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            'fs',
            'node:fs',
            'fs/promises',
            'node:fs/promises',
            'net',
            'node:net',
            'child_process',
            'node:child_process',
            'dockerode',
            'undici',
            'tar-stream',
          ],
        },
      ],
    },
  },
  {
    // core's file-system helpers (atomic directories, durable writes, pid liveness) do file I/O on
    // purpose; they still import no network, process or engine module.
    files: ['src/core/dir-store.ts', 'src/core/durable-fs.ts', 'src/core/process-alive.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            'net',
            'node:net',
            'child_process',
            'node:child_process',
            'dockerode',
            'undici',
            'tar-stream',
          ],
        },
      ],
    },
  },
  {
    // Only the container layer talks to the engine; only the fetch layer imports undici.
    files: ['src/**/*.ts'],
    ignores: ['src/container/**', 'src/fetch/**', 'src/formats/**', 'src/core/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['dockerode', 'undici'] }],
    },
  },
);
