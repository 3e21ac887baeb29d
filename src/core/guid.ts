import { FormatError } from './errors.js';
import { hex } from './hex.js';

/**
 * EFI_GUID (UEFI spec 2.10, appendix A): a 32-bit, two 16-bit little-endian
 * fields and 8 bytes. Rendered upper case as UEFITool does:
 * `1647B4F3-3E8A-4FDD-81C8-328ED647AB1A`.
 */
export function readGuid(bytes: Uint8Array, offset: number): string {
  if (offset < 0 || offset + 16 > bytes.length) {
    throw new FormatError('E_TRUNCATED', `GUID at ${hex(offset)} runs past the end (${hex(bytes.length)})`, {
      offset,
      length: bytes.length,
    });
  }
  const h = (i: number): string => (bytes[offset + i] as number).toString(16).padStart(2, '0');
  const d1 = h(3) + h(2) + h(1) + h(0);
  const d2 = h(5) + h(4);
  const d3 = h(7) + h(6);
  const d4 = h(8) + h(9);
  const d5 = h(10) + h(11) + h(12) + h(13) + h(14) + h(15);
  return `${d1}-${d2}-${d3}-${d4}-${d5}`.toUpperCase();
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuidString(text: string): boolean {
  return GUID_RE.test(text);
}

/** Inverse of readGuid: the 16 on-disk bytes of a GUID string. */
export function guidToBytes(guid: string): Uint8Array {
  if (!GUID_RE.test(guid)) {
    throw new TypeError(`Expected \`guid\` to be a GUID string, got \`${guid}\``);
  }
  const hexText = guid.replaceAll('-', '');
  const raw = Uint8Array.from({ length: 16 }, (_, i) => parseInt(hexText.slice(i * 2, i * 2 + 2), 16));
  const out = new Uint8Array(16);
  out.set([raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]] as number[], 0);
  out.set(raw.subarray(8), 8);
  return out;
}
