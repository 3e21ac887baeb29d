// What an unpacker of a vendor update package is (a zip, a 7z or self-extracting .exe, an LVFS
// cabinet, a Dell PFS, an Insyde or AMI package, a capsule) and the bounds every layer obeys.
// The registry (registry.ts) lists them; the outside-in loop (unpack-package.ts) runs them.
// Pure parsers (src/formats) satisfy this interface without any I/O: `unpack` may be sync.

/** One thing an unpacker found inside a package: a file of an archive, a PFS section, ... */
export interface PackageChild {
  /** The name the package gives it (archive path, section name), shown in the chain. */
  readonly name: string;
  readonly bytes: Uint8Array;
  /**
   * The layer's name in the chain when it is more precise than the unpacker's (a capsule layer
   * says "unknown capsule GUID <guid>"); the unpacker's `name` otherwise.
   */
  readonly format?: string;
}

/** Bounds on everything one package unpacks to, across all of its layers. */
export interface PackageLimits {
  /** Most bytes all layers may unpack to, together. */
  readonly maxTotalBytes: number;
  /** Most bytes one child may have. */
  readonly maxEntryBytes: number;
  /** Most children one layer (one archive) may have. */
  readonly maxEntries: number;
  /** Most pieces all layers may yield together (many tiny nested archives cost time, not bytes). */
  readonly maxPieces: number;
  /** Most layers of packages inside packages (the input is depth 0). */
  readonly maxDepth: number;
  /**
   * Most a layer may expand: its children's bytes over its own, checked once the children
   * exceed `ratioFloorBytes` (firmware full of 0xFF compresses well; small files may too).
   */
  readonly maxRatio: number;
  readonly ratioFloorBytes: number;
  /** Most milliseconds a child process (7z) may run. */
  readonly timeoutMs: number;
}

export const DEFAULT_PACKAGE_LIMITS: PackageLimits = {
  maxTotalBytes: 512 * 1024 * 1024,
  maxEntryBytes: 128 * 1024 * 1024,
  maxEntries: 4096,
  maxPieces: 65536,
  maxDepth: 8,
  maxRatio: 200,
  ratioFloorBytes: 16 * 1024 * 1024,
  timeoutMs: 60_000,
};

/** What an unpacker gets besides the bytes. */
export interface UnpackContext {
  readonly limits: PackageLimits;
  /** Bytes every layer has unpacked so far (count yours against limits.maxTotalBytes). */
  readonly unpackedBytes: number;
  /** Chain label of the input, for messages ("zip > firmware.cab"). */
  readonly where: string;
  readonly signal?: AbortSignal | undefined;
}

export interface Unpacker {
  /** Short name shown in the chain, e.g. "zip", "7z", "cab", "Dell PFS", "AMI capsule". */
  readonly name: string;
  /**
   * How sure it is that `bytes` is its format: 0 = not it; 1 = a signature at offset 0 that
   * nothing else has (taken before the bytes are tried as a UEFI image); anything between
   * (e.g. 0.5 for an archive appended to a PE) is tried only when the bytes are not a UEFI
   * image (src/formats/detect.ts) or are a PE. Never throws; cheap (looks at a few bytes).
   */
  detect(bytes: Uint8Array): number;
  /**
   * The children, in package order. Throws a coded OvmfBuildError (E_PACKAGE_*, or the
   * parser's own E_* code) on damage or on a bound crossed; never writes outside a temp dir
   * it removes before returning.
   */
  unpack(bytes: Uint8Array, context: UnpackContext): PackageChild[] | Promise<PackageChild[]>;
}
