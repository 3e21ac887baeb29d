// The mirror's static tree and its index format: the one definition that `mirror index`
// writes, `mirror sync` and `pull` read, and `serve` / `mirror push` / nginx serve. Modelled on
// the Debian archive (one signed file names every object's digest; immutable by-hash paths;
// Valid-Until against replay) and on LVFS metadata (relative locations, so any mirror works).
// Every URL in the index is relative to the tree's root.

/** Paths inside a mirror tree, relative to its root (`/`-separated, as URLs). */
export const MIRROR_LAYOUT = {
  /** The index payload alone (the same object as index.signed.json's `payload`), for people and scripts. */
  index: 'index.json',
  /** `{ payload, signature, key_fingerprint, algorithm }`: what sync and pull trust. Written last. */
  signedIndex: 'index.signed.json',
  /** The page generated from the index: self-contained, no JavaScript. */
  html: 'index.html',
  /** `by-hash/sha256/<hex>`: every file of every version, immutable. */
  byHashDir: 'by-hash/sha256',
  /** `artifacts/<name>/<version>/<file>`: the published directories, byte for byte. */
  artifactsDir: 'artifacts',
  /** `artifacts/<name>/latest.json` instead of the store's `latest` symlink (S3 has no links). */
  latestFile: 'latest.json',
  /** `keys/<fingerprint>.pub`: the index key and every artifact signing key the index names. */
  keysDir: 'keys',
  /** Local state of a mirror (history of indexes, downloads in progress); never served. */
  stateDir: '.mirror',
} as const;

export const INDEX_FORMAT = 'ovmf-build-mirror-index';
export const INDEX_FORMAT_VERSION = 1;
/** Domain separation: the signed bytes are this line followed by the canonical JSON of the payload. */
export const INDEX_SIGNATURE_CONTEXT = 'ovmf-build mirror index signature v1\n';

/** One file of a version directory. */
export interface MirrorFile {
  /** The file name inside the version directory. */
  readonly name: string;
  readonly size: number;
  /** Lower-case hex. */
  readonly sha256: string;
  /** `artifacts/<name>/<version>/<file>`. */
  readonly url: string;
  /** `by-hash/sha256/<hex>`. */
  readonly by_hash: string;
  /** What the file is for: code, vars, rom, manifest, descriptor, proxmox, qemu, sums, signature, key. */
  readonly role: string;
}

/** The checks that verified the firmware when it was built (from the artifact's manifest). */
export interface MirrorVerification {
  /** Structural check (our parser found the exact GOP and VBT in the IGD volume, our drivers in the DXE volume). */
  readonly structural: string | null;
  /** The QEMU boot check. */
  readonly boot: string | null;
  /** The IGD assignment check (verify-igd), when it ran. */
  readonly igd: string | null;
}

/** One published version: the facts users search by (device ID, board) and its files. */
export interface MirrorVersion {
  readonly version: string;
  /** `artifacts/<name>/<version>/`. */
  readonly url: string;
  /** The GOP family or device generation, e.g. "Gen9 (Skylake to Comet Lake)". */
  readonly generation: string | null;
  /** PCI IDs of the iGPU (`8086:9b41`), empty when built without --device. */
  readonly device_ids: readonly string[];
  readonly platform: string | null;
  readonly gop_build: string | null;
  readonly vbt: {
    readonly signature: string | null;
    /** Where the VBT came from: a board, a vendor image, a file name. */
    readonly source: string | null;
    readonly sha256: string | null;
  };
  readonly edk2: { readonly version: string | null; readonly source_digest: string | null };
  readonly target: string | null;
  readonly machine: string | null;
  readonly secure_boot: boolean | null;
  /** When the firmware was built (ISO 8601). */
  readonly built_at: string | null;
  /** When the version directory was published (ISO 8601). */
  readonly published_at: string | null;
  readonly rom_mode: boolean;
  readonly verification: MirrorVerification;
  /** The key that signed the version directory's signature.json (keys/<fingerprint>.pub). */
  readonly signing_key_fingerprint: string;
  /** Every file of the directory, in name order. */
  readonly files: readonly MirrorFile[];
}

/** One artifact name: its newest version first. */
export interface MirrorArtifact {
  readonly name: string;
  /** The version `artifacts/<name>/latest.json` names. */
  readonly latest: string;
  readonly versions: readonly MirrorVersion[];
}

export interface MirrorKey {
  readonly fingerprint: string;
  /** `keys/<fingerprint>.pub`. */
  readonly url: string;
  readonly sha256: string;
  readonly size: number;
}

/** index.json, and the signed payload of index.signed.json. */
export interface MirrorIndex {
  readonly format: typeof INDEX_FORMAT;
  readonly format_version: typeof INDEX_FORMAT_VERSION;
  /** Increases with every index of this mirror; sync refuses one not newer than its own (rollback). */
  readonly serial: number;
  readonly generated_at: string;
  /** After this instant the index is refused (replay of an old, validly signed index). */
  readonly valid_until: string;
  /** The key that signs this index (keys/<fingerprint>.pub). */
  readonly key_fingerprint: string;
  readonly keys: readonly MirrorKey[];
  /** In name order. */
  readonly artifacts: readonly MirrorArtifact[];
}

/** index.signed.json: one object, so the index and its signature can never be out of step. */
export interface SignedMirrorIndex {
  readonly payload: MirrorIndex;
  readonly algorithm: 'ed25519';
  /** sha256 of the signing key's SubjectPublicKeyInfo DER (as `keys list`). */
  readonly key_fingerprint: string;
  /** base64 ed25519 signature over INDEX_SIGNATURE_CONTEXT + canonicalJson(payload). */
  readonly signature: string;
}

/** `artifacts/<name>/latest.json`. */
export interface LatestPointer {
  readonly name: string;
  readonly version: string;
  /** `<version>/` relative to the name directory. */
  readonly url: string;
}

/** Relative URL of a version directory. */
export function versionUrl(name: string, version: string): string {
  return `${MIRROR_LAYOUT.artifactsDir}/${name}/${version}/`;
}

export function byHashUrl(sha256: string): string {
  return `${MIRROR_LAYOUT.byHashDir}/${sha256}`;
}

export function keyUrl(fingerprint: string): string {
  return `${MIRROR_LAYOUT.keysDir}/${fingerprint}.pub`;
}
