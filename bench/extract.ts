// Benchmark: `ovmf-build extract` against UEFIExtract on every corpus image and OVMF file.
// For each file, interleaved runs (median of RUNS) of:
//   ours:   node bin/ovmf-build.js extract <img> --out <tmp> --json (the installed command; it runs
//           extract from dist/cli/run.bundle.cjs, the one-script CLI that npm run build makes)
//   report: UEFIExtract <copy> report
//   body:   UEFIExtract <copy> <GOP file GUID> -o <tmp> -m body   (the VBT GUID when there is no GOP)
//   floor:  node <script that only reads the image>: Node's own start plus reading the
//           file, the least any Node implementation of `extract` can cost on this machine
//   work:   ours minus floor, what our own code costs above that floor
//   first:  ours once with an empty V8 compile cache (a user's very first run); every `ours`
//           run uses the cache that run filled, as every later run of a user does (bin/ovmf-build.js
//           keeps it in $XDG_CACHE_HOME/ovmf-build/compile-cache; here a temp dir of the bench)
// Goals (issue 12 item 5), judged per row against UEFIExtract's `report`: on an image of
// 2 MiB or more, wall (ours) <= 1.0x and work <= 0.5x; on a smaller one, work <= 1.0x
// (UEFIExtract finishes some small files faster than Node can start). Run: npm run bench:extract
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { corpusPath, firmwareEntries, REPO_ROOT } from '../test/corpus.js';

/** BENCH_RUNS: runs per command and file (median reported). */
const RUNS = Number(process.env['BENCH_RUNS'] ?? 7);
/** OVMF_BUILD_BIN: time another build of the CLI (e.g. a copy with other dependency versions). */
const BIN = process.env['OVMF_BUILD_BIN'] ?? path.join(REPO_ROOT, 'bin/ovmf-build.js');

