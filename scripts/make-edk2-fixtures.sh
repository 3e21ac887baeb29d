#!/usr/bin/env bash
# Builds EDK2's BaseTools C tools from an EDK2 source tree (in a scratch copy; the source
# tree is never modified) and makes small, deterministic fixtures with them: compressed
# bodies, sections, FFS files, firmware volumes, capsules and option ROMs. Every fixture
# is recorded in <out-dir>/index.json with the exact command, input and output sha256.
#
# usage: scripts/make-edk2-fixtures.sh <edk2-source-dir> [out-dir]   (default test/fixtures/edk2)
# needs: make, gcc, python3.
# env: EDK2_BASETOOLS=<dir> reuses a BaseTools copy already built by this script (its
#      Source/C/bin and Source/Python are used) instead of building one;
#      KEEP_WORK=1 keeps the scratch directory for inspection.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || $1 == -h || $1 == --help ]]; then
  echo "usage: $0 <edk2-source-dir> [out-dir]" >&2
  exit 2
fi
edk2=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$repo/test/fixtures/edk2}
helpers=$repo/scripts/edk2-fixtures
for tool in make gcc python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
[[ -d $edk2/BaseTools/Source/C ]] || { echo "error: $edk2 has no BaseTools/Source/C" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/edk2-fixtures.XXXXXX")
if [[ ${KEEP_WORK:-0} == 1 ]]; then
  trap 'echo "scratch directory kept: $work" >&2' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi

# --- BaseTools -------------------------------------------------------------------------
if [[ -n ${EDK2_BASETOOLS:-} ]]; then
  cp -a "$EDK2_BASETOOLS" "$work/BaseTools"
else
  echo "building BaseTools C tools in $work" >&2
  cp -a "$edk2/BaseTools" "$work/BaseTools"
  brotli_dir=$work/BaseTools/Source/C/BrotliCompress/brotli
  if [[ ! -e $brotli_dir/c/enc/encode.c ]]; then
    # Release tarballs (Debian's among them) ship the brotli git submodule only once, under
    # MdeModulePkg; BrotliCompress needs the same sources.
    rm -rf "$brotli_dir"
    cp -a "$edk2/MdeModulePkg/Library/BrotliCustomDecompressLib/brotli" "$brotli_dir"
  fi
  jobs=$(nproc 2>/dev/null || echo 2)
  make -s -C "$work/BaseTools/Source/C" -j"$jobs" >"$work/basetools-build.log" 2>&1 ||
    { tail -n 40 "$work/basetools-build.log" >&2; exit 1; }
  # Some trees (this one among them) leave BrotliCompress out of the default application list.
  if [[ ! -x $work/BaseTools/Source/C/bin/BrotliCompress ]]; then
    make -s -C "$work/BaseTools/Source/C/BrotliCompress" -j"$jobs" >>"$work/basetools-build.log" 2>&1 ||
      { tail -n 40 "$work/basetools-build.log" >&2; exit 1; }
  fi
fi
export PATH="$work/BaseTools/Source/C/bin:$PATH"
export PYTHONPATH="$work/BaseTools/Source/Python"

edk2_label=$(basename "$edk2")
compiler_label=$(gcc --version | head -n 1)

# --- recording helpers -----------------------------------------------------------------
cd "$work"
mkdir -p fixtures
records=$work/records.jsonl
: >"$records"

# fixture <file> <kind> <description> <inputs> <expect-json> -- <command...>
# Runs the command in the work dir, then records <file> (which it must have written).
fixture() {
  local file=$1 kind=$2 description=$3 inputs=$4 expect=$5
  shift 6
  "$@" >/dev/null
  cp "$file" "fixtures/$file"
  python3 - "$file" "$kind" "$description" "$inputs" "$expect" "$*" >>"$records" <<'PY'
import json, sys
file, kind, description, inputs, expect, command = sys.argv[1:7]
print(json.dumps({"file": file, "producedAs": file, "kind": kind, "description": description,
                  "command": command, "inputs": inputs.split(), "expect": json.loads(expect or "{}")}))
PY
}

LZMA_GUID=EE4E5898-3914-4259-9D6E-DC7BD79403CF
LZMA_F86_GUID=D42AE6BD-1352-4BFB-909A-CA72A6EAE889
BROTLI_GUID=3D532050-5CDA-4FD0-879E-0F7F630D5AFB
TIANO_GUID=A31280AD-481E-41B6-95E8-127F4C984779
CRC32_GUID=FC1BCDB0-7D31-49AA-936A-A4600D9DD083
FFS2_GUID=8C8CE578-8A3D-4F1C-9935-896185C32DD3
FFS3_GUID=5473C07A-3DCB-4DCA-BD6F-1E9689E7349A
CAPSULE_GUID=3B6686BD-0D76-4030-B70E-B5519E2FC5A0
FV_NAME_GUID=7B9C3E5A-2D41-4C8F-9E07-6A5B4C3D2E10
FV3_NAME_GUID=0F2E4D6C-8B1A-4937-A5C3-E1D2C3B4A596
FILE_PLAIN=C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B01
FILE_STD=C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B02
FILE_LZMA=C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B03
FILE_BROTLI=C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B04
FILE_RAW=C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B05
FILE_LARGE=C4C0E0A1-6F2B-4B1E-9D3A-0F1E2D3C4B06
FMP_IMAGE_GUID=3A1B8F22-5C7E-4D0B-9A44-6E2F1C3D5B70

# --- inputs ------------------------------------------------------------------------------
cp "$helpers/gen-inputs.py" gen-inputs.py
python3 gen-inputs.py
: >empty.bin

# A real PE32+ UEFI driver, built the way EDK2's GCC5 X64 toolchain builds one (compile,
# link with GccBase.lds, convert with GenFw), from the generated app.c.
gcc -Os -fshort-wchar -fno-builtin -fno-strict-aliasing -fno-common -ffunction-sections -fdata-sections \
  -m64 -fno-stack-protector -maccumulate-outgoing-args -mno-red-zone -mcmodel=small -fpie \
  -fno-asynchronous-unwind-tables -c app.c -o app.o
gcc -o app.dll -nostdlib -Wl,-n,-q,--gc-sections -z common-page-size=0x40 -Wl,--entry,_ModuleEntryPoint \
  -u _ModuleEntryPoint -Wl,-melf_x86_64,--oformat=elf64-x86-64,-pie -Wl,--defsym=PECOFF_HEADER_SIZE=0x228 \
  -Wl,-T,"$work/BaseTools/Scripts/GccBase.lds" app.o 2>/dev/null

fixture payload.bin input "generated payload: text, LE table, pseudo-random bytes, zeros (also writes app.c, large.bin)" \
  "gen-inputs.py" '{}' -- python3 gen-inputs.py
fixture app.efi pe32 "PE32+ x64 UEFI boot service driver: gcc + GccBase.lds + GenFw from generated app.c" \
  "app.dll" '{"machine": "x64", "subsystem": "EFI_BOOT_SERVICE_DRIVER"}' -- \
  GenFw -e UEFI_DRIVER -o app.efi app.dll

# --- compressed bodies ---------------------------------------------------------------
fixture payload.bin.efi compressed "EFI 1.1 (UEFI) compression of payload.bin" \
  payload.bin '{"algorithm": "efi", "decompressesTo": "payload.bin"}' -- \
  TianoCompress -e --uefi -o payload.bin.efi payload.bin
fixture payload.bin.tiano compressed "Tiano compression of payload.bin" \
  payload.bin '{"algorithm": "tiano", "decompressesTo": "payload.bin"}' -- \
  TianoCompress -e -o payload.bin.tiano payload.bin
fixture app.efi.efi compressed "EFI 1.1 compression of app.efi" \
  app.efi '{"algorithm": "efi", "decompressesTo": "app.efi"}' -- \
  TianoCompress -e --uefi -o app.efi.efi app.efi
fixture app.efi.tiano compressed "Tiano compression of app.efi" \
  app.efi '{"algorithm": "tiano", "decompressesTo": "app.efi"}' -- \
  TianoCompress -e -o app.efi.tiano app.efi
fixture empty.bin.efi compressed "EFI 1.1 compression of an empty file" \
  empty.bin '{"algorithm": "efi", "decompressesTo": "empty.bin"}' -- \
  TianoCompress -e --uefi -o empty.bin.efi empty.bin
fixture payload.bin.lzma compressed "EDK2 LZMA (13-byte header) of payload.bin" \
  payload.bin '{"algorithm": "lzma", "decompressesTo": "payload.bin"}' -- \
  LzmaCompress -e -o payload.bin.lzma payload.bin
fixture app.efi.lzmaf86 compressed "EDK2 LZMA with the x86 BCJ filter of app.efi" \
  app.efi '{"algorithm": "lzma-f86", "decompressesTo": "app.efi"}' -- \
  LzmaCompress -e --f86 -o app.efi.lzmaf86 app.efi
# The C tool is called directly: in this EDK2 release the PosixLike wrapper drops "-e"
# and passes "-w 22", which the C tool does not parse. Its defaults are quality 9 and
# window 22, what the wrapper intends.
fixture payload.bin.brotli compressed "EDK2 Brotli (16-byte size header) of payload.bin, quality 9, window 22" \
  payload.bin '{"algorithm": "brotli", "decompressesTo": "payload.bin"}' -- \
  BrotliCompress -e -o payload.bin.brotli payload.bin

# --- sections ------------------------------------------------------------------------
fixture app.pe32.sec section "EFI_SECTION_PE32 holding app.efi" app.efi '{"sectionType": 16}' -- \
  GenSec -s EFI_SECTION_PE32 -o app.pe32.sec app.efi
fixture app.ui.sec section "EFI_SECTION_USER_INTERFACE \"FixtureDriver\"" "" \
  '{"sectionType": 21, "name": "FixtureDriver"}' -- \
  GenSec -s EFI_SECTION_USER_INTERFACE -n FixtureDriver -o app.ui.sec
fixture app.ver.sec section "EFI_SECTION_VERSION build 42 \"1.0\"" "" \
  '{"sectionType": 20, "buildNumber": 42, "version": "1.0"}' -- \
  GenSec -s EFI_SECTION_VERSION -n 1.0 -j 42 -o app.ver.sec
# The leaf sections concatenated with GenSec's default EFI_SECTION_ALL, as GenFds does
# before running a GUIDed-section tool; the GUIDed bodies below decompress to leaf.all.
fixture leaf.all sections "app.pe32.sec + app.ui.sec + app.ver.sec concatenated (4-byte aligned)" \
  "app.pe32.sec app.ui.sec app.ver.sec" '{}' -- \
  GenSec -o leaf.all app.pe32.sec app.ui.sec app.ver.sec
fixture app.compress.sec section "EFI_SECTION_COMPRESSION, PI_STD (EFI 1.1), of the three leaf sections" \
  "app.pe32.sec app.ui.sec app.ver.sec" '{"sectionType": 1, "compressionType": 1, "decompressesTo": "leaf.all"}' -- \
  GenSec -s EFI_SECTION_COMPRESSION -c PI_STD -o app.compress.sec app.pe32.sec app.ui.sec app.ver.sec
fixture app.compress-none.sec section "EFI_SECTION_COMPRESSION, PI_NONE, of the three leaf sections" \
  "app.pe32.sec app.ui.sec app.ver.sec" '{"sectionType": 1, "compressionType": 0, "decompressesTo": "leaf.all"}' -- \
  GenSec -s EFI_SECTION_COMPRESSION -c PI_NONE -o app.compress-none.sec app.pe32.sec app.ui.sec app.ver.sec

LzmaCompress -e -o leaf.lzma leaf.all >/dev/null
LzmaCompress -e --f86 -o leaf.lzmaf86 leaf.all >/dev/null
BrotliCompress -e -o leaf.brotli leaf.all >/dev/null
TianoCompress -e -o leaf.tiano leaf.all >/dev/null
fixture app.guid-lzma.sec section "EFI_SECTION_GUID_DEFINED LZMA, PROCESSING_REQUIRED; body = LzmaCompress -e leaf.all" \
  "leaf.lzma" "{\"sectionType\": 2, \"guid\": \"$LZMA_GUID\", \"attributes\": 1, \"decompressesTo\": \"leaf.all\"}" -- \
  GenSec -s EFI_SECTION_GUID_DEFINED -g $LZMA_GUID -r PROCESSING_REQUIRED -o app.guid-lzma.sec leaf.lzma
fixture app.guid-lzmaf86.sec section "EFI_SECTION_GUID_DEFINED LZMA-F86; body = LzmaCompress -e --f86 leaf.all" \
  "leaf.lzmaf86" "{\"sectionType\": 2, \"guid\": \"$LZMA_F86_GUID\", \"attributes\": 1, \"decompressesTo\": \"leaf.all\"}" -- \
  GenSec -s EFI_SECTION_GUID_DEFINED -g $LZMA_F86_GUID -r PROCESSING_REQUIRED -o app.guid-lzmaf86.sec leaf.lzmaf86
fixture app.guid-brotli.sec section "EFI_SECTION_GUID_DEFINED Brotli; body = BrotliCompress -e leaf.all" \
  "leaf.brotli" "{\"sectionType\": 2, \"guid\": \"$BROTLI_GUID\", \"attributes\": 1, \"decompressesTo\": \"leaf.all\"}" -- \
  GenSec -s EFI_SECTION_GUID_DEFINED -g $BROTLI_GUID -r PROCESSING_REQUIRED -o app.guid-brotli.sec leaf.brotli
fixture app.guid-tiano.sec section "EFI_SECTION_GUID_DEFINED Tiano; body = TianoCompress -e leaf.all" \
  "leaf.tiano" "{\"sectionType\": 2, \"guid\": \"$TIANO_GUID\", \"attributes\": 1, \"decompressesTo\": \"leaf.all\"}" -- \
  GenSec -s EFI_SECTION_GUID_DEFINED -g $TIANO_GUID -r PROCESSING_REQUIRED -o app.guid-tiano.sec leaf.tiano
# GenSec makes the CRC32 GUIDed section when no GUID is given (GenSecGuidedSection).
fixture app.guid-crc32.sec section "EFI_SECTION_GUID_DEFINED CRC32 (GenSec computes the CRC, AUTH_STATUS_VALID) of leaf.all" \
  "leaf.all" "{\"sectionType\": 2, \"guid\": \"$CRC32_GUID\", \"contains\": \"leaf.all\"}" -- \
  GenSec -s EFI_SECTION_GUID_DEFINED -o app.guid-crc32.sec leaf.all

# --- FFS files and firmware volumes --------------------------------------------------
fixture plain.ffs ffs "DRIVER file with the PE32, UI and version sections, checksummed" \
  "app.pe32.sec app.ui.sec app.ver.sec" "{\"fileGuid\": \"$FILE_PLAIN\", \"fileType\": 7, \"sections\": [16, 21, 20]}" -- \
  GenFfs -t EFI_FV_FILETYPE_DRIVER -g $FILE_PLAIN -s -o plain.ffs -i app.pe32.sec -i app.ui.sec -i app.ver.sec
GenFfs -t EFI_FV_FILETYPE_DRIVER -g $FILE_STD -o std.ffs -i app.compress.sec >/dev/null
GenFfs -t EFI_FV_FILETYPE_FREEFORM -g $FILE_LZMA -o lzma.ffs -i app.guid-lzma.sec >/dev/null
GenFfs -t EFI_FV_FILETYPE_APPLICATION -g $FILE_BROTLI -o brotli.ffs -i app.guid-brotli.sec >/dev/null
GenFfs -t EFI_FV_FILETYPE_RAW -g $FILE_RAW -a 16 -o raw.ffs -i app.ui.sec >/dev/null

cat >fv.inf <<EOF
[options]
EFI_BLOCK_SIZE = 0x1000
EFI_FVNAME_GUID = $FV_NAME_GUID
[attributes]
EFI_ERASE_POLARITY = 1
EFI_FVB2_ALIGNMENT_16 = TRUE
[files]
EFI_FILE_NAME = plain.ffs
EFI_FILE_NAME = std.ffs
EFI_FILE_NAME = lzma.ffs
EFI_FILE_NAME = brotli.ffs
EFI_FILE_NAME = raw.ffs
EOF
fixture fixture.fv fv "FFSv2 volume (block 0x1000, erase polarity 1, extended header with FvNameGuid) with 5 files" \
  "fv.inf plain.ffs std.ffs lzma.ffs brotli.ffs raw.ffs" \
  "{\"fileSystemGuid\": \"$FFS2_GUID\", \"fvNameGuid\": \"$FV_NAME_GUID\", \"files\": [
     {\"guid\": \"$FILE_PLAIN\", \"type\": 7, \"sections\": [16, 21, 20]},
     {\"guid\": \"$FILE_STD\", \"type\": 7, \"sections\": [1], \"inner\": [16, 21, 20]},
     {\"guid\": \"$FILE_LZMA\", \"type\": 2, \"sections\": [2], \"guid_section\": \"$LZMA_GUID\", \"inner\": [16, 21, 20]},
     {\"guid\": \"$FILE_BROTLI\", \"type\": 9, \"sections\": [2], \"guid_section\": \"$BROTLI_GUID\", \"inner\": [16, 21, 20]},
     {\"guid\": \"$FILE_RAW\", \"type\": 1, \"alignment\": 16, \"contains\": \"app.ui.sec\"}]}" -- \
  GenFv -i fv.inf -g $FFS2_GUID -o fixture.fv

# FFSv3 with a file that needs the large header (EFI_FFS_FILE_HEADER2): GenFfs switches to
# it only when the file reaches 16 MiB, so the volume is checked in LZMA-compressed by
# EDK2's LzmaCompress (decompressLzma restores it; the volume's sha256 is recorded).
GenFfs -t EFI_FV_FILETYPE_RAW -g $FILE_LARGE -o large.ffs -i large.bin >/dev/null
cat >fv3.inf <<EOF
[options]
EFI_BLOCK_SIZE = 0x1000
EFI_FVNAME_GUID = $FV3_NAME_GUID
[attributes]
EFI_ERASE_POLARITY = 1
EFI_FVB2_ALIGNMENT_16 = TRUE
[files]
EFI_FILE_NAME = raw.ffs
EFI_FILE_NAME = large.ffs
EOF
GenFv -i fv3.inf -g $FFS3_GUID -o ffs3-large.fv >/dev/null
fixture ffs3-large.fv.lzma compressed "LzmaCompress of an FFSv3 volume with raw.ffs and a 16 MiB RAW file needing FFS_ATTRIB_LARGE_FILE (EFI_FFS_FILE_HEADER2). The volume came from: GenFfs -t EFI_FV_FILETYPE_RAW -g $FILE_LARGE -o large.ffs -i large.bin; GenFv -i fv3.inf -g $FFS3_GUID -o ffs3-large.fv" \
  "ffs3-large.fv large.bin large.ffs raw.ffs fv3.inf" \
  "{\"algorithm\": \"lzma\", \"decompressesTo\": \"ffs3-large.fv\", \"fileSystemGuid\": \"$FFS3_GUID\", \"fvNameGuid\": \"$FV3_NAME_GUID\", \"files\": [
     {\"guid\": \"$FILE_RAW\", \"type\": 1, \"alignment\": 16, \"contains\": \"app.ui.sec\"},
     {\"guid\": \"$FILE_LARGE\", \"type\": 1, \"largeFile\": true, \"dataSize\": 16777192, \"contentFile\": \"large.bin\"}]}" -- \
  LzmaCompress -e -o ffs3-large.fv.lzma ffs3-large.fv

# --- capsules ------------------------------------------------------------------------
cat >capsule-fv.inf <<EOF
[options]
EFI_BLOCK_SIZE = 0x200
[attributes]
EFI_ERASE_POLARITY = 1
[files]
EFI_FILE_NAME = raw.ffs
EOF
fixture capsule.fv fv "small FFSv2 volume (block 0x200) with raw.ffs; the payload of fixture.cap" \
  "capsule-fv.inf raw.ffs" \
  "{\"fileSystemGuid\": \"$FFS2_GUID\", \"files\": [{\"guid\": \"$FILE_RAW\", \"type\": 1, \"alignment\": 16, \"contains\": \"app.ui.sec\"}]}" -- \
  GenFv -i capsule-fv.inf -g $FFS2_GUID -o capsule.fv
fixture fixture.cap capsule "EFI_CAPSULE_HEADER (GenFv --capsule, header 0x20, PersistAcrossReset) around capsule.fv" \
  "capsule.fv" "{\"capsuleGuid\": \"$CAPSULE_GUID\", \"headerSize\": 32, \"flags\": 65536, \"contains\": \"capsule.fv\"}" -- \
  GenFv -c -g $CAPSULE_GUID --capheadsize 0x20 --capflag PersistAcrossReset -f capsule.fv -o fixture.cap
fixture fmp.cap capsule "FMP capsule (GenerateCapsule.py, unsigned) with small.bin as the image" \
  "small.bin" "{\"capsuleGuid\": \"6DCBD5ED-E82D-4C44-BDA1-7194199AD92A\", \"updateImageTypeId\": \"$FMP_IMAGE_GUID\", \"fwVersion\": 65538, \"lowestSupportedVersion\": 65536, \"flags\": 65536, \"payload\": \"small.bin\"}" -- \
  python3 BaseTools/Source/Python/Capsule/GenerateCapsule.py -e --guid $FMP_IMAGE_GUID --fw-version 0x00010002 \
  --lsv 0x00010000 --capflag PersistAcrossReset -o fmp.cap small.bin

# --- option ROMs ---------------------------------------------------------------------
fixture app.rom option-rom "EfiRom image of app.efi, uncompressed, vendor 0x8086 device 0x3E9B" \
  app.efi '{"vendorId": 32902, "deviceId": 16027, "compressed": false, "image": "app.efi"}' -- \
  EfiRom -f 0x8086 -i 0x3e9b -e app.efi -o app.rom
fixture app-ec.rom option-rom "EfiRom image of app.efi, EFI 1.1 compressed (-ec), vendor 0x8086 device 0x3E9B" \
  app.efi '{"vendorId": 32902, "deviceId": 16027, "compressed": true, "image": "app.efi"}' -- \
  EfiRom -f 0x8086 -i 0x3e9b -ec app.efi -o app-ec.rom

# --- publish -------------------------------------------------------------------------
mkdir -p "$out"
find "$out" -maxdepth 1 -type f ! -name README.md -delete
cp fixtures/* "$out/"
python3 "$helpers/write-index.py" "$records" "$work" "$out" "$edk2_label" "$compiler_label"
echo "wrote $(find "$out" -maxdepth 1 -type f | wc -l) files ($(du -sk "$out" | cut -f1) KiB) to $out" >&2
