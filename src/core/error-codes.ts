/**
 * Every error code the tool can raise, in one table: which exit status it ends the CLI with,
 * which OvmfBuildError subclass carries it and what it means. `ErrorCode` is the table's keys,
 * so a mistyped or unregistered code fails `tsc` instead of silently exiting 1; the CLI's exit
 * mapping (src/cli/exit-codes.ts) and the README's exit table read this table, and a unit test
 * (src/cli/exit-codes.test.ts) checks it against every code the sources throw.
 */

/** The exit statuses a code can end the CLI with; src/cli/exit-codes.ts gives each its number. */
export type ExitKind =
  | 'failure'
  | 'usage'
  | 'notFirmware'
  | 'gopNotFound'
  | 'vbtNotFound'
  | 'invalidInput'
  | 'fetch'
  | 'engine'
  | 'build'
  | 'verification'
  | 'store'
  | 'bug'
  | 'interrupted';

/** The OvmfBuildError classes (by name) that carry codes. */
export type ErrorClassName =
  | 'OvmfBuildError'
  | 'UsageError'
  | 'FormatError'
  | 'NotFoundError'
  | 'AbortError'
  | 'InputError'
  | 'DownloadError'
  | 'Edk2Error'
  | 'BuildError'
  | 'CacheError'
  | 'PublishError'
  | 'VerificationError';

export interface ErrorCodeEntry {
  readonly exit: ExitKind;
  readonly class: ErrorClassName;
  readonly meaning: string;
}

/** One family of codes: the same exit status and class; each entry adds its meaning. */
function family<const E extends ExitKind, const C extends ErrorClassName>(exit: E, errorClass: C) {
  return (meaning: string) => ({ exit, class: errorClass, meaning });
}

const usage = family('usage', 'UsageError');
const output = family('usage', 'OvmfBuildError');
const format = family('invalidInput', 'FormatError');
const input = family('invalidInput', 'InputError');
const inputOther = family('invalidInput', 'OvmfBuildError');
const download = family('fetch', 'DownloadError');
const engine = family('engine', 'OvmfBuildError');
const edk2 = family('build', 'Edk2Error');
const build = family('build', 'BuildError');
const verification = family('verification', 'VerificationError');
const cacheArgument = family('usage', 'CacheError');
const cache = family('store', 'CacheError');
const cacheOther = family('store', 'OvmfBuildError');
const publish = family('store', 'PublishError');

