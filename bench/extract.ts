// Benchmark: `ovmf-build extract` against UEFIExtract on every corpus image and OVMF file.
// For each file, interleaved runs (median of RUNS) of:
//   ours:   node bin/ovmf-build.js extract <img> --out <tmp> --json
//   report: UEFIExtract <copy> report
//   body:   UEFIExtract <copy> <GOP file GUID> -o <tmp> -m body   (the VBT GUID when there is no GOP)
//   floor:  node <script that only reads the image>: Node's own start plus reading the
//           file, the least any Node implementation of `extract` can cost on this machine
// Goal: ours <= 0.5x UEFIExtract on every image with a GOP or VBT. Run: npm run bench:extract
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { corpusPath, firmwareEntries, REPO_ROOT } from '../test/corpus.js';

/** BENCH_RUNS: runs per command and file (median reported). */
const RUNS = Number(process.env['BENCH_RUNS'] ?? 7);
/** OVMF_BUILD_BIN: time another build of the CLI (e.g. a copy with other dependency versions). */
const BIN = process.env['OVMF_BUILD_BIN'] ?? path.join(REPO_ROOT, 'bin/ovmf-build.js');

function timeMs(command: string, args: readonly string[], okCodes: readonly number[]): number {
  const start = performance.now();
  const result = spawnSync(command, args, { stdio: 'ignore' });
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

const work = mkdtempSync(path.join(os.tmpdir(), 'ovmf-build-bench-'));
const floorScript = path.join(work, 'floor.mjs');
writeFileSync(floorScript, "import { readFileSync } from 'node:fs';\nreadFileSync(process.argv[2]);\n");
interface Row {
  file: string;
  target: string;
  ours: number;
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
    const ours: number[] = [];
    const floor: number[] = [];
    const report: number[] = [];
    const body: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const out = path.join(work, `out-${run}`);
      // Exit 4/5 are the documented "GOP/VBT missing" outcomes of negative samples.
      ours.push(timeMs(process.execPath, [BIN, 'extract', source, '--out', out, '--json'], [0, 4, 5]));
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
      target: gopGuid !== undefined ? 'GOP' : vbtGuid !== undefined ? 'VBT' : '-',
      ours: median(ours),
      floor: median(floor),
      report: report.length > 0 ? median(report) : null,
      body: body.length > 0 ? median(body) : null,
    });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const fmt = (ms: number | null): string => (ms === null ? 'n/a' : `${ms.toFixed(0)} ms`);
const ratio = (a: number, b: number | null): string => (b === null ? 'n/a' : `${(a / b).toFixed(2)}x`);
const header = [
  'file',
  'finds',
  'ours',
  'UEFIExtract report',
  'ours/report',
  'UEFIExtract body',
  'ours/body',
  'node start + read',
  'floor/body',
];
const table = rows.map((r) => [
  r.file,
  r.target,
  fmt(r.ours),
  fmt(r.report),
  ratio(r.ours, r.report),
  fmt(r.body),
  ratio(r.ours, r.body),
  fmt(r.floor),
  ratio(r.floor, r.body ?? r.report),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
const line = (cells: string[]): string =>
  `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
console.log(
  `median of ${RUNS} runs, ${os.cpus().length} CPUs, load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of table) console.log(line(row));
const goal = rows.filter((r) => r.target !== '-' && r.body !== null);
const missed = goal.filter((r) => r.ours > 0.5 * Math.min(r.body as number, r.report as number));
console.log(
  missed.length === 0
    ? `goal met: ours <= 0.5x UEFIExtract on all ${goal.length} images with a GOP or VBT`
    : `goal NOT met on ${missed.map((r) => r.file).join(', ')} (ours must be <= 0.5x UEFIExtract)`,
);
const floorBound = goal.filter((r) => r.floor > 0.5 * Math.min(r.body as number, r.report as number));
if (floorBound.length > 0) {
  console.log(
    `on ${floorBound.map((r) => r.file).join(', ')} Node's start plus reading the image alone already costs more than 0.5x UEFIExtract here`,
  );
}
