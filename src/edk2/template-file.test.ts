import { describe, expect, it } from 'vitest';
import { sha256 } from '../core/digest.js';
import { decodeTemplate, encodeTemplate, TEMPLATE_FILE_VERSION } from './template-file.js';
import { smallTemplate } from '../../test/variant-template-fixture.js';
import type { VariantTemplate } from './variant-templates.js';

const KEY = '0123456789abcdef01234567';

const template = (): VariantTemplate => smallTemplate('job-1');

/** Offset of the first blob (OVMF_CODE.fd) in an encoded file. */
function blobsStart(file: Uint8Array): number {
  return 16 + new DataView(file.buffer, file.byteOffset).getUint32(12, true);
}

describe('template file', () => {
  it('round-trips every field and makes OVMF.fd again as VARS then CODE', () => {
    const original = template();
    const file = encodeTemplate(KEY, original) as Uint8Array;
    expect(new TextDecoder().decode(file.subarray(0, 8))).toBe('OVMFTPL\0');
    expect(new DataView(file.buffer).getUint32(8, true)).toBe(TEMPLATE_FILE_VERSION);
    const header = JSON.parse(new TextDecoder().decode(file.subarray(16, blobsStart(file)))) as unknown;
    expect(header).toEqual({
      key: KEY,
      jobId: 'job-1',
      builder: { id: 'sha256:builder', ref: 'localhost/ovmf-build/edk2-builder:0' },
      compiled: 'compiled-job-1',
      blobs: [
        { name: 'code', length: 2048, sha256: sha256(original.code) },
        { name: 'vars', length: 512, sha256: sha256(original.vars) },
        { name: 'gop', length: 10, sha256: sha256(original.gop) },
        { name: 'vbt', length: 20, sha256: sha256(original.vbt) },
        { name: 'igdAssignment', length: 5, sha256: sha256(original.helperDrivers.igdAssignment) },
        { name: 'gopPolicy', length: 6, sha256: sha256(original.helperDrivers.gopPolicy) },
      ],
    });
    // The combined image is not stored: the file is the header and the six blobs, nothing else.
    expect(file.length).toBe(blobsStart(file) + 2048 + 512 + 10 + 20 + 5 + 6);
    const decoded = decodeTemplate(file, KEY);
    expect(decoded).toEqual({ ok: true, template: original });
  });

  it('keeps no `compiled` field when the template has none', () => {
    const { compiled: _compiled, ...without } = template();
    const decoded = decodeTemplate(encodeTemplate(KEY, without) as Uint8Array, KEY);
    expect(decoded.ok && 'compiled' in decoded.template).toBe(false);
  });

  it('refuses to store a template whose OVMF.fd is not VARS followed by CODE', () => {
    const original = template();
    const combined = original.combined.slice();
    combined[combined.length - 1] = (combined[combined.length - 1] as number) ^ 1;
    expect(encodeTemplate(KEY, { ...original, combined })).toBeNull();
    expect(encodeTemplate(KEY, { ...original, combined: original.combined.subarray(1) })).toBeNull();
  });

  it('refuses damaged, cut, grown, foreign and other-key files with the reason', () => {
    const file = encodeTemplate(KEY, template()) as Uint8Array;
    const flipped = file.slice();
    flipped[blobsStart(file) + 2100] = (flipped[blobsStart(file) + 2100] as number) ^ 0x40; // inside OVMF_VARS.fd
    const otherVersion = file.slice();
    otherVersion[8] = 2;
    const longHeader = file.slice();
    new DataView(longHeader.buffer).setUint32(12, 0x10_0000, true);
    const badJson = file.slice();
    badJson[16] = 0x7b + 1;
    const grown = new Uint8Array(file.length + 1);
    grown.set(file);
    expect(
      [
        decodeTemplate(flipped, KEY),
        decodeTemplate(file.subarray(0, file.length - 1), KEY),
        decodeTemplate(grown, KEY),
        decodeTemplate(file.subarray(0, 10), KEY),
        decodeTemplate(new Uint8Array(64), KEY),
        decodeTemplate(otherVersion, KEY),
        decodeTemplate(longHeader, KEY),
        decodeTemplate(badJson, KEY),
        decodeTemplate(file, 'fedcba9876543210fedcba98'),
      ].map((result) => (result.ok ? 'ok' : result.reason)),
    ).toEqual([
      'vars does not match its SHA-256',
      `the header accounts for ${file.length} bytes, the file has ${file.length - 1}`,
      `the header accounts for ${file.length} bytes, the file has ${file.length + 1}`,
      'not a template file (no OVMFTPL magic)',
      'not a template file (no OVMFTPL magic)',
      `template file version 2, this ovmf-build reads ${TEMPLATE_FILE_VERSION}`,
      `header of ${0x10_0000} bytes does not fit the ${file.length}-byte file`,
      'the header is not JSON',
      `the file holds workspace key ${KEY}, not fedcba9876543210fedcba98`,
    ]);
  });

  it('refuses a header with a field of the wrong type or the blobs out of order', () => {
    const encode = (header: unknown): Uint8Array => {
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(16 + json.length);
      out.set(new TextEncoder().encode('OVMFTPL\0'), 0);
      new DataView(out.buffer).setUint32(8, TEMPLATE_FILE_VERSION, true);
      new DataView(out.buffer).setUint32(12, json.length, true);
      out.set(json, 16);
      return out;
    };
    const blobs = ['code', 'vars', 'gop', 'vbt', 'igdAssignment', 'gopPolicy'].map((name) => ({
      name,
      length: 0,
      sha256: sha256(new Uint8Array(0)),
    }));
    const good = { key: KEY, jobId: 'j', builder: { id: 'i', ref: 'r' }, blobs };
    expect(decodeTemplate(encode(good), KEY).ok).toBe(true);
    for (const bad of [
      { ...good, jobId: 1 },
      { ...good, builder: { id: 'i' } },
      { ...good, compiled: 5 },
      { ...good, blobs: [...blobs].reverse() },
      { ...good, blobs: blobs.slice(1) },
      { ...good, blobs: blobs.map((blob) => ({ ...blob, length: -1 })) },
      [good],
      null,
    ]) {
      expect(decodeTemplate(encode(bad), KEY)).toEqual({
        ok: false,
        reason: 'the header lacks a field or has one of the wrong type',
      });
    }
  });
});