function timeMs(
  command: string,
  args: readonly string[],
  okCodes: readonly number[],
  env: NodeJS.ProcessEnv = process.env,
): number {
  const start = performance.now();
  const result = spawnSync(command, args, { stdio: 'ignore', env });
  const elapsed = performance.now() - start;
  if (result.error !== undefined) throw result.error;
  if (!okCodes.includes(result.status ?? -1)) {
    throw new Error(`${command} ${args.join(' ')} exited ${String(result.status)}`);
  }
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const hasUefiExtract = spawnSync('UEFIExtract', [], { stdio: 'ignore' }).error === undefined;
if (!hasUefiExtract) {
  console.error('UEFIExtract is not on PATH (install uefitool-cli); only ovmf-build is timed.');
}

const loadAtStart = os.loadavg();
const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-bench-'));
/** The environment of our runs: a compile cache of the bench's own (NODE_COMPILE_CACHE would override it). */
function oursEnv(cacheHome: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome };
  delete env['NODE_COMPILE_CACHE'];
  delete env['NODE_DISABLE_COMPILE_CACHE'];
  return env;
}
const warmEnv = oursEnv(path.join(work, 'cache-warm'));
let firstRuns = 0;
const floorScript = path.join(work, 'floor.mjs');
writeFileSync(floorScript, "import { readFileSync } from 'node:fs';\nreadFileSync(process.argv[2]);\n");
interface Row {
  file: string;
  sizeInBytes: number;
  target: string;
  ours: number;
  /** One run with an empty compile cache. */
  first: number;
  floor: number;
  report: number | null;
  body: number | null;
}
const rows: Row[] = [];
try {
  for (const entry of firmwareEntries()) {
    const source = corpusPath(entry.path);
    const copy = path.join(work, path.basename(entry.path));
    copyFileSync(source, copy);
    const gopGuid = entry.truth.gop?.[0]?.file_guid;
    const vbtGuid = entry.truth.vbt?.[0]?.file_guid;
    const guid = gopGuid ?? vbtGuid ?? null;
    const oursArgs = (out: string): string[] => [BIN, 'extract', source, '--out', out, '--json'];
    // Exit 4/5 are the documented "GOP/VBT missing" outcomes of negative samples.
    const first = timeMs(
      process.execPath,
      oursArgs(path.join(work, 'out-first')),
      [0, 4, 5],
      oursEnv(path.join(work, `cache-first-${firstRuns++}`)),
    );
    rmSync(path.join(work, 'out-first'), { recursive: true, force: true });
    // Fills the warm cache with whatever this image's path loads (untimed).
    timeMs(process.execPath, oursArgs(path.join(work, 'out-warm')), [0, 4, 5], warmEnv);
    rmSync(path.join(work, 'out-warm'), { recursive: true, force: true });
    const ours: number[] = [];
    const floor: number[] = [];
    const report: number[] = [];
    const body: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const out = path.join(work, `out-${run}`);
      ours.push(timeMs(process.execPath, oursArgs(out), [0, 4, 5], warmEnv));
      rmSync(out, { recursive: true, force: true });
      floor.push(timeMs(process.execPath, [floorScript, source], [0]));
      if (hasUefiExtract) {
        report.push(timeMs('UEFIExtract', [copy, 'report'], [0]));
        if (guid !== null) {
          const dump = path.join(work, `dump-${run}`);
          body.push(timeMs('UEFIExtract', [copy, guid, '-o', dump, '-m', 'body'], [0]));
          rmSync(dump, { recursive: true, force: true });
        }
      }
    }
    rows.push({
      file: entry.path,
      sizeInBytes: statSync(source).size,
      target: gopGuid !== undefined ? 'GOP' : vbtGuid !== undefined ? 'VBT' : '-',
      ours: median(ours),
      first,
      floor: median(floor),
      report: report.length > 0 ? median(report) : null,
      body: body.length > 0 ? median(body) : null,
    });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** Images this large get the strict goal (wall and work); smaller ones the work goal only. */
const LARGE_IMAGE_BYTES = 2 * 1024 * 1024;
const fmt = (ms: number | null): string => (ms === null ? 'n/a' : `${ms.toFixed(0)} ms`);
const ratio = (a: number, b: number | null): string => (b === null ? 'n/a' : `${(a / b).toFixed(2)}x`);

interface Verdict {
  readonly work: number;
  /** null without UEFIExtract: nothing to judge against. */
  readonly pass: boolean | null;
  readonly goal: string;
}

function verdict(r: Row): Verdict {
  const work = r.ours - r.floor;
  const large = r.sizeInBytes >= LARGE_IMAGE_BYTES;
  const goal = large ? 'wall<=1.0x, work<=0.5x' : 'work<=1.0x';
  if (r.report === null) return { work, pass: null, goal };
  const pass = large ? r.ours <= r.report && work <= 0.5 * r.report : work <= r.report;
  return { work, pass, goal };
}

const header = [
  'file',
  'size',
  'finds',
  'ours',
  'ours, first run',
  'UEFIExtract report',
  'ours/report',
  'UEFIExtract body',
  'ours/body',
  'node start + read',
  'floor/body',
  'work (ours - floor)',
  'work/report',
  'goal',
  'result',
];
const verdicts = rows.map(verdict);
const table = rows.map((r, i) => {
  const v = verdicts[i] as Verdict;
  return [
    r.file,
    `${(r.sizeInBytes / 1024 / 1024).toFixed(2)} MiB`,
    r.target,
    fmt(r.ours),
    fmt(r.first),
    fmt(r.report),
    ratio(r.ours, r.report),
    fmt(r.body),
    ratio(r.ours, r.body),
    fmt(r.floor),
    ratio(r.floor, r.body ?? r.report),
    fmt(v.work),
    ratio(v.work, r.report),
    v.goal,
    v.pass === null ? 'n/a' : v.pass ? 'pass' : 'FAIL',
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
const line = (cells: string[]): string =>
  `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
const load = (values: number[]): string => values.map((l) => l.toFixed(2)).join(' ');
console.log(
  `median of ${RUNS} runs, ${os.cpus().length} CPUs, load average ${load(loadAtStart)} at start, ${load(os.loadavg())} at end`,
);
console.log(
  "ours: V8 compile cache warmed by an untimed run (as on a user's second run); 'ours, first run': one run with an empty cache",
);
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of table) console.log(line(row));
const failed = rows.filter((_, i) => verdicts[i]?.pass === false);
const judged = verdicts.filter((v) => v.pass !== null).length;
console.log(
  judged === 0
    ? 'goals not judged: UEFIExtract is not on PATH'
    : failed.length === 0
      ? `goals met on all ${judged} images (>= 2 MiB: wall <= 1.0x and work <= 0.5x UEFIExtract report; smaller: work <= 1.0x)`
      : `goals NOT met on ${failed.map((r) => r.file).join(', ')}`,
);
process.exitCode = failed.length === 0 ? 0 : 1;
