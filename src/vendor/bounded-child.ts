// Runs an unpacking tool (7z) as a child process that cannot run away: a wall-clock timeout,
// a cap on what it prints, a cap on the size of any file it writes (prlimit RLIMIT_FSIZE, so
// an archive whose headers lie about sizes cannot fill the disk), no stdin, C.UTF-8 locale, and
// it dies with ovmf-build even on SIGKILL (setpriv --pdeathsig, core/exec-path.ts).
import { AbortError, OvmfBuildError } from '../core/errors.js';
import { diesWithParent, locate } from '../core/exec-path.js';

export interface BoundedRunOptions {
  readonly timeoutMs: number;
  /** Most bytes of stdout plus stderr kept; more kills the child. */
  readonly maxOutputBytes: number;
  /** Largest file the child may write (RLIMIT_FSIZE); undefined leaves it as it is. */
  readonly maxFileBytes?: number | undefined;
  readonly cwd?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface BoundedRunResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function toolFailed(
  tool: string,
  message: string,
  details: Record<string, unknown>,
  cause?: unknown,
): OvmfBuildError {
  return new OvmfBuildError('E_PACKAGE_TOOL_FAILED', `${tool}: ${message}`, { tool, ...details }, { cause });
}

/**
 * The command line of a bounded run: `tool args` under prlimit when a file size cap is given,
 * the whole of it under setpriv --pdeathsig so that a `kill -9` of ovmf-build does not leave
 * the tool running to its timeout. A tool that is not found is run as given, so that the spawn
 * fails with ENOENT and says the tool is missing (setpriv or prlimit would only exit 127).
 */
export function boundedCommand(
  tool: string,
  args: readonly string[],
  maxFileBytes: number | undefined,
  env: NodeJS.ProcessEnv,
): { readonly command: string; readonly args: readonly string[] } {
  const found = locate(tool, env);
  if (found === undefined) return { command: tool, args };
  return maxFileBytes === undefined
    ? diesWithParent(found, args, env)
    : diesWithParent('prlimit', [`--fsize=${maxFileBytes}`, '--', found, ...args], env);
}

/**
 * Runs `tool args` and resolves with its exit status and output, whatever the status (the
 * caller knows what a status means). Rejects with E_PACKAGE_TOOL_FAILED when the tool is
 * missing, runs past the timeout or prints more than the cap, and with E_ABORTED on abort.
 */
export function runBounded(
  tool: string,
  args: readonly string[],
  options: BoundedRunOptions,
): Promise<BoundedRunResult> {
  const { command: file, args: argv } = boundedCommand(tool, args, options.maxFileBytes, process.env);
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted();
    // Taken here, not imported: node:child_process (with node:net) would load on every extract,
    // a few ms of a cold run on a bare image, which never unpacks with 7z.
    const child = process.getBuiltinModule('node:child_process').spawn(file, [...argv], {
      cwd: options.cwd,
      env: { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outputBytes = 0;
    let failure: OvmfBuildError | null = null;
    const stop = (error: OvmfBuildError): void => {
      if (failure !== null) return;
      failure = error;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () =>
        stop(
          toolFailed(tool, `did not finish within ${options.timeoutMs} ms`, { timeoutMs: options.timeoutMs }),
        ),
      options.timeoutMs,
    );
    const onAbort = (): void => stop(new AbortError(`${tool} aborted`));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const collect =
      (into: Buffer[]) =>
      (chunk: Buffer): void => {
        outputBytes += chunk.length;
        if (outputBytes > options.maxOutputBytes) {
          stop(
            toolFailed(tool, `printed more than ${options.maxOutputBytes} bytes`, {
              maxOutputBytes: options.maxOutputBytes,
            }),
          );
          return;
        }
        into.push(chunk);
      };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.on('error', (error: NodeJS.ErrnoException) => {
      // A child that never started may not emit 'close': settle here.
      if (child.pid === undefined) {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      }
      stop(
        toolFailed(
          tool,
          error.code === 'ENOENT'
            ? `${file} is not installed (Debian: apt-get install p7zip-full util-linux)`
            : error.message,
          { errno: error.code ?? null },
          error,
        ),
      );
      if (child.pid === undefined) reject(failure);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (failure !== null) {
        reject(failure);
        return;
      }
      resolve({
        exitCode,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}
