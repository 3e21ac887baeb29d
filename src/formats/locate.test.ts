import { describe, expect, it } from 'vitest';
import { sha256 } from '../core/digest.js';
import { NotFoundError } from '../core/errors.js';
import { firmwareEntries, readCorpus } from '../../test/corpus.js';
import { concat, ffsFile, section, sections, utf16z, volume } from '../../test/ffs-builder.js';
import { parseFirmware } from './firmware-tree.js';
import { locateGop, locateGopAndVbt, locateVbt } from './locate.js';

describe('locateGopAndVbt on the corpus (manifest ground truth)', () => {
  for (const entry of firmwareEntries()) {
    it(`${entry.path}: GOP, GOP-named non-GOPs and VBTs`, () => {
      const tree = parseFirmware(readCorpus(entry.path), { strict: true });
      const result = locateGopAndVbt(tree);
      const truth = entry.truth;
      if (truth.gop === null) {
        expect(result.gop).toBeNull();
        expect(() => locateGop(tree)).toThrow(NotFoundError);
        expect(() => locateGop(tree)).toThrow(expect.objectContaining({ code: 'E_GOP_NOT_FOUND' }));
        expect(() => locateGop(tree)).toThrow(
          /this image ships no Intel GOP driver: searched \d+ volumes, \d+ files/,
        );
      } else {
        const [expected] = truth.gop;
        expect(truth.gop).toHaveLength(1);
        expect(result.otherGops).toEqual([]);
        expect({
          guid: result.gop?.guid,
          uiName: result.gop?.uiName,
          size: result.gop?.body.length,
          sha256: result.gop?.info.sha256,
          build: result.gop?.info.build,
        }).toEqual({
          guid: expected?.file_guid,
          uiName: expected?.ui_name,
          size: expected?.pe_size,
          sha256: expected?.pe_sha256,
          build: expected?.gop_build,
        });
        expect(sha256(result.gop?.body as Uint8Array)).toBe(expected?.pe_sha256);
      }
      // Every GOP-named file that is not a GOP is reported as such, and nothing else.
      expect(
        result.rejectedGops
          .map((r) => ({ guid: r.guid, uiName: r.uiName, size: r.sizeInBytes }))
          .sort((a, b) => a.guid.localeCompare(b.guid)),
      ).toEqual(
        truth.other_gop_named_files
          .map((o) => ({ guid: o.file_guid, uiName: o.ui_name, size: o.pe_size }))
          .sort((a, b) => a.guid.localeCompare(b.guid)),
      );
      for (const r of result.rejectedGops)
        expect(r.reason).toMatch(/without the UTF-16LE "Intel\(R\) GOP Driver" string/);
      if (truth.vbt === null) {
        expect(result.vbts).toEqual([]);
        expect(() => locateVbt(tree)).toThrow(expect.objectContaining({ code: 'E_VBT_NOT_FOUND' }));
      } else {
        expect(
          result.vbts.map((v) => ({
            guid: v.guid,
            uiName: v.uiName,
            size: v.body.length,
            sha256: sha256(v.body),
            vbtSize: v.info.vbtSize,
            trimmed: v.info.sha256,
            signature: v.info.signature,
            bdbVersion: v.info.bdbVersion,
          })),
        ).toEqual(
          truth.vbt.map((v) => ({
            guid: v.file_guid,
            uiName: v.ui_name,
            size: v.body_size,
            sha256: v.body_sha256,
            vbtSize: v.vbt_size_field,
            trimmed: v.vbt_sha256_trimmed_to_vbt_size,
            signature: v.signature,
            bdbVersion: v.intel_vbt_decode.bdb_version,
          })),
        );
        expect(locateVbt(tree).guid).toBe(truth.vbt[0]?.file_guid);
      }
      expect(result.rejectedVbts).toEqual([]);
    });
  }
});

describe('locateGopAndVbt on built volumes', () => {
  it('rejects a $VBT body that does not parse, with the reason from parseVbt', () => {
    const vbt = new Uint8Array(0x200);
    vbt.set(Buffer.from('$VBT TESTLAKE'), 0);
    const file = ffsFile(
      '01234567-89AB-CDEF-0123-456789ABCDEF',
      0x02,
      sections(section(0x19, vbt), section(0x15, utf16z('Vbt'))),
    );
    const tree = parseFirmware(concat(volume([file])), { strict: true });
    const result = locateGopAndVbt(tree);
    // The body starts with $VBT but is not a valid VBT: rejected with the reason from parseVbt.
    expect(result.vbt).toBeNull();
    expect(result.rejectedVbts).toHaveLength(1);
    expect(result.rejectedVbts[0]?.reason).toMatch(/^starts with \$VBT but does not parse: /);
  });

  it('never returns the AMI 4.8 KB module named IntelGopDriver; finds the real GOP by its bytes under any name', () => {
    const fake = readCorpus('gop/not-a-gop-asrock-b85pro4-IntelGopDriver.efi');
    const real = readCorpus('gop/cometlake-mrchromebox-cml.efi');
    const tree = parseFirmware(
      volume([
        ffsFile(
          '1647B4F3-3E8A-4FDD-81C8-328ED647AB1A',
          0x07,
          sections(section(0x10, fake), section(0x15, utf16z('IntelGopDriver'))),
        ),
        ffsFile(
          '01234567-89AB-CDEF-0123-456789ABCDEF',
          0x07,
          sections(section(0x10, real), section(0x15, utf16z('SomeDxe'))),
        ),
      ]),
      { strict: true },
    );
    const result = locateGopAndVbt(tree);
    expect(result.gop?.guid).toBe('01234567-89AB-CDEF-0123-456789ABCDEF');
    expect(result.gop?.foundBy).toEqual(['driver-name-string']);
    expect(result.gop?.info.build).toBe('1107');
    expect(sha256(result.gop?.body as Uint8Array)).toBe(
      '4593b31bcac5161697038d93fa83dc689e68d445accfe2fa5d35aaae23729517',
    );
    expect(result.rejectedGops.map((r) => [r.guid, r.uiName, r.sizeInBytes, r.foundBy])).toEqual([
      ['1647B4F3-3E8A-4FDD-81C8-328ED647AB1A', 'IntelGopDriver', 4800, ['known-guid', 'ui-name']],
    ]);
  });
});
