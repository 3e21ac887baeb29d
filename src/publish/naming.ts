// Artifact names and versions. A name says what the firmware is for
// ("cometlake-vbt-gop1034"); a version sorts by time and carries the short cache key
// ("20261124T051500Z-3f1c2a9b") so two builds never collide and `ls` shows them in order.

const SLUG_MAX_CHARS = 64;

/** Lower-case a-z0-9 words joined by '-', at most 64 characters. */
export function slugify(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, SLUG_MAX_CHARS)
    .replace(/-+$/, '');
}

export interface ArtifactNameInputs {
  /** VBT signature, e.g. "$VBT COMETLAKE". */
  readonly vbtSignature: string | null;
  /** GOP build number, e.g. "1034". */
  readonly gopBuild: string | null;
  /** The GOP's controller name, e.g. "Intel(R) Haswell Graphics Controller" (a generation hint). */
  readonly gopControllerName?: string | null;
}

/**
 * `<gop generation>-<vbt codename>-vbt-gop<build>`: the generation comes from the GOP's
 * controller name when it names one ("Intel(R) Haswell Graphics Controller"), the codename
 * from the VBT signature ("$VBT COMETLAKE" -> "cometlake"). Parts that are unknown are left out.
 */
export function deriveArtifactName(inputs: ArtifactNameInputs): string {
  const parts: string[] = [];
  const generation = /Intel\(R\)\s+(.+?)\s+Graphics Controller/.exec(inputs.gopControllerName ?? '')?.[1];
  if (generation !== undefined) parts.push(slugify(generation));
  const codename = inputs.vbtSignature?.replace(/^\$VBT\s*/, '').trim();
  if (codename !== undefined && codename !== '' && slugify(codename) !== '')
    parts.push(`${slugify(codename)}-vbt`);
  if (inputs.gopBuild !== null) parts.push(`gop${slugify(inputs.gopBuild)}`);
  const name = slugify(parts.join('-'));
  return name === '' ? 'ovmf' : name;
}

export interface GenerationNameInputs {
  /** The device table's platform key of --device (`cml`, `adln`), when a device was given. */
  readonly platformKey: string | null;
  /** The device id, 4 hex digits, when given. */
  readonly deviceId: string | null;
  /** The GOP family key inferred from the driver (`gen9`, `gen12`, `hsw-bdw`), when it tells. */
  readonly gopFamilyKey: string | null;
  readonly gopBuild: string | null;
}

/**
 * `<platform>-<device>-gop<build>` ("cml-9b41-gop1107") when the device is known; else
 * `<gop family>-gop<build>` ("gen9-gop1107"); else `gop<build>`. The VBT signature is not
 * used: it often names an older platform (Comet Lake VBTs say SKYLAKE).
 */
export function generationArtifactName(inputs: GenerationNameInputs): string {
  const parts: string[] = [];
  if (inputs.platformKey !== null) {
    parts.push(inputs.platformKey);
    if (inputs.deviceId !== null) parts.push(inputs.deviceId);
  } else if (inputs.gopFamilyKey !== null) {
    parts.push(inputs.gopFamilyKey);
  }
  if (inputs.gopBuild !== null) parts.push(`gop${inputs.gopBuild}`);
  const name = slugify(parts.join('-'));
  return name === '' ? 'ovmf' : name;
}

/** Throws TypeError unless the name is a safe single path component. */
export function assertArtifactName(name: string): void {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/i.test(name) || name.startsWith('.') || name.includes('..')) {
    throw new TypeError(
      `Expected an artifact name of letters, digits, '.', '_' and '-' (max 64), got \`${name}\``,
    );
  }
}

/** "20261124T051500Z-3f1c2a9b" (UTC, sortable as text). */
export function artifactVersion(date: Date, keyValue: string): string {
  const stamp = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `${stamp}-${keyValue.slice(0, 8)}`;
}
