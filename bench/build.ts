// Benchmark: a cold OVMF build through the tool (buildOvmf over Podman's Docker API) against
// the same build run by hand in an identical container: same tools image (builder image + source
// tree + compiled BaseTools), staged inputs copied in with `podman cp`, the same generated
// script, started with the `podman` CLI. Prints both wall times, the ratio (goal: tool overhead <= 3%) and the CPU
// seconds the engine's API service spent while the tool streamed the build log.
// Run: npm run bench:build   (BENCH_ORDER=hand-first to run the by-hand build first)
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { connectEngine } from '../src/container/index.js';
import { prepareBuildInputs } from '../src/edk2/build-inputs.js';
import { OUTPUT_DIR, SCRIPT_PATH, WORKSPACE } from '../src/edk2/build-script.js';
import { buildOvmf } from '../src/edk2/build.js';
import { DEFAULT_BUILDER_CONTEXT, DEFAULT_BUILDER_REPOSITORY } from '../src/edk2/builder-context.js';
import { DEFAULT_BUILD_FLAGS } from '../src/edk2/flags.js';
import { acquireEdk2Source } from '../src/edk2/source.js';
import { ensureToolsImage } from '../src/edk2/tools-image.js';
import { CORPUS_DIR } from '../test/corpus.js';

const run = promisify(execFile);
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const logger = pino({ level: process.env['OVMF_BUILD_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
const gop = new Uint8Array(await readFile(path.join(CORPUS_DIR, 'gop/cometlake-mrchromebox-cml.efi')));
const vbt = new Uint8Array(await readFile(path.join(CORPUS_DIR, 'vbt/cometlake-intel-nuc10i5fnh.vbt')));

/** utime + stime of a process in seconds (proc(5), fields 14 and 15), null if it is gone. */
async function processCpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const { stdout } = await run('getconf', ['CLK_TCK']);
    return ticks / Number(stdout.trim());
  } catch {
    return null;
  }
}

/** Every `podman system service` process (the engine's API server, whoever started it). */
async function podmanServicePids(): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const args = cmdline.split('\0');
    if (path.basename(args[0] ?? '') === 'podman' && args.includes('system') && args.includes('service')) {
      pids.push(Number(name));
    }
  }
  return pids;
}

async function serviceCpu(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += (await processCpuSeconds(pid)) ?? 0;
  return total;
}

const source = await acquireEdk2Source({ kind: 'debian' }, { env: process.env, logger });
await using engine = await connectEngine({ env: process.env, logger });
const builder = await engine.ensureBuilderImage({
  contextDir: DEFAULT_BUILDER_CONTEXT,
  repository: DEFAULT_BUILDER_REPOSITORY,
  logger,
});
// Clean builds start from the tools image (source + compiled BaseTools, src/edk2/tools-image.ts),
// made here before either timed build so both start from it.
const tools = await ensureToolsImage({
  engine,
  builder,
  source,
  jobId: `bench-tools-${randomBytes(4).toString('hex')}`,
  logger,
  limits: { memoryBytes: 4 * 1024 * 1024 * 1024, pids: 4096 },
});
console.error(
  `tools image ${tools.ref} (${tools.built ? `made now in ${(tools.durationMs / 1000).toFixed(1)} s, not timed` : 'existed'})`,
);
console.error(
  `source: ${source.description}; builder image ${builder.ref}; engine ${engine.info.kind} ${engine.info.version} (${engine.info.source})`,
);

async function viaTool(): Promise<{
  wallMs: number;
  engineCpuSeconds: number | null;
  modules: number;
  codeSha256: string;
}> {
  const pids = await podmanServicePids();
  const cpuBefore = engine.serviceCpuSeconds() ?? (await serviceCpu(pids));
  const started = performance.now();
  const result = await buildOvmf({
    gop,
    vbt,
    source,
    engine,
    logger,
    jobId: `bench-tool-${randomBytes(4).toString('hex')}`,
    workspace: { reuse: false, commit: false },
  });
  const wallMs = performance.now() - started;
  const cpuAfter = engine.serviceCpuSeconds() ?? (await serviceCpu(pids));
  return {
    wallMs,
    engineCpuSeconds: pids.length === 0 && engine.serviceCpuSeconds() === null ? null : cpuAfter - cpuBefore,
    modules: result.modulesBuilt,
    codeSha256: sha256(result.code),
  };
}

async function byHand(): Promise<{ wallMs: number; codeSha256: string }> {
  const stage = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-bench-hand-'));
  const name = `ovmf-build-bench-hand-${randomBytes(4).toString('hex')}`;
  try {
    const prepared = await prepareBuildInputs({
      gop,
      vbt,
      sourceDir: source.dir,
      flags: DEFAULT_BUILD_FLAGS,
      mode: 'clean',
    });
    for (const file of prepared.files) {
      const target = path.join(stage, file.path);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, file.data);
      await chmod(target, file.mode ?? 0o644);
    }
    const started = performance.now();
    await run('podman', [
      'create',
      '--name',
      name,
      '--label',
      'ovmf-build.job=bench-by-hand',
      '--network',
      'none',
      '--user',
      '1000:1000',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--memory',
      '4g',
      '--pids-limit',
      '4096',
      '--workdir',
      WORKSPACE,
      '--env',
      'LC_ALL=C',
      '--env',
      'TZ=UTC',
      tools.ref,
      '/bin/bash',
      SCRIPT_PATH,
    ]);
    // The source tree is in the tools image already.
    await run('podman', ['cp', path.join(stage, SCRIPT_PATH.split('/')[1] as string), `${name}:/`]);
    const child = spawn('podman', ['start', '--attach', name], { stdio: ['ignore', 'ignore', 'ignore'] });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`the by-hand build exited ${String(code)}`);
    await run('podman', ['cp', `${name}:${OUTPUT_DIR}/OVMF_CODE.fd`, path.join(stage, 'OVMF_CODE.fd')]);
    await run('podman', ['rm', '--force', name]);
    const wallMs = performance.now() - started;
    return { wallMs, codeSha256: sha256(await readFile(path.join(stage, 'OVMF_CODE.fd'))) };
  } finally {
    await run('podman', ['rm', '--force', '--ignore', name]).catch(() => undefined);
    await rm(stage, { recursive: true, force: true });
  }
}

const handFirst = process.env['BENCH_ORDER'] === 'hand-first';
let tool: Awaited<ReturnType<typeof viaTool>>;
let hand: Awaited<ReturnType<typeof byHand>>;
if (handFirst) {
  hand = await byHand();
  tool = await viaTool();
} else {
  tool = await viaTool();
  hand = await byHand();
}

const s = (ms: number): string => (ms / 1000).toFixed(1);
const rows: [string, string][] = [
  ['cold build via the tool (buildOvmf, Docker API)', `${s(tool.wallMs)} s`],
  ['same build by hand (podman create/cp/start -a)', `${s(hand.wallMs)} s`],
  ['ratio tool / by hand (goal <= 1.03)', (tool.wallMs / hand.wallMs).toFixed(3)],
  [
    'engine CPU while the tool streamed logs',
    tool.engineCpuSeconds === null ? 'n/a' : `${tool.engineCpuSeconds.toFixed(2)} s`,
  ],
  ['modules built', String(tool.modules)],
  ['OVMF_CODE.fd sha256 (tool)', tool.codeSha256],
  ['OVMF_CODE.fd sha256 (by hand)', hand.codeSha256],
  ['identical', String(tool.codeSha256 === hand.codeSha256)],
  ['order', handFirst ? 'by hand first' : 'tool first'],
];
const width = Math.max(...rows.map(([label]) => label.length));
console.log(rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n'));