export const ERROR_CODES = {
  // Command line and outputs.
  E_USAGE: usage('a bad option or argument'),
  E_OUTPUT_DIR_MISSING: output('--out names a file in a directory that does not exist'),
  E_OUTPUT_IS_DIRECTORY: output('--out names a directory where a file is expected'),
  E_OUTPUT_NOT_DIRECTORY: output(
    '--out names a file, or a path through a file, where a directory is expected',
  ),
  E_OUTPUT_NOT_WRITABLE: output('--out names a directory (or a path under one) that this user cannot write'),
  E_OUTPUT_WRITE_FAILED: family('failure', 'OvmfBuildError')('stdout or an output file could not be written'),
  E_ABORTED: family('interrupted', 'AbortError')('the operation was aborted (signal, SIGINT, SIGTERM)'),
  E_INTERNAL: family(
    'bug',
    'OvmfBuildError',
  )('an internal invariant broke: a bug; also the JSON code of a foreign error'),

  // What the user's firmware image holds.
  E_NOT_FIRMWARE: family('notFirmware', 'FormatError')('the input is not a firmware image'),
  E_GOP_NOT_FOUND: family('gopNotFound', 'NotFoundError')('the image holds no Intel GOP driver'),
  E_VBT_NOT_FOUND: family('vbtNotFound', 'NotFoundError')('the image holds no VBT'),
  E_GOP_CORRUPT: format('a section named as the Intel GOP is not a valid driver'),
  E_TRUNCATED: format('a GUID runs past the end of the input'),

  // Input files and what they must be.
  E_INPUT_NOT_FOUND: input('an input file does not exist or cannot be read'),
  E_INPUT_UNREADABLE: input('an input file exists but reading it failed'),
  E_INPUT_NOT_A_FILE: input('an input path is a directory, FIFO, device or socket'),
  E_INPUT_TOO_LARGE: input('an input file is larger than its limit'),
  E_INPUT_NOT_GOP: format('the --gop file is not an Intel GOP driver'),
  E_INPUT_NOT_VBT: format('the --vbt file is not a valid VBT'),
  E_INPUT_NOT_PE: format('an option ROM image is not a PE/COFF driver'),
  E_INPUT_IS_GOP: format('extract was given a GOP driver, not a firmware image'),
  E_INPUT_IS_VBT: format('extract was given a VBT, not a firmware image'),
  E_INPUT_CORRUPT: format('an option ROM is too damaged to say whether it holds a GOP'),
  E_INPUT_BAD_ROM: format('a vBIOS ROM is not usable for IGD passthrough'),
  E_INPUT_BAD_COMPRESSED_PE: format('a pre-compressed option ROM image has a bad header'),
  E_INPUT_DEVICE_TABLE_INVALID: format('the IGD device table (containers/igd-devices.json) is malformed'),
  E_INPUT_UNKNOWN_DEVICE: format('a --device id is not an Intel iGPU of the device table'),
  E_INPUT_BAD_HELPER: inputOther('a helper-driver source does not hold exactly one driver of its role'),
  E_INPUT_COMPRESSION_GREW: inputOther('EFI compression made an option ROM driver larger'),
  E_INPUT_ROM_TOO_LARGE: inputOther('the inputs make an option ROM larger than 16 MiB'),
  E_INPUT_IGD_VOLUME_FULL: inputOther('the GOP driver and VBT do not fit the IGD volume of the flash size'),
  E_INPUT_DIGEST_MISMATCH: inputOther('a local input does not have the sha256 its spec names'),
  E_INPUT_NOT_A_DIRECTORY: inputOther('an input tree for a container is not a directory'),
  E_INPUT_UNSAFE_ENTRY: inputOther('an input tree holds a symlink out of itself'),
  E_INPUT_CHANGED: inputOther('an input file changed size while being packed'),

  // Firmware volumes, files and sections (PI spec vol. 3).
  E_FV_TRUNCATED: format('a firmware volume header runs past the end'),
  E_FV_BAD_SIGNATURE: format('a firmware volume has no _FVH signature'),
  E_FV_BAD_HEADER: format('a firmware volume header length is out of range'),
  E_FV_BAD_LENGTH: format('a firmware volume claims more bytes than remain'),
  E_FV_BAD_BLOCK_MAP: format('a firmware volume block map has no terminator'),
  E_FV_BAD_EXT_HEADER: format('a firmware volume extended header is out of range'),
  E_FV_BAD_CHECKSUM: format('damage: a firmware volume header checksum does not sum to 0'),
  E_FFS_TRUNCATED: format('an FFS file header runs past the end of its volume'),
  E_FFS_BAD_SIZE: format('an FFS file claims more bytes than remain'),
  E_FFS_BAD_HEADER_CHECKSUM: format('damage: an FFS file header checksum does not match'),
  E_FFS_BAD_DATA_CHECKSUM: format('damage: an FFS file data checksum does not match'),
  E_FFS_NO_VOLUME: format('damage: a volume image file holds no firmware volume'),
  E_SECTION_TRUNCATED: format('a section header runs past the end of its file'),
  E_SECTION_BAD_SIZE: format('a section claims more bytes than remain'),
  E_SECTION_BAD_DATA_OFFSET: format('a GUID-defined section has a DataOffset out of range'),
  E_SECTION_BAD_COMPRESSION: format('a compression section has an unknown compression type'),
  E_SECTION_NO_VOLUME: format('a volume image section holds no firmware volume'),
  E_SECTION_BAD_CRC32: format('damage: a CRC32 section does not match its data'),
  E_SECTION_UNDECODABLE: format('damage: a GUID-defined section needs a decoder this tool lacks'),
  E_FW_TOO_DEEP: format('the image nests deeper than maximumNestingDepth'),
  E_FW_TOO_MANY_NODES: format('the image has more nodes than maximumNodes'),
  E_FW_TOO_MANY_VOLUMES: format('an area holds more volumes than maximumVolumesPerArea'),
  E_FW_TOO_MANY_FILES: format('a volume holds more files than maximumFilesPerVolume'),
  E_FW_TOO_MANY_SECTIONS: format('a file holds more sections than maximumSectionsPerFile'),
  E_FW_DECOMPRESSED_TOO_LARGE: format('decompressed sections add up to more than the image limit'),
  E_DECOMPRESS_CORRUPT: format('a compressed stream is corrupt'),
  E_DECOMPRESS_TOO_LARGE: format('a compressed stream declares more output than its limit'),
  E_DECOMPRESS_UNSUPPORTED: format('a compressed stream uses a variant EDK2 never writes'),

  // Vendor update packages around the firmware (src/vendor): zip, 7z, SFX .exe, cabinets.
  E_PACKAGE_CORRUPT: format('a vendor package (zip, 7z, cab) is truncated or damaged'),
  E_PACKAGE_UNSAFE_ENTRY: format(
    'a package entry escapes its directory, is absolute, a symlink or a special file',
  ),
  E_PACKAGE_ENCRYPTED: format('a package entry is encrypted (password-protected)'),
  E_PACKAGE_TOO_LARGE: format('a package entry, or all of a package, unpacks to more than its limit'),
  E_PACKAGE_TOO_MANY_ENTRIES: format('a package layer holds more entries than its limit'),
  E_PACKAGE_TOO_DEEP: format('packages nest inside packages deeper than the limit'),
  E_PACKAGE_RATIO: format('a package layer expands more than the ratio limit (an archive bomb)'),
  E_PACKAGE_TOOL_FAILED: family(
    'failure',
    'OvmfBuildError',
  )('the unpacking tool (7z) is missing, failed or timed out'),
  E_PACKAGE_NO_GOP: family(
    'gopNotFound',
    'NotFoundError',
  )('a vendor package holds no Intel GOP driver (the chain says where it looked)'),

  // Containers around the firmware: capsules, flash descriptor, IFWI.
  E_CAPSULE_TRUNCATED: format('a capsule header runs past the end'),
  E_CAPSULE_BAD_GUID: format('no known capsule GUID at offset 0'),
  E_CAPSULE_BAD_SIZE: format('a capsule header claims sizes the file does not have'),
  E_CAPSULE_BAD_FMP: format('an FMP capsule claims more items than allowed'),
  E_PFS_NOT_FOUND: format('no Dell PFS volume or PFS zlib section in the file'),
  E_PFS_TRUNCATED: format('a Dell PFS section, volume or entry claims more bytes than remain'),
  E_PFS_BAD_STRUCTURE: format('damage: a Dell PFS tag, footer or header version is wrong'),
  E_PFS_BAD_CHECKSUM: format('damage: a Dell PFS footer CRC-32 does not match its entries'),
  E_PFS_TOO_DEEP: format('Dell PFS volumes nest deeper than maxDepth'),
  E_PFS_TOO_MANY_ENTRIES: format('a Dell PFS volume holds more entries than maxEntries'),
  E_PFS_TOO_LARGE: format('Dell PFS zlib sections inflate to more than maxInflatedBytes'),
  E_PFS_INFLATE: format('damage: a Dell PFS zlib stream does not inflate'),
  E_DESCRIPTOR_BAD_SIGNATURE: format('no Intel flash descriptor signature'),
  E_DESCRIPTOR_BAD_FLMAP: format('the flash descriptor map points outside the descriptor'),
  E_DESCRIPTOR_BAD_REGIONS: format('the flash descriptor region table has no descriptor region'),
  E_BPDT_BAD_SIGNATURE: format('no BPDT signature where IFWI puts one'),
  E_BPDT_BAD_COUNT: format('a BPDT claims more entries than allowed or fit'),
  E_BPDT_BAD_ENTRY: format('a BPDT entry points past the end'),

  // PE/COFF and TE images (PE Format; EDK2 BasePeCoffLib).
  E_PE_TRUNCATED: format('a PE/COFF structure runs past the end'),
  E_PE_BAD_DOS_SIGNATURE: format('no MZ or VZ signature at 0'),
  E_PE_BAD_LFANEW: format('e_lfanew puts the PE header out of the image'),
  E_PE_BAD_SIGNATURE: format('no PE\\0\\0 signature at e_lfanew'),
  E_PE_BAD_OPTIONAL_MAGIC: format('the optional header magic is neither PE32 nor PE32+'),
  E_PE_BAD_OPTIONAL_SIZE: format('SizeOfOptionalHeader is too small for its format'),
  E_PE_BAD_TE_STRIPPED_SIZE: format('a TE StrippedSize is smaller than the TE header'),
  E_PE_TOO_MANY_SECTIONS: format('more sections than allowed'),
  E_PE_SECTION_OUT_OF_BOUNDS: format('a section raw data range runs past the end'),
  E_PE_UNSUPPORTED_FORMAT: format('a TE image where a loadable PE driver is needed'),
  E_PE_BAD_DATA_DIRECTORIES: format('NumberOfRvaAndSizes is out of range'),
  E_PE_NOT_EXECUTABLE: format('IMAGE_FILE_EXECUTABLE_IMAGE is not set'),
  E_PE_BAD_ALIGNMENT: format('FileAlignment or SectionAlignment is not a valid power of 2'),
  E_PE_NO_SECTIONS: format('the image declares no sections'),
  E_PE_BAD_SIZE_OF_HEADERS: format('SizeOfHeaders does not hold the section table'),
  E_PE_BAD_SECTION: format('a section overlaps, is out of order or out of SizeOfImage'),
  E_PE_BAD_SIZE_OF_IMAGE: format('SizeOfImage does not match the end of the last section'),
  E_PE_BAD_ENTRY_POINT: format('the entry point is not inside an executable section'),

  // PCI option ROMs (PCI Firmware spec 3.x; UEFI spec 2.10 section 14.4.2).
  E_ROM_TRUNCATED: format('an option ROM structure runs past the end'),
  E_ROM_BAD_SIGNATURE: format('an option ROM image has no 0x55AA signature'),
  E_ROM_BAD_PCIR_OFFSET: format('the PCI data structure offset is out of the image'),
  E_ROM_BAD_PCIR_SIGNATURE: format('no PCIR signature at the PCI data structure'),
  E_ROM_BAD_PCIR_LENGTH: format('the PCI data structure length is wrong'),
  E_ROM_BAD_IMAGE_LENGTH: format('an option ROM image length is 0 or past the end'),
  E_ROM_BAD_DEVICE_LIST: format('the PCIR device list is out of the image or unterminated'),
  E_ROM_BAD_EFI_SIGNATURE: format('an EFI option ROM image has no EFI signature 0x0EF1'),
  E_ROM_BAD_INIT_SIZE: format('an EFI option ROM InitializationSize is out of range'),
  E_ROM_BAD_EFI_IMAGE_OFFSET: format('an EFI option ROM image offset is out of range'),
  E_ROM_BAD_COMPRESSION_TYPE: format('an EFI option ROM compression type is neither 0 nor 1'),
  E_ROM_NOT_EFI: format('an option ROM image is not an EFI image'),
  E_ROM_CHAIN_UNTERMINATED: format('no image of the chain has the last-image indicator'),
  E_ROM_TOO_MANY_IMAGES: format('an option ROM chain has more images than allowed'),

  // Intel VBT and IGD OpRegion (i915 intel_bios.c, intel_opregion.c).
  E_VBT_TRUNCATED: format('the input is shorter than a VBT header'),
  E_VBT_BAD_SIGNATURE: format('no $VBT signature at 0'),
  E_VBT_BAD_BDB_OFFSET: format('bdb_offset puts the BDB header past vbt_size'),
  E_VBT_BDB_OVERFLOW: format('bdb_size runs past vbt_size'),
  E_OPREGION_TRUNCATED: format('the input is shorter than an OpRegion'),
  E_OPREGION_TOO_LARGE: format('the input is larger than any OpRegion'),
  E_OPREGION_BAD_SIGNATURE: format('no OpRegion signature at 0'),
  E_OPREGION_NO_VBT: format('the OpRegion holds no valid VBT'),
  E_OPREGION_BAD_VBT: format('the VBT for a new OpRegion is not valid'),
  E_OPREGION_VBT_TOO_LARGE: format('the VBT does not fit the OpRegion'),

  // Downloads.
  E_FETCH_HTTP_STATUS: download('the server answered with an HTTP error status'),
  E_FETCH_NETWORK: download('the connection failed'),
  E_FETCH_TIMEOUT: download('the download took longer than its timeout'),
  E_FETCH_OFFLINE: family(
    'fetch',
    'OvmfBuildError',
  )('an input must be downloaded but --no-network was given'),
  E_DOWNLOAD_TRUNCATED: download('the download ended before its announced length'),
  E_DOWNLOAD_TOO_LARGE: download('the download is larger than its limit'),
  E_DOWNLOAD_DIGEST_MISMATCH: download('the download does not have the expected sha256'),

  // The container engine, its images and containers; tar archives are the containers' outputs.
  E_ENGINE_NOT_FOUND: engine('no container engine answered'),
  E_ENGINE_PERMISSION_DENIED: engine('the engine socket refused this user'),
  E_ENGINE_TOO_OLD: engine('the engine speaks too old a Docker API'),
  E_ENGINE_REQUEST_FAILED: engine('an engine request failed'),
  E_ENGINE_SERVICE_FAILED: engine('the private podman system service did not start or stopped'),
  E_IMAGE_NOT_FOUND: engine('an image is not in the engine'),
  E_IMAGE_PULL_FAILED: engine('pulling an image failed'),
  E_IMAGE_BUILD_FAILED: engine('building the builder image failed'),
  E_IMAGE_IMPORT_FAILED: engine('importing a debootstrapped base image failed'),
  E_IMAGE_BASE_UNAVAILABLE: engine('no apt source to debootstrap a base image from'),
  E_IMAGE_RECIPE_MISSING: engine('the image build context has no Containerfile'),
  E_IMAGE_REMOVE_FAILED: engine('removing an image failed'),
  E_CONTAINER_ROOT_REFUSED: engine('a container would run as root without allowRoot'),
  E_CONTAINER_CREATE_FAILED: engine('creating a container failed'),
  E_CONTAINER_INPUT_FAILED: engine('putting the inputs into a container failed'),
  E_CONTAINER_START_FAILED: engine('starting a container failed'),
  E_CONTAINER_OUTPUT_FAILED: engine('fetching an output from a container failed'),
  E_CONTAINER_OUTPUT_MISSING: engine('an expected output does not exist in the container'),
  E_CONTAINER_OUTPUT_DUPLICATE: engine('an output entry appears in two outputs'),
  E_CONTAINER_COMMIT_FAILED: engine('committing a container as an image failed'),
  E_ARCHIVE_UNSAFE_ENTRY: engine('an output archive holds a link, special file, escaping or duplicate name'),
  E_ARCHIVE_TOO_LARGE: engine('an output archive has more entries or bytes than allowed'),

  // The EDK2 source and build.
  E_EDK2_SOURCE_UNAVAILABLE: edk2('the EDK2 source package cannot be found or fetched'),
  E_EDK2_SOURCE_DIGEST_MISMATCH: edk2('the EDK2 source package does not have its indexed sha256'),
  E_EDK2_SOURCE_UNPACK_FAILED: edk2('unpacking the EDK2 source failed'),
  E_EDK2_GIT_FAILED: edk2('a git command on the EDK2 repository failed'),
  E_EDK2_GIT_REF_NOT_FOUND: edk2('the EDK2 repository has no such branch or tag'),
  E_EDK2_NOT_A_SOURCE_TREE: edk2('a directory given as EDK2 source is not an EDK2 tree'),
  E_EDK2_OVERLAY_INVALID: edk2('an overlay directory is not usable'),
  E_EDK2_PATCH_FAILED: edk2('patching the OVMF platform files failed'),
  E_BUILD_FAILED: build('the EDK2 build exited with an error'),
  E_BUILD_OUTPUT_INVALID: build('the build produced a missing or unusable output'),

  // Verification of a built firmware.
  E_VERIFY_NOT_OVMF: verification('the OVMF code image does not parse as UEFI firmware'),
  E_VERIFY_GOP_MISSING: verification(
    'the GOP driver is not in the IGD volume (or, in older images, the DXE volume)',
  ),
  E_VERIFY_GOP_MISMATCH: verification('the GOP driver in the firmware is not the one given'),
  E_VERIFY_GOP_NOT_DRIVER: verification('the GOP file has a type the DXE dispatcher never loads'),
  E_VERIFY_VBT_MISSING: verification(
    'the VBT file is not in the IGD volume (or, in older images, the DXE volume)',
  ),
  E_VERIFY_VBT_MISMATCH: verification('the VBT in the firmware is not the one given'),
  E_VERIFY_DUPLICATE_FILE: verification('a driver or VBT file appears twice in its volume'),
  E_VERIFY_POLICY_MISSING: verification('the GOP policy driver is not in the firmware'),
  E_VERIFY_POLICY_INVALID: verification('the GOP policy driver is not a valid driver'),
  E_VERIFY_IGD_MISSING: verification('the IGD assignment driver is not in the firmware'),
  E_VERIFY_IGD_INVALID: verification('the IGD assignment driver is not a valid driver'),
  E_VERIFY_HELPER_MISMATCH: verification('a helper driver differs from the one built'),
  E_VERIFY_ROM_MISMATCH: verification('a built option ROM image does not parse back to its driver'),
  E_VERIFY_IGD_CHECK_FAILED: verification('the IGD assignment check in QEMU failed'),
  E_VERIFY_IGD_TIMEOUT: verification('the IGD check did not reach the boot manager in time'),
  E_VERIFY_IGD_KVM_FAILED: verification('KVM failed during the IGD check'),
  E_VERIFY_IGD_QEMU_FAILED: verification('QEMU could not run for the IGD check'),
  E_VERIFY_IGD_QMP_FAILED: verification('the QMP conversation with QEMU failed'),
  E_BOOT_CHECK_FAILED: verification('the boot in QEMU did not load the drivers it must'),
  E_BOOT_TIMEOUT: verification('the firmware did not reach BDS in time'),
  E_BOOT_ASSERT: verification('the firmware stopped at an assertion before BDS'),
  E_BOOT_NO_DEBUG_OUTPUT: verification('the firmware wrote nothing to the debug port (a RELEASE build)'),
  E_BOOT_LOG_TOO_LARGE: verification('the debug log grew past its limit before BDS'),
  E_BOOT_KVM_FAILED: verification('KVM failed during the boot check with --accel kvm'),
  E_BOOT_KVM_UNAVAILABLE: verification('--accel kvm, but KVM cannot be used'),
  E_BOOT_QEMU_MISSING: verification('the QEMU binary does not exist'),
  E_BOOT_QEMU_FAILED: verification('QEMU could not start or exited early'),

  // The cache: a `cache why` key argument is a command-line mistake, everything else a store failure.
  E_CACHE_BAD_KEY: cacheArgument('a key argument is not 4 to 64 hex digits'),
  E_CACHE_KEY_NOT_FOUND: cacheArgument('no cache entry or request has a key with this prefix'),
  E_CACHE_KEY_AMBIGUOUS: cacheArgument('a key prefix matches several entries'),
  E_CACHE_WRITE_FAILED: cache('a cache entry could not be written'),
  E_CACHE_ENTRY_INCOMPLETE: cacheOther('a cache entry lacks a firmware or ROM file'),
  E_CACHE_KEY_STALE: cacheOther('the build used another environment than its cache key names'),
  E_CACHE_KEY_UNSTABLE: cacheOther('the build environment kept changing while computing the key'),
  E_CACHE_LOCK_FAILED: cacheOther('a lock file could not be created'),
  E_CACHE_LOCK_TIMEOUT: cacheOther('gave up waiting for a lock'),

  // The BullMQ queue of the nightly scale-out (src/queue).
  E_QUEUE_UNREACHABLE: family('failure', 'OvmfBuildError')('no Redis answered at the --queue URL'),
  E_QUEUE_JOB_FAILED: family(
    'failure',
    'OvmfBuildError',
  )('a queued job failed without an error code of ours (stalled too often, removed)'),

  // Publishing, artifact directories and signatures.
  E_PUBLISH_FAILED: publish('an artifact version could not be published'),
  E_ARTIFACT_WRITE_FAILED: family('store', 'OvmfBuildError')('extracted files could not be written'),
  E_ARTIFACT_DIR_NOT_FOUND: publish('the artifact directory does not exist'),
  E_ARTIFACT_NOT_A_VERSION_DIR: publish('the directory is an artifact store, not one version'),
  E_ARTIFACT_UNSAFE_ENTRY: publish('an artifact directory holds a link or special file'),
  E_ARTIFACT_SUMS_INVALID: publish('SHA256SUMS is malformed'),
  E_ARTIFACT_MANIFEST_INVALID: publish('the manifest is malformed or not listed'),
  E_ARTIFACT_FILE_MISSING: publish('a file the artifact lists is missing'),
  E_ARTIFACT_DIGEST_MISMATCH: publish('a file does not have its recorded sha256'),
  E_SIGNATURE_MISSING: publish('the artifact has no signature file'),
  E_SIGNATURE_INVALID: publish('the signature is malformed or does not verify'),
  E_SIGNATURE_UNTRUSTED: publish('the artifact is signed by a key the user does not trust'),
  E_SIGNATURE_KEY: publish('the signing key file is not a usable private key'),
  E_SIGNATURE_KEY_UNAVAILABLE: publish('the config directory cannot hold the signing key'),
  E_SIGNATURE_KEY_INVALID: publish('a key to trust is not an ed25519 public key'),
  E_SIGNATURE_KEY_STORE: publish('the trusted-keys directory cannot be read or written'),
  E_SIGNATURE_KEY_NOT_FOUND: publish('no trusted key has this fingerprint'),

  // The mirror tree's signed index (src/mirror): mirror index, mirror sync, pull.
  E_MIRROR_INDEX_INVALID: publish('index.signed.json is malformed or breaks the index schema'),
  E_MIRROR_INDEX_SIGNATURE: publish('the signature of index.signed.json does not verify'),
  E_MIRROR_INDEX_UNTRUSTED: publish('the index is signed by another key than the trusted one'),
  E_MIRROR_INDEX_EXPIRED: publish('the index is past its valid_until (a replayed old index)'),
  E_MIRROR_INDEX_ROLLBACK: publish('the index serial is not newer than the one the mirror holds'),
  E_MIRROR_ARTIFACT_NOT_FOUND: publish('the index has no artifact or version of this name'),
  E_MIRROR_WRITE_FAILED: publish('the mirror tree or a pulled file could not be written'),
  E_MIRROR_PULL_STATE: publish("pull's record of the index serials it accepted cannot be read or written"),

  // Serving the mirror tree (src/serve) and pushing it to S3 (src/mirror/s3*).
  E_SERVE_ROOT_NOT_A_DIRECTORY: input('the tree given to serve is not a directory'),
  E_SERVE_LISTEN_FAILED: family('failure', 'OvmfBuildError')('serve cannot listen on its host and port'),
  E_S3_PUT_FAILED: publish('an S3 PUT or HEAD of mirror push failed'),
  E_S3_VERIFY_FAILED: publish('a pushed object reads back with another size or x-amz-meta-sha256'),
} as const satisfies Record<string, ErrorCodeEntry>;

/** A registered error code: the compiler refuses any other string. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether a string from outside the type system (JSON, a child's output) is a registered code. */
export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}
