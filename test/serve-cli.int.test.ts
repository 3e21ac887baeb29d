// `ovmf-build serve` as a real process (node --import tsx test/cli-entry.ts): it prints where it
// listens (127.0.0.1 unless --host), serves, and ends on SIGTERM/SIGINT with the signal's status
// (143/130) after closing; bad arguments and unusable trees exit with their codes; and
// --print-nginx-etags prints the map nginx needs for the same strong ETags.
import { spawn } from 'node:child_process';
import { writeFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/core/digest.js';
import { runCli } from './cli-harness.js';
import { REPO_ROOT } from './corpus.js';
import { makeServeTree, rawRequest, treeBytes, type ServeTree } from './serve-tree.js';

const ENTRY = path.join(REPO_ROOT, 'test', 'cli-entry.ts');

let tree: ServeTree;
beforeAll(async () => {
  tree = await makeServeTree('ovmf-serve-cli-');
});
afterAll(async () => {
  await rm(tree.dir, { recursive: true, force: true });
});

describe('ovmf-build serve (process)', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('serves on 127.0.0.1 until %s, then exits %d', async (signal, status) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'serve', tree.root, '--port', '0'], {
      // tsx resolves from the checkout.
      cwd: REPO_ROOT,
      env: { ...process.env, ...tree.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const found = /^serving (.+) at (http:\/\/127\.0\.0\.1:\d+\/)\n/.exec(stdout);
        if (found !== null) resolve(found[2] as string);
      });
      void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const index = await rawRequest(url, '/index.json');
    expect([index.status, index.headers.etag]).toEqual([
      200,
      `"${sha256(await treeBytes(tree, 'index.json'))}"`,
    ]);
    const signalledAt = Date.now();
    child.kill(signal);
    expect(await exited).toBe(status);
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect(stderr).toBe(`ovmf-build: interrupted by ${signal}\n`);
    await expect(rawRequest(url, '/index.json')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses bad arguments (2), a missing tree (6), a file as tree (6) and a port in use (1)', async () => {
    const cli = (...argv: string[]) => runCli(argv, tree.dir, tree.env);
    const badPort = await cli('serve', tree.root, '--port', '70000');
    expect([badPort.code, badPort.stderr]).toEqual([2, expect.stringContaining('--port must be 0-65535')]);
    const twoDirs = await cli('serve', tree.root, tree.root);
    expect(twoDirs.code).toBe(2);
    const missing = await cli('serve', path.join(tree.dir, 'nope'), '--port', '0');
    expect([missing.code, missing.stderr]).toEqual([6, expect.stringContaining('[E_INPUT_NOT_FOUND]')]);
    const file = path.join(tree.dir, 'a-file');
    await writeFile(file, 'x');
    const notDir = await cli('serve', file, '--port', '0');
    expect([notDir.code, notDir.stderr]).toEqual([
      6,
      expect.stringContaining('[E_SERVE_ROOT_NOT_A_DIRECTORY]'),
    ]);
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const port = (holder.address() as { port: number }).port;
      const busy = await cli('serve', tree.root, '--port', String(port));
      expect([busy.code, busy.stderr]).toEqual([1, expect.stringContaining('[E_SERVE_LISTEN_FAILED]')]);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('--print-nginx-etags prints one map line per file outside by-hash, with its sha256', async () => {
    const printed = await runCli(['serve', tree.root, '--print-nginx-etags'], tree.dir, tree.env);
    expect(printed.code).toBe(0);
    const lines = printed.stdout.trimEnd().split('\n');
    const indexLine = `"/index.json" "\\"${sha256(await treeBytes(tree, 'index.json'))}\\"";`;
    expect(lines).toContain(indexLine);
    expect(lines).toContain(`"/${tree.largeFile}" "\\"${sha256(await treeBytes(tree, tree.largeFile))}\\"";`);
    expect(lines.filter((line) => line.startsWith('"/by-hash/') || line.includes('.hidden'))).toEqual([]);
    expect(lines.filter((line) => line.includes('secret'))).toEqual([]);
  });
});
