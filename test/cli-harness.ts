// Runs the real CLI entry (main) in-process with captured stdout/stderr and a real cwd, and
// keeps the compiled CLI (dist/, what bin/ovmf-build.js runs) as new as the source for tests
// that run it as users do.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { CommandContext } from '../src/cli/context.js';
import { main } from '../src/cli/main.js';
import { REPO_ROOT } from './corpus.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Captured {
  readonly ctx: CommandContext;
  stdout(): string;
  stderr(): string;
}

/** A CommandContext with captured output, the given env and cwd: the one capture of the tests. */
export function captureContext(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  signal: AbortSignal = new AbortController().signal,
): Captured {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  return {
    ctx: { argv, stdout, stderr, env, cwd, signal },
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
  };
}

/** main() in-process: exit code and captured output. @default cwd process.cwd(), env process.env */
export async function runCli(
  argv: readonly string[],
  cwd: string = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
  signal?: AbortSignal,
): Promise<CliResult> {
  const captured = captureContext(argv, env, cwd, signal);
  const code = await main(captured.ctx);
  return { code, stdout: captured.stdout(), stderr: captured.stderr() };
}

/** Reads a nested value of parsed JSON: dig(json, 'tree', 'children', 0). */
/** The `error.code` of a command's `--json` output on stdout. */
export function jsonErrorCode(stdout: string): unknown {
  return dig(JSON.parse(stdout), 'error', 'code');
}

export function dig(value: unknown, ...keys: (string | number)[]): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

/** Source files (not tests) whose compiled file in dist/ is missing or older. */
function staleDistFiles(): string[] {
  const src = path.join(REPO_ROOT, 'src');
  const stale: string[] = [];
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
    const source = path.join(entry.parentPath, entry.name);
    const compiled = path.join(REPO_ROOT, 'dist', path.relative(src, source).replace(/\.ts$/u, '.js'));
    if (!existsSync(compiled) || statSync(compiled).mtimeMs < statSync(source).mtimeMs) stale.push(source);
  }
  return stale;
}

/** The one-file CLI that bin/ovmf-build.js runs extract and inspect from, when it is not older than DIST_RUN. */
const BUNDLE = path.join(REPO_ROOT, 'dist/cli/run.bundle.cjs');
const DIST_RUN = path.join(REPO_ROOT, 'dist/cli/run.js');

function buildFailed(what: string, error: unknown): Error {
  // tsc reports on stdout, esbuild on stderr.
  const { stdout, stderr } = error as { stdout?: Buffer; stderr?: Buffer };
  const output = `${String(stdout ?? '')}${String(stderr ?? '')}`.trim();
  return new Error(`${what} failed, so bin/ovmf-build.js cannot be tested:\n${output}`, { cause: error });
}

/**
 * Compiles dist/ when it is missing or older than the source (`npm test` builds it first, so
 * then this costs nothing), so a test of bin/ovmf-build.js never runs yesterday's code and never
 * skips; then makes the CLI bundle when it is missing or older than dist/cli/run.js, as
 * `npm run build` does: after tsc alone bin/ovmf-build.js would run extract and inspect from
 * the modules, and the tests would miss what users run. Throws with the build's output when it
 * fails.
 */
export function ensureFreshDist(): void {
  if (staleDistFiles().length > 0) {
    try {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'pipe' });
    } catch (error) {
      throw buildFailed('npm run build', error);
    }
  }
  if (existsSync(BUNDLE) && statSync(BUNDLE).mtimeMs >= statSync(DIST_RUN).mtimeMs) return;
  // Written beside it and renamed into place: other test files may be starting
  // bin/ovmf-build.js meanwhile, and must never load a half-written bundle.
  const partial = path.join(path.dirname(BUNDLE), `.run.bundle.${process.pid}.cjs`);
  try {
    execFileSync('npm', ['run', '--silent', 'build:cli-bundle', '--', `--outfile=${partial}`], {
      cwd: REPO_ROOT,
      stdio: 'pipe',
    });
  } catch (error) {
    throw buildFailed('npm run build:cli-bundle', error);
  }
  renameSync(partial, BUNDLE);
}
