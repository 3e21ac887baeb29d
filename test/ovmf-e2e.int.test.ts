// Issue 4, "Done means", with real builds: EDK2 in a container through Podman's API, the
// structural check, a QEMU boot, the cache and the signed artifact directory, all through
// the installed command (node bin/ovmf-build.js) in child processes.
// A fresh build cache, config (signing key), state (logs) and artifact store per run; only
// the unpacked EDK2 source tree is shared with the user's cache (it is read-only input,
// keyed by its digest) so the test does not spend minutes on `apt-get source`. The builds are
// warm: the harness provides the default warm workspace (test/harness.ts) before the first one.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_DIR, REPO_ROOT } from './corpus.js';
import { ensureFreshDist } from './cli-harness.js';
import { isolatedCliEnv, warmWorkspace } from './harness.js';

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, 'bin', 'ovmf-build.js');
const GOP = path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi');
const VBT = path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt');
const VBT_CHANGED = path.join(CORPUS_DIR, 'vbt/cometlake-system76-lemp9.vbt');
const VBT_KILLED = path.join(CORPUS_DIR, 'vbt/coffeelake-lenovo-m720q.vbt');
const VBT_CONCURRENT = path.join(CORPUS_DIR, 'vbt/coffeelake-asrock-h370m-itx-ac.vbt');

let dir: string;
let env: NodeJS.ProcessEnv;

interface JobJson {
  cacheHit: boolean;
  key: string;
  artifactDir: string;
  files: { code: string; vars: string; rom: string };
  miss: { reason: string; lines: string[]; nearestKey: string | null } | null;
  waitedForLock: boolean;
}

interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI as a child process; `onStderr` sees progress as it comes (to kill mid-build). */
function cli(args: readonly string[], onStderr?: (text: string, kill: () => void) => void): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onStderr?.(stderr, () => child.kill('SIGKILL'));
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function parseJob(outcome: Outcome): JobJson {
  expect({ code: outcome.code, stderr: outcome.code === 0 ? '' : outcome.stderr }).toEqual({
    code: 0,
    stderr: '',
  });
  return JSON.parse(outcome.stdout) as JobJson;
}

const sha8 = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex')
    .slice(0, 8);

async function cacheEntries(): Promise<string[]> {
  const root = path.join(dir, 'cache', 'ovmf-build', 'cache');
  return (await readdir(root).catch(() => [] as string[]))
    .filter((name) => /^[0-9a-f]{64}$/.test(name))
    .sort();
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-e2e-'));
  await warmWorkspace();
  env = await isolatedCliEnv(dir);
  // The installed command runs dist/: built here when older than the source, never stale.
  ensureFreshDist();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ovmf-build --gop --vbt end to end (real EDK2 build, QEMU boot)', () => {
  let first: JobJson;

  it('builds a verified artifact directory', async () => {
    first = parseJob(await cli(['--gop', GOP, '--vbt', VBT, '--json']));
    expect(first.cacheHit).toBe(false);
    expect(path.dirname(path.dirname(first.artifactDir))).toBe(path.join(dir, 'artifacts'));
    const verify = await cli(['verify', first.artifactDir]);
    expect(verify.code).toBe(0);
    const sums = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: first.artifactDir });
    expect(sums.stdout).toContain('OVMF_CODE.fd: OK');
    expect(await cacheEntries()).toEqual([first.key]);
  });

  // How fast a hit is, is bench:cache's question (timed tests are banned); here: it built nothing
  // and published nothing new.
  it('serves the second identical run from the cache: same key, same artifact, nothing built', async () => {
    const versionsBefore = await readdir(path.dirname(first.artifactDir));
    const outcome = await cli(['--gop', GOP, '--vbt', VBT, '--json']);
    const second = parseJob(outcome);
    expect(second).toMatchObject({
      cacheHit: true,
      key: first.key,
      artifactDir: first.artifactDir,
      miss: null,
    });
    expect(await readdir(path.dirname(first.artifactDir))).toEqual(versionsBefore);
    expect(await cacheEntries()).toEqual([first.key]);
  });

  it('attributes a miss caused by another VBT to the VBT (`cache why`)', async () => {
    const changed = parseJob(await cli(['--gop', GOP, '--vbt', VBT_CHANGED, '--json']));
    const line = `vbt changed: ${await sha8(VBT)}.. -> ${await sha8(VBT_CHANGED)}..`;
    expect(changed.cacheHit).toBe(false);
    expect(changed.miss).toMatchObject({ reason: 'absent', nearestKey: first.key, lines: [line] });
    const listed = JSON.parse((await cli(['cache', 'ls', '--json'])).stdout) as {
      key: string;
      createdAt: string;
    }[];
    const created = listed.find((entry) => entry.key === first.key)?.createdAt ?? '';
    const why = await cli(['cache', 'why', changed.key.slice(0, 16)]);
    expect(why.code).toBe(0);
    expect(why.stdout).toBe(
      [
        `key ${changed.key}`,
        `cached; nearest other entry ${first.key.slice(0, 12)} (created ${created}) differs in 1 input:`,
        `  ${line}`,
        '',
      ].join('\n'),
    );
    expect((await cli(['verify', changed.artifactDir])).code).toBe(0);
  });

  it('leaves no artifact and no cache entry when killed with SIGKILL mid-build; the next run succeeds', async () => {
    const why = JSON.parse(
      (await cli(['cache', 'why', '--gop', GOP, '--vbt', VBT_KILLED, '--json'])).stdout,
    ) as {
      key: string;
      cached: boolean;
    };
    expect(why.cached).toBe(false);
    const before = await cacheEntries();
    let killedAt = '';
    const killed = await cli(['--gop', GOP, '--vbt', VBT_KILLED], (stderr, kill) => {
      // Kill once the container build is under way (a stage line or a module line).
      if (killedAt === '' && /\] build: building OVMF/.test(stderr)) {
        killedAt = stderr;
        setTimeout(kill, 5_000);
      }
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(killedAt).not.toBe('');
    expect(await cacheEntries()).toEqual(before);
    const artifactNames = await readdir(path.join(dir, 'artifacts'));
    for (const name of artifactNames) {
      const versions = await readdir(path.join(dir, 'artifacts', name));
      expect(versions.filter((v) => v.endsWith(why.key.slice(0, 8)))).toEqual([]);
    }
    const next = parseJob(await cli(['--gop', GOP, '--vbt', VBT_KILLED, '--json']));
    expect(next).toMatchObject({ cacheHit: false, key: why.key });
    expect((await cli(['verify', next.artifactDir])).code).toBe(0);
    expect(await readdir(path.join(dir, 'cache', 'ovmf-build', 'cache', 'locks'))).toEqual([]);
  });

  it('builds once when two identical runs race', async () => {
    const [a, b] = await Promise.all([
      cli(['--gop', GOP, '--vbt', VBT_CONCURRENT, '--json']),
      cli(['--gop', GOP, '--vbt', VBT_CONCURRENT, '--json']),
    ]);
    const results = [parseJob(a), parseJob(b)].sort((x, y) => Number(x.cacheHit) - Number(y.cacheHit));
    expect(results.map((r) => ({ cacheHit: r.cacheHit, waitedForLock: r.waitedForLock }))).toEqual([
      { cacheHit: false, waitedForLock: false },
      { cacheHit: true, waitedForLock: true },
    ]);
    expect(results[1]?.artifactDir).toBe(results[0]?.artifactDir);
    const logs = await readdir(path.join(dir, 'state', 'ovmf-build', 'logs'));
    expect(logs.length).toBeGreaterThan(0);
  });
});
