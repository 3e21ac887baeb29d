// Lint configuration, and the layer boundaries of STYLE.md as rules: only
// src/container imports dockerode and tar-stream, only src/fetch imports undici,
// only src/queue imports bullmq and ioredis,
// only src/mirror/s3* imports @aws-sdk, only src/vendor imports yauzl,
// and the parsers (src/formats) and core types import no I/O. The boundaries
// cover test/ too; test/lint-boundaries.test.ts checks that they still fire.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ENGINE = ['dockerode', 'tar-stream'].map((name) => ({
  name,
  message: 'only src/container imports the engine client and tar-stream: use src/container/index.ts',
}));
const HTTP = [{ name: 'undici', message: 'only src/fetch imports undici: use src/fetch/index.ts' }];
const QUEUE = ['bullmq', 'ioredis'].map((name) => ({
  name,
  message: 'only src/queue imports bullmq and ioredis: use src/queue/index.ts',
}));
const S3 = [
  { name: '@aws-sdk/client-s3', message: 'only src/mirror/s3* imports @aws-sdk: use src/mirror/s3-push.ts' },
];
const ZIP = [{ name: 'yauzl', message: 'only src/vendor imports yauzl: use src/vendor/open-package.ts' }];
const withNode = (names) => names.flatMap((name) => [name, `node:${name}`]);
const IO = withNode(['fs', 'fs/promises', 'net', 'http', 'https', 'tls', 'dgram', 'child_process']).map(
  (name) => ({ name, message: 'parsers and core types take bytes and do no I/O (STYLE.md)' }),
);
const PROCESS_AND_NETWORK = IO.filter(({ name }) => !/fs/.test(name));

/** A no-restricted-imports setting refusing these modules and their subpaths. */
const refuse = (...groups) => {
  const paths = groups.flat();
  return [
    'error',
    {
      paths,
      patterns: [
        { group: paths.map(({ name }) => `${name}/*`), message: 'see the layer rules in eslint.config.js' },
      ],
    },
  ];
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'artifacts/**', 'coverage/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  // Later blocks replace the rule for the files they match, so the narrowest comes last.
  {
    // Everywhere, tests, scripts and benchmarks included: the engine and HTTP clients stay in their layers.
    files: ['**/*.{ts,mts,cts,js,mjs,cjs}'],
    rules: { 'no-restricted-imports': refuse(ENGINE, HTTP, QUEUE, S3, ZIP) },
  },
  {
    files: ['src/container/**'],
    rules: { 'no-restricted-imports': refuse(HTTP, QUEUE, S3, ZIP) },
  },
  {
    files: ['src/fetch/**'],
    rules: { 'no-restricted-imports': refuse(ENGINE, QUEUE, S3, ZIP) },
  },
  {
    files: ['src/queue/**'],
    rules: { 'no-restricted-imports': refuse(ENGINE, HTTP, S3, ZIP) },
  },
  {
    files: ['src/mirror/s3*'],
    rules: { 'no-restricted-imports': refuse(ENGINE, HTTP, QUEUE, ZIP) },
  },
  {
    files: ['src/vendor/**'],
    rules: { 'no-restricted-imports': refuse(ENGINE, HTTP, QUEUE, S3) },
  },
  {
    // Parsers take bytes: no I/O in the firmware formats layer or the core types. Their tests
    // may read fixture files, still not through the engine or HTTP clients.
    files: ['src/formats/**', 'src/core/**'],
    ignores: ['src/**/*.test.ts'],
    rules: { 'no-restricted-imports': refuse(IO, ENGINE, HTTP, QUEUE, S3, ZIP) },
  },
  {
    // core's file-system helpers (atomic directories, durable writes, pid liveness, programs on
    // PATH) do file I/O on purpose; they still import no network, process or engine module.
    files: [
      'src/core/dir-store.ts',
      'src/core/durable-fs.ts',
      'src/core/exec-path.ts',
      'src/core/process-alive.ts',
    ],
    rules: { 'no-restricted-imports': refuse(PROCESS_AND_NETWORK, ENGINE, HTTP, QUEUE, S3, ZIP) },
  },
  {
    // Exception: this test (and its helper) reads the build container's HostConfig and lists
    // containers by label straight from the engine, the independent view of what the container
    // layer asked for.
    files: ['test/build.int.test.ts', 'test/build-jobs.ts'],
    rules: {
      'no-restricted-imports': refuse(
        ENGINE.filter(({ name }) => name !== 'dockerode'),
        HTTP,
        QUEUE,
        S3,
        ZIP,
      ),
    },
  },
);
