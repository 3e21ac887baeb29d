// Differential check of our VBT verdict against intel-gpu-tools' intel_vbt_decode.
//
//   npx tsx scripts/vbt-differential.ts [--json] [--verbose] [--git-dir <dir>[@<ref>]]... <dir|file>...
//
// --git-dir takes every *.vbt of a git repository's tree (a bare mirror is enough), e.g. the
// coreboot tree: `--git-dir <coreboot.git>@main`; the blobs are written to a temporary
// directory (removed at the end) named after their paths, and the commit is printed.
//
// For every file (directories are walked recursively), runs `ovmf-build inspect <file> --json`
// (the real command, in-process, from src/) and `intel_vbt_decode --file <file> --header`, and
// compares the verdict (accepted or refused), the VBT signature, the BDB version and the BDB blocks
// found (intel_vbt_decode's "BDB blocks present", against the ids of our parseVbt block walk).
// Prints each difference and a summary line; exits 0 when all agree, 1 when some differ, 2 on a
// usage error.
//
// How intel_vbt_decode judges a file (tools/intel_vbt_decode.c, main): it takes the first "$VBT"
// anywhere in the file, refuses (exit 1, "VBT signature missing") when there is none and (exit 1,
// "Invalid VBT found, BDB points beyond end of data block") when the BDB header would start past
// the file's end; everything else it decodes (exit 0). A crash (signal) counts as a refusal.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseVbt } from '../src/formats/vbt.js';
import { runCli } from '../test/cli-harness.js';

export interface Verdict {
  readonly accepted: boolean;
  /** Trailing spaces and everything from the first NUL removed, as intel_vbt_decode prints it. */
  readonly signature: string | null;
  readonly bdbVersion: number | null;
  /** The distinct ids of the BDB blocks found, ascending. */
  readonly blockIds: readonly number[] | null;
  /** Why it was refused (or the warnings when accepted), one line. */
  readonly note: string;
}

export interface Comparison {
  readonly file: string;
  readonly ours: Verdict;
  readonly theirs: Verdict;
  readonly agree: boolean;
  /** What differs: "verdict", "signature", "bdbVersion", "blocks"; empty when they agree. */
  readonly differences: readonly string[];
}

export const INTEL_VBT_DECODE = 'intel_vbt_decode';
const BDB_LFP_DATA_PTRS = 41;
const GENERATED_PTRS = /Generating (?:LVDS|LFP) data table pointers/;

/** The path of intel_vbt_decode on PATH, or null. */
export function findIntelVbtDecode(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, INTEL_VBT_DECODE);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

function printedSignature(raw: string): string {
  const nul = raw.indexOf('\0');
  return (nul === -1 ? raw : raw.slice(0, nul)).replace(/ +$/, '');
}

