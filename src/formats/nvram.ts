// Variable stores inside NVRAM volumes: identification only (no variable parsing).
//
// EDK2 VARIABLE_STORE_HEADER (MdeModulePkg/Include/Guid/VariableFormat.h):
//   { EFI_GUID Signature; UINT32 Size; UINT8 Format; UINT8 State; UINT16 Reserved; UINT32 Reserved1; }
// Signature gEfiAuthenticatedVariableGuid or gEfiVariableGuid ("VSS2" in UEFITool), or the
// older '$VSS' / Apple 'FSYS'-style 4-byte signatures ("VSS").
// EDK2 fault-tolerant-write working block (MdeModulePkg/Include/Guid/SystemNvDataGuid.h):
//   EFI_FAULT_TOLERANT_WORKING_BLOCK_HEADER { EFI_GUID Signature; UINT32 Crc; UINT8 WorkingBlockValid:1 ...; UINT64 WriteQueueSize; }
import { firstNotErased } from './erased.js';
import { readGuid } from '../core/guid.js';
import { u32 } from './le-bytes.js';

export const VSS2_AUTH_STORE_GUID = 'AAF32C78-947B-439A-A180-2E144EC37792';
export const VSS2_STORE_GUID = 'DDCF3616-3275-4164-98B6-FE85707FFE7D';
export const FTW_WORKING_BLOCK_GUID = '9E58292B-7C68-497D-A0CE-6500FD9F1B95';
/** AMI NVAR store file (an FFS raw file holding NVAR entries). */
export const AMI_NVAR_STORE_FILE_GUID = 'CEF5B9A3-476D-497F-9FDC-E98143E0422C';

export interface NvramStore {
  /** 'VSS2' | 'VSS' | 'FTW' as UEFIExtract names them. */
  readonly format: 'VSS2' | 'VSS' | 'FTW';
  /** Offset inside the scanned bytes. */
  readonly offset: number;
  readonly sizeInBytes: number;
  /** Variables found by their 0x55AA start marker (VSS/VSS2 only). */
  readonly variableCount: number | null;
}

/** Bounds the number of stores examined in one volume. */
export const MAXIMUM_NVRAM_STORES = 16;

function countVariables(bytes: Uint8Array, from: number, to: number, authenticated: boolean): number {
  // VARIABLE_HEADER / AUTHENTICATED_VARIABLE_HEADER: StartId 0x55AA, State, Reserved, Attributes,
  // [MonotonicCount, TimeStamp, PubKeyIndex,] NameSize, DataSize, VendorGuid; then name and data, 4-aligned.
  const headerSize = authenticated ? 60 : 32;
  const nameSizeAt = authenticated ? 36 : 8;
  let count = 0;
  let at = from;
  while (at + headerSize <= to && bytes[at] === 0xaa && bytes[at + 1] === 0x55) {
    const nameSize = u32(bytes, at + nameSizeAt);
    const dataSize = u32(bytes, at + nameSizeAt + 4);
    const next = at + headerSize + nameSize + dataSize;
    if (nameSize > to - at || dataSize > to - at || next > to) break;
    count++;
    at = (next + 3) & ~3;
  }
  return count;
}

/**
 * A VSS2 or '$VSS' store of `sizeInBytes` at `at`: the two are the same store (EDK2
 * VariableFormat.h) behind a 28-byte or an older 16-byte header, after which the variables start.
 */
function variableStore(
  bytes: Uint8Array,
  format: 'VSS2' | 'VSS',
  at: number,
  sizeInBytes: number,
  authenticated: boolean,
): NvramStore {
  const headerSize = format === 'VSS2' ? 28 : 16;
  return {
    format,
    offset: at,
    sizeInBytes,
    variableCount: countVariables(bytes, at + headerSize, at + sizeInBytes, authenticated),
  };
}

/**
 * Identifies the stores at the start of an NVRAM volume's data area and after each other.
 * Never throws: unknown data ends the list.
 */
export function identifyNvramStores(bytes: Uint8Array): NvramStore[] {
  const stores: NvramStore[] = [];
  let at = 0;
  while (stores.length < MAXIMUM_NVRAM_STORES && at + 28 <= bytes.length) {
    if (bytes[at] === 0xff) {
      // Erased gap between stores (OVMF aligns the FTW block to 4 KiB): skip to the next data.
      const next = firstNotErased(bytes, at, bytes.length, 0xff);
      at = Math.max(next & ~7, at + 1);
      if (at + 28 > bytes.length) break;
    }
    const guid = readGuid(bytes, at);
    const size = u32(bytes, at + 16);
    if (
      (guid === VSS2_AUTH_STORE_GUID || guid === VSS2_STORE_GUID) &&
      size >= 28 &&
      at + size <= bytes.length
    ) {
      // VARIABLE_STORE_HEADER (EDK2 VariableFormat.h): GUID, Size, Format, State, reserved = 28 bytes.
      stores.push(variableStore(bytes, 'VSS2', at, size, guid === VSS2_AUTH_STORE_GUID));
      at += size;
    } else if (guid === FTW_WORKING_BLOCK_GUID && at + 32 <= bytes.length) {
      // Header is 32 bytes; the write queue follows (WriteQueueSize, UINT64 at 24).
      const queue = Number(new DataView(bytes.buffer, bytes.byteOffset + at + 24, 8).getBigUint64(0, true));
      const sizeInBytes = Math.min(32 + queue, bytes.length - at);
      stores.push({ format: 'FTW', offset: at, sizeInBytes, variableCount: null });
      at += Math.max(sizeInBytes, 32);
    } else if (
      bytes[at] === 0x24 &&
      bytes[at + 1] === 0x56 &&
      bytes[at + 2] === 0x53 &&
      bytes[at + 3] === 0x53 // '$VSS'
    ) {
      const vssSize = u32(bytes, at + 4);
      if (vssSize < 16 || at + vssSize > bytes.length) break;
      stores.push(variableStore(bytes, 'VSS', at, vssSize, false));
      at += vssSize;
    } else {
      break;
    }
  }
  return stores;
}
