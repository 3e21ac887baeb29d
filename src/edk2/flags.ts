/** Build switches the tool exposes; each maps to `-D` defines of OvmfPkgX64.dsc. */
export interface BuildFlags {
  /**
   * Flash size of the OVMF image: 4MB gives OVMF_CODE.fd 0x37C000 + OVMF_VARS.fd 0x84000 bytes,
   * 2MB gives 0x1E0000 + 0x20000.
   * @default '4MB'
   */
  readonly fdSize: '2MB' | '4MB';
  /**
   * EDK2 build target. DEBUG writes to the debug console (port 0x402), which boot verification reads.
   * @default 'DEBUG'
   */
  readonly target: 'DEBUG' | 'RELEASE';
  /**
   * The network stack (NETWORK_ENABLE: SNP, IPv4/IPv6, PXE, iSCSI).
   * @default true
   */
  readonly network: boolean;
  /**
   * Secure boot with SMM (SECURE_BOOT_ENABLE and SMM_REQUIRE). Needs `-machine q35,smm=on` and a
   * secure pflash in QEMU.
   * @default false
   */
  readonly secureBoot: boolean;
}

export const DEFAULT_BUILD_FLAGS: BuildFlags = Object.freeze({
  fdSize: '4MB',
  target: 'DEBUG',
  network: true,
  secureBoot: false,
});

const FD_SIZES: readonly string[] = ['2MB', '4MB'];
const TARGETS: readonly string[] = ['DEBUG', 'RELEASE'];
const KNOWN_KEYS: readonly string[] = ['fdSize', 'target', 'network', 'secureBoot'];

function describe(value: unknown): string {
  if (typeof value === 'string') return `\`${JSON.stringify(value)}\` (string)`;
  if (value === null) return '`null`';
  return `\`${String(value)}\` (${typeof value})`;
}

/** Fills defaults and validates; a bad value throws TypeError "Expected `x` to be ..., got ...". */
export function resolveBuildFlags(input: Partial<BuildFlags> = {}): BuildFlags {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`Expected \`flags\` to be an object, got ${describe(input)}`);
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.includes(key)) {
      throw new TypeError(`Expected \`flags\` to have only ${KNOWN_KEYS.join(', ')}, got \`${key}\``);
    }
  }
  const flags: BuildFlags = { ...DEFAULT_BUILD_FLAGS, ...stripUndefined(input) };
  if (!FD_SIZES.includes(flags.fdSize)) {
    throw new TypeError(`Expected \`fdSize\` to be '2MB' or '4MB', got ${describe(flags.fdSize)}`);
  }
  if (!TARGETS.includes(flags.target)) {
    throw new TypeError(`Expected \`target\` to be 'DEBUG' or 'RELEASE', got ${describe(flags.target)}`);
  }
  if (typeof flags.network !== 'boolean') {
    throw new TypeError(`Expected \`network\` to be a boolean, got ${describe(flags.network)}`);
  }
  if (typeof flags.secureBoot !== 'boolean') {
    throw new TypeError(`Expected \`secureBoot\` to be a boolean, got ${describe(flags.secureBoot)}`);
  }
  return Object.freeze({
    fdSize: flags.fdSize,
    target: flags.target,
    network: flags.network,
    secureBoot: flags.secureBoot,
  });
}

function stripUndefined(input: Partial<BuildFlags>): Partial<BuildFlags> {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
}

/**
 * The `-D` arguments of `build` for these flags. Every define is passed explicitly (also the
 * defaults) so the command line alone says what was built. Names from OvmfPkgX64.dsc [Defines]
 * and NetworkPkg/NetworkDefines.dsc.inc.
 */
export function buildDefines(flags: BuildFlags): string[] {
  const bool = (value: boolean): string => (value ? 'TRUE' : 'FALSE');
  return [
    '-D',
    flags.fdSize === '2MB' ? 'FD_SIZE_2MB' : 'FD_SIZE_4MB',
    '-D',
    `NETWORK_ENABLE=${bool(flags.network)}`,
    '-D',
    `SECURE_BOOT_ENABLE=${bool(flags.secureBoot)}`,
    '-D',
    `SMM_REQUIRE=${bool(flags.secureBoot)}`,
  ];
}

/** Sizes EDK2 gives the split images (OvmfPkgDefines.fdf.inc), used to check the outputs. */
export function expectedImageSizes(flags: BuildFlags): {
  readonly codeSizeInBytes: number;
  readonly varsSizeInBytes: number;
  readonly combinedSizeInBytes: number;
} {
  return flags.fdSize === '4MB'
    ? { codeSizeInBytes: 0x37_c000, varsSizeInBytes: 0x8_4000, combinedSizeInBytes: 0x40_0000 }
    : { codeSizeInBytes: 0x1e_0000, varsSizeInBytes: 0x2_0000, combinedSizeInBytes: 0x20_0000 };
}

/** A stable short text of the flags, part of cache and warm-workspace keys. */
export function flagsKey(flags: BuildFlags): string {
  return `fd=${flags.fdSize},target=${flags.target},network=${String(flags.network)},secureBoot=${String(flags.secureBoot)}`;
}