/** Runs intel_vbt_decode --header on a file and reads its verdict. */
export function intelVbtDecodeVerdict(file: string, binary: string = INTEL_VBT_DECODE): Verdict {
  const result = spawnSync(binary, ['--file', file, '--header'], {
    encoding: 'latin1',
    timeout: 30_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.error !== undefined) throw result.error;
  const stderr = result.stderr
    .trim()
    .split('\n')
    .filter((line) => line !== '');
  if (result.status !== 0) {
    const how = result.signal !== null ? `killed by ${result.signal}` : `exit ${String(result.status)}`;
    return {
      accepted: false,
      signature: null,
      bdbVersion: null,
      blockIds: null,
      note: `${how}: ${stderr.join('; ')}`,
    };
  }
  const signature = /^\tVBT signature:\t+"([^\n]*)"$/m.exec(result.stdout);
  const bdbVersion = /^\tBDB version:\t+(\d+)$/m.exec(result.stdout);
  const present = /^BDB blocks present:\n((?:\t[ \d]+\n)*)/m.exec(result.stdout);
  return {
    accepted: true,
    signature: signature?.[1] === undefined ? null : printedSignature(signature[1]),
    bdbVersion: bdbVersion?.[1] === undefined ? null : Number(bdbVersion[1]),
    blockIds:
      present?.[1] === undefined
        ? null
        : present[1]
            .split(/\s+/)
            .filter((id) => id !== '')
            .map(Number)
            // It makes up an LFP data table pointers block (41) for a VBT without one, as i915
            // does (generate_lfp_data_ptrs), says so on stderr and lists it; it is not in the file.
            .filter((id) => id !== BDB_LFP_DATA_PTRS || !GENERATED_PTRS.test(result.stderr)),
    note: stderr.join('; '),
  };
}

/** Runs `ovmf-build inspect <file> --json` in-process and reads its verdict. */
export async function inspectVerdict(file: string): Promise<Verdict> {
  const result = await runCli(['inspect', file, '--json']);
  if (result.code !== 0) {
    return {
      accepted: false,
      signature: null,
      bdbVersion: null,
      blockIds: null,
      note: `exit ${result.code}: ${result.stderr.trim().split('\n')[0] ?? ''}`,
    };
  }
  const json = JSON.parse(result.stdout) as {
    kind: string;
    vbt?: { signature: string; bdbVersion: number; warnings: string[] };
  };
  if (json.kind !== 'vbt' || json.vbt === undefined) {
    return {
      accepted: false,
      signature: null,
      bdbVersion: null,
      blockIds: null,
      note: `inspect says kind "${json.kind}"`,
    };
  }
  // inspect prints the block count only; the ids come from the same parser it runs.
  const blocks = parseVbt(new Uint8Array(readFileSync(file))).blocks;
  return {
    accepted: true,
    signature: printedSignature(json.vbt.signature),
    bdbVersion: json.vbt.bdbVersion,
    blockIds: [...new Set(blocks.map((block) => block.id))].sort((a, b) => a - b),
    note: json.vbt.warnings.join('; '),
  };
}

export async function compareFile(file: string, binary: string = INTEL_VBT_DECODE): Promise<Comparison> {
  const theirs = intelVbtDecodeVerdict(file, binary);
  const ours = await inspectVerdict(file);
  const differences: string[] = [];
  if (ours.accepted !== theirs.accepted) differences.push('verdict');
  else if (ours.accepted) {
    if (ours.signature !== theirs.signature) differences.push('signature');
    if (ours.bdbVersion !== theirs.bdbVersion) differences.push('bdbVersion');
    if (JSON.stringify(ours.blockIds) !== JSON.stringify(theirs.blockIds)) differences.push('blocks');
  }
  return { file, ours, theirs, agree: differences.length === 0, differences };
}

/** Files under the given paths (directories walked recursively, sorted, *.md left out). */
export function collectFiles(paths: readonly string[]): string[] {
  const files: string[] = [];
  const walk = (target: string, named: boolean): void => {
    const stat = statSync(target);
    if (stat.isDirectory()) {
      for (const name of readdirSync(target).sort()) walk(path.join(target, name), false);
      // A README beside fixtures is not a candidate; a file named on the command line always is.
    } else if (stat.isFile() && (named || !target.endsWith('.md'))) files.push(target);
  };
  for (const target of paths) walk(path.resolve(target), true);
  return files;
}

function describe(verdict: Verdict): string {
  return verdict.accepted
    ? `accepted "${verdict.signature ?? '?'}" BDB ${String(verdict.bdbVersion)} blocks [${verdict.blockIds?.join(' ') ?? '?'}]${verdict.note === '' ? '' : ` (${verdict.note})`}`
    : `refused (${verdict.note})`;
}

/** Writes every *.vbt blob of `<gitDir>[@ref]` into `into`; returns the commit. */
export function dumpGitVbts(spec: string, into: string): string {
  const at = spec.lastIndexOf('@');
  const [gitDir, ref] = at > 0 ? [spec.slice(0, at), spec.slice(at + 1)] : [spec, 'HEAD'];
  const git = (args: string[]): Buffer => {
    const result = spawnSync('git', ['--git-dir', gitDir, ...args], { maxBuffer: 1 << 30 });
    if (result.error !== undefined) throw result.error;
    if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr.toString().trim()}`);
    return result.stdout;
  };
  const commit = git(['rev-parse', '--verify', `${ref}^{commit}`])
    .toString()
    .trim();
  for (const line of git(['ls-tree', '-r', '-z', commit]).toString().split('\0')) {
    const match = /^\d+ blob ([0-9a-f]+)\t(.*\.vbt)$/i.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    writeFileSync(path.join(into, match[2].replaceAll('/', '__')), git(['cat-file', 'blob', match[1]]));
  }
  return commit;
}

async function cli(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json');
  const verbose = argv.includes('--verbose');
  const targets: string[] = [];
  const gitDirs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--git-dir' && argv[i + 1] !== undefined) gitDirs.push(argv[++i] as string);
    else if (!arg.startsWith('--')) targets.push(arg);
  }
  if ((targets.length === 0 && gitDirs.length === 0) || argv.includes('--help')) {
    process.stderr.write(
      'usage: npx tsx scripts/vbt-differential.ts [--json] [--verbose] [--git-dir <dir>[@<ref>]]... <dir|file>...\n',
    );
    return 2;
  }
  const binary = findIntelVbtDecode();
  if (binary === null) {
    process.stderr.write(`${INTEL_VBT_DECODE} is not on PATH (Debian package intel-gpu-tools)\n`);
    return 2;
  }
  const dumps: string[] = [];
  try {
    for (const spec of gitDirs) {
      const into = mkdtempSync(path.join(os.tmpdir(), 'vbt-differential-git-'));
      dumps.push(into);
      const commit = dumpGitVbts(spec, into);
      process.stderr.write(`${spec}: ${readdirSync(into).length} *.vbt files at commit ${commit}\n`);
      targets.push(into);
    }
    return await compareAll(targets, binary, json, verbose);
  } finally {
    for (const dir of dumps) rmSync(dir, { recursive: true, force: true });
  }
}

async function compareAll(
  targets: readonly string[],
  binary: string,
  json: boolean,
  verbose: boolean,
): Promise<number> {
  const comparisons: Comparison[] = [];
  for (const file of collectFiles(targets)) {
    const comparison = await compareFile(file, binary);
    comparisons.push(comparison);
    if (json) continue;
    if (!comparison.agree) {
      process.stdout.write(
        `DIFF ${comparison.differences.join(',')} ${file}\n  ours:             ${describe(comparison.ours)}\n  intel_vbt_decode: ${describe(comparison.theirs)}\n`,
      );
    } else if (verbose) {
      process.stdout.write(`same ${file}: ${describe(comparison.ours)}\n`);
    }
  }
  const agreed = comparisons.filter((c) => c.agree).length;
  const accepted = comparisons.filter((c) => c.ours.accepted).length;
  const summary = {
    compared: comparisons.length,
    agreed,
    differing: comparisons.length - agreed,
    acceptedByUs: accepted,
    acceptedByIntelVbtDecode: comparisons.filter((c) => c.theirs.accepted).length,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify({ summary, comparisons }, null, 2)}\n`);
  } else {
    process.stdout.write(
      `compared ${summary.compared}, agreed ${summary.agreed}, differing ${summary.differing} (accepted: ours ${summary.acceptedByUs}, intel_vbt_decode ${summary.acceptedByIntelVbtDecode})\n`,
    );
  }
  return summary.differing === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await cli(process.argv.slice(2));
}
