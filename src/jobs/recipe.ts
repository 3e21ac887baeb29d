// Recipes: per-CPU-generation inputs (recipes/*.json) for builds that are not given files,
// e.g. nightly builds. The inputs are a GOP driver and a VBT, or one vendor firmware image or
// package the job extracts both from (as `--firmware` does, issue 12 item 4). Each input is a
// URL pinned by sha256 (raw GitHub URLs at a commit), or a local path. A mirror base URL can
// replace the GitHub origin (tests serve the same bytes from a local server; air-gapped sites
// from their own).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import type { InputSpec } from '../fetch/index.js';
import { readInputText } from '../fetch/read-input.js';

export const GITHUB_RAW_ORIGIN = 'https://raw.githubusercontent.com';

interface RecipeCommon {
  readonly name: string;
  readonly description?: string;
  /** PCI id the generated ROM carries, "8086:9b41". */
  readonly device?: string;
  /**
   * Every iGPU the recipe's GOP and VBT serve ("8086:9b21", ...): the device table's IDs of the
   * platform of `device` (containers/igd-devices.json). Empty when the recipe lists none.
   */
  readonly devices: readonly string[];
  readonly machine?: 'q35' | 'i440fx';
  readonly flags?: {
    readonly fdSize?: '2MB' | '4MB';
    readonly target?: 'DEBUG' | 'RELEASE';
    readonly network?: boolean;
    readonly secureBoot?: boolean;
  };
}

/** A recipe that pins the GOP driver and the VBT themselves. */
export interface GopVbtRecipe extends RecipeCommon {
  readonly gop: InputSpec;
  readonly vbt: InputSpec;
}

/**
 * A recipe that pins a vendor firmware image or package (`"firmware": {"url", "sha256"}`): the
 * job extracts the GOP and the VBT from it with the code `--firmware` uses, and keys the cache
 * by the extracted GOP and VBT digests as `--firmware` does.
 */
export interface FirmwareRecipe extends RecipeCommon {
  readonly firmware: InputSpec;
}

export type Recipe = GopVbtRecipe | FirmwareRecipe;

/** The job's inputs of a recipe: GOP and VBT, or the firmware to extract them from. */
export function recipeInputs(
  recipe: Recipe,
): { readonly gop: InputSpec; readonly vbt: InputSpec } | { readonly firmware: InputSpec } {
  return 'firmware' in recipe ? { firmware: recipe.firmware } : { gop: recipe.gop, vbt: recipe.vbt };
}

const SHA256 = /^[0-9a-f]{64}$/;

/** A bad recipe: E_USAGE (exit 2), naming the file and, when one is at fault, the field. */
function bad(file: string, what: string, field?: string): never {
  throw new UsageError(`recipe ${file}: ${what}`, {
    recipe: file,
    ...(field === undefined ? {} : { field }),
  });
}

function inputSpec(value: unknown, field: string, file: string, baseUrl: string | undefined): InputSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    bad(file, `\`${field}\` must be an object with url or path`, field);
  const spec = value as { url?: unknown; path?: unknown; sha256?: unknown };
  if (spec.sha256 !== undefined && (typeof spec.sha256 !== 'string' || !SHA256.test(spec.sha256))) {
    bad(file, `\`${field}.sha256\` must be 64 lower-case hex digits`, `${field}.sha256`);
  }
  if (typeof spec.url === 'string') {
    if (typeof spec.sha256 !== 'string')
      bad(file, `\`${field}.url\` needs a pinned \`${field}.sha256\``, `${field}.sha256`);
    if (!/^https?:\/\//.test(spec.url)) bad(file, `\`${field}.url\` must be an http(s) URL`, `${field}.url`);
    const url =
      baseUrl !== undefined && spec.url.startsWith(`${GITHUB_RAW_ORIGIN}/`)
        ? `${baseUrl.replace(/\/+$/, '')}/${spec.url.slice(GITHUB_RAW_ORIGIN.length + 1)}`
        : spec.url;
    return { url, sha256: spec.sha256 };
  }
  if (typeof spec.path === 'string') {
    const resolved = path.resolve(path.dirname(file), spec.path);
    return typeof spec.sha256 === 'string' ? { path: resolved, sha256: spec.sha256 } : { path: resolved };
  }
  return bad(file, `\`${field}\` needs \`url\` (with sha256) or \`path\``, field);
}

