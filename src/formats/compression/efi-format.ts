// Constants of the EFI 1.1 / Tiano compressed format (UEFI spec 2.10 chapter 19; EDK2
// EfiCompress.c and BaseUefiDecompressLib), shared by the compressor and the decompressor
// so both sides agree on the alphabets and field widths by construction.

/** Header: UINT32 compressed size, UINT32 original size (little-endian). */
export const EFI_HEADER_SIZE = 8;
/** Shortest match worth a reference. */
export const THRESHOLD = 3;
/** Longest match. */
export const MAX_MATCH = 256;
/** Literals 0..255 and match lengths THRESHOLD..MAX_MATCH (the Char&Len set): 0xff + 256 + 2 - 3. */
export const NC = 0xff + MAX_MATCH + 2 - THRESHOLD;
/** Width of the C-table count field. */
export const CBIT = 9;
/** The extra set: code lengths 0..16 plus the three zero-run symbols. */
export const NT = 16 + 3;
/** Width of the T-table count field. */
export const TBIT = 5;
