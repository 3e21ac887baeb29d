// The one way EDK2 source acquisition runs a host tool (apt-get, tar, git): C locale, bounded
// output, abortable, and a failure becomes an Edk2Error with the last lines of stderr.
import { execFile } from 'node:child_process';
import type { ErrorCode } from '../../core/error-codes.js';
import { throwIfAborted } from '../../core/errors.js';
import { Edk2Error } from '../errors.js';

const MAX_CHILD_OUTPUT_BYTES = 64 * 1024 * 1024;

export interface ToolResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunToolOptions {
  readonly cwd?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal | undefined;
  /** The code of the Edk2Error a failure raises. */
  readonly code: ErrorCode;
}

export function runTool(file: string, args: readonly string[], options: RunToolOptions): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: { ...options.env, LC_ALL: 'C' },
        maxBuffer: MAX_CHILD_OUTPUT_BYTES,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        if (options.signal?.aborted === true) {
          try {
            throwIfAborted(options.signal);
          } catch (abort) {
            reject(abort);
            return;
          }
        }
        const tail = `${stderr}`.trim().split('\n').slice(-5).join('\n');
        reject(
          new Edk2Error(
            options.code,
            `\`${file} ${args.join(' ')}\` failed${tail === '' ? `: ${error.message}` : `:\n${tail}`}`,
            { command: [file, ...args], exitCode: (error as { code?: unknown }).code ?? null, stderr: tail },
            { cause: error },
          ),
        );
      },
    );
  });
}