/** `firmware`, or `gop` and `vbt`: exactly one way, as on the command line. */
function inputsOf(
  parsed: Record<string, unknown>,
  file: string,
  baseUrl: string | undefined,
): { gop: InputSpec; vbt: InputSpec } | { firmware: InputSpec } {
  const has = (field: string) => parsed[field] !== undefined;
  if (has('firmware')) {
    const extra = ['gop', 'vbt'].find(has);
    if (extra !== undefined) {
      bad(file, `give \`firmware\` or \`gop\` and \`vbt\`, not both (\`${extra}\` is set too)`, extra);
    }
    return { firmware: inputSpec(parsed['firmware'], 'firmware', file, baseUrl) };
  }
  if (!has('gop') && !has('vbt')) bad(file, 'needs `gop` and `vbt`, or `firmware`', 'gop');
  return {
    gop: inputSpec(parsed['gop'], 'gop', file, baseUrl),
    vbt: inputSpec(parsed['vbt'], 'vbt', file, baseUrl),
  };
}

/**
 * Reads and validates a recipe. `baseUrl` replaces https://raw.githubusercontent.com in
 * input URLs (same path below it).
 */
export async function loadRecipe(file: string, options: { readonly baseUrl?: string } = {}): Promise<Recipe> {
  // A FIFO or a device given as --recipe fails here (E_INPUT_NOT_A_FILE) instead of hanging.
  const text = await readInputText(file, { what: 'recipe' });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`cannot read recipe ${file}: ${(error as Error).message}`, { recipe: file });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    bad(
      file,
      `must hold one JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  const parsed = value as Record<string, unknown>;
  if (typeof parsed['name'] !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(parsed['name'])) {
    bad(file, '`name` must be a lower-case slug', 'name');
  }
  const machine = parsed['machine'];
  if (machine !== undefined && machine !== 'q35' && machine !== 'i440fx')
    bad(file, '`machine` must be q35 or i440fx', 'machine');
  const device = parsed['device'];
  if (device !== undefined && (typeof device !== 'string' || !/^8086:[0-9a-f]{4}$/i.test(device))) {
    bad(file, '`device` must look like 8086:9b41', 'device');
  }
  const devices = parsed['devices'] ?? [];
  if (
    !Array.isArray(devices) ||
    !devices.every((d): d is string => typeof d === 'string' && /^8086:[0-9a-f]{4}$/i.test(d))
  ) {
    bad(file, '`devices` must be a list of ids like 8086:9b41', 'devices');
  }
  const flags = parsed['flags'];
  if (flags !== undefined && (typeof flags !== 'object' || flags === null || Array.isArray(flags)))
    bad(file, '`flags` must be an object', 'flags');
  return {
    name: parsed['name'],
    ...(typeof parsed['description'] === 'string' ? { description: parsed['description'] } : {}),
    ...inputsOf(parsed, file, options.baseUrl),
    ...(typeof device === 'string' ? { device: device.toLowerCase() } : {}),
    devices: devices.map((d) => d.toLowerCase()),
    ...(machine === undefined ? {} : { machine }),
    ...(flags === undefined ? {} : { flags: flags as Recipe['flags'] & object }),
  };
}

export interface RecipeFile {
  readonly file: string;
  readonly recipe: Recipe;
}

/**
 * Every `*.json` recipe of a directory, by file name: the nightly matrix. A directory
 * without recipes, or two recipes with one name (they would share artifact names and job
 * ids), is a usage error.
 */
export async function loadRecipeDir(
  dir: string,
  options: { readonly baseUrl?: string } = {},
): Promise<RecipeFile[]> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((entry) => entry.name.endsWith('.json') && !entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    throw new UsageError(`cannot read the recipe directory ${dir}: ${(error as Error).message}`, {
      recipeDir: dir,
    });
  }
  if (names.length === 0) throw new UsageError(`no recipes (*.json) in ${dir}`, { recipeDir: dir });
  const loaded: RecipeFile[] = [];
  const byName = new Map<string, string>();
  for (const name of names) {
    const file = path.join(dir, name);
    const recipe = await loadRecipe(file, options);
    const other = byName.get(recipe.name);
    if (other !== undefined) {
      throw new UsageError(`recipes ${other} and ${file} are both named ${recipe.name}`, {
        recipe: recipe.name,
      });
    }
    byName.set(recipe.name, file);
    loaded.push({ file, recipe });
  }
  return loaded;
}
