// Shared test helper: where the real-firmware corpus lives and its manifest (ground truth
// measured with UEFIExtract and intel_vbt_decode). The corpus is outside the repository
// (never copied in): <repo>/../shared/corpus.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..');
export const CORPUS_DIR = path.resolve(REPO_ROOT, '../shared/corpus');

export interface ManifestGop {
  readonly file_guid: string;
  readonly ui_name: string | null;
  readonly file_type: string;
  readonly file_size: number;
  readonly section: string;
  readonly pe_size: number;
  readonly pe_sha256: string;
  readonly is_intel_gop: boolean;
  readonly gop_build: string | null;
  readonly uefiextract_dump_path: string;
}

export interface ManifestVbt {
  readonly file_guid: string;
  readonly ui_name: string | null;
  readonly file_type: string;
  readonly section: string;
  readonly body_size: number;
  readonly body_sha256: string;
  readonly vbt_size_field: number;
  readonly vbt_sha256_trimmed_to_vbt_size: string;
  readonly signature: string;
  readonly intel_vbt_decode: {
    readonly decoded: boolean;
    readonly bdb_version: number;
    readonly vbt_version: string;
  };
  readonly uefiextract_dump_path: string;
}

export interface ManifestImageTruth {
  readonly uefiextract: {
    readonly parsed: boolean;
    readonly rc: number;
    readonly report_top_lines: readonly string[];
    readonly report_lines: number;
  };
  readonly containers: readonly string[];
  readonly compression: readonly string[];
  readonly guided_section_types: readonly string[];
  readonly intel_flash_descriptor: boolean;
  readonly gop: readonly ManifestGop[] | null;
  readonly other_gop_named_files: readonly ManifestGop[];
  readonly vbt: readonly ManifestVbt[] | null;
}

export interface ManifestEntry {
  readonly path: string;
  readonly kind: 'gop' | 'vbt' | 'image' | 'rom' | 'ovmf';
  readonly generation: string;
  readonly description: string;
  readonly sha256: string;
  readonly size: number;
  // Shape depends on kind; image and ovmf entries use ManifestImageTruth.
  readonly ground_truth: Record<string, unknown>;
}

export interface Manifest {
  readonly description: string;
  readonly entries: readonly ManifestEntry[];
}

/** True when the corpus is present; tests that need it fail loudly (not skip) when it is not. */
export function corpusAvailable(): boolean {
  return existsSync(path.join(CORPUS_DIR, 'manifest.json'));
}

let cached: Manifest | undefined;

export function loadManifest(): Manifest {
  cached ??= JSON.parse(readFileSync(path.join(CORPUS_DIR, 'manifest.json'), 'utf8')) as Manifest;
  return cached;
}

export function corpusEntries(kind?: ManifestEntry['kind']): ManifestEntry[] {
  return loadManifest().entries.filter((e) => kind === undefined || e.kind === kind);
}

/** Image and OVMF entries with their typed ground truth. */
export function firmwareEntries(): (ManifestEntry & { readonly truth: ManifestImageTruth })[] {
  return loadManifest()
    .entries.filter((e) => e.kind === 'image' || e.kind === 'ovmf')
    .map((e) => ({ ...e, truth: e.ground_truth as unknown as ManifestImageTruth }));
}

export function corpusPath(relative: string): string {
  return path.join(CORPUS_DIR, relative);
}

/** Reads a corpus file as a Uint8Array. */
export function readCorpus(relative: string): Uint8Array {
  const buffer = readFileSync(corpusPath(relative));
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
