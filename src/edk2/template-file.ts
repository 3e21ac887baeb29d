// The on-disk form of a variant template (variant-templates.ts), so that a later process (the
// next `ovmf-build --gop x --vbt y`, the next night, another worker on the same host) makes a
// variant of the same warm-workspace key over it without a container, as a session does in
// memory. One file per workspace key; bytes in, bytes out, no I/O (template-store.ts reads and
// writes it).
// Layout: the magic `OVMFTPL\0`, a u32 format version, a u32 length of a UTF-8 JSON header, the
// header, then the blobs the header lists, one after the other. The header names the workspace
// key, the job and builder image that made the images, and each blob's length and SHA-256, which
// decoding checks: a file cut short, grown, or with one bit flipped is refused, never used.
// OVMF.fd is not stored: it is OVMF_VARS.fd followed by OVMF_CODE.fd (encodeTemplate refuses a
// template whose combined image is anything else), so it is made again on reading.
import { sha256 } from '../core/digest.js';
import { u32 } from '../formats/le-bytes.js';
import type { VariantTemplate } from './variant-templates.js';

const MAGIC = new TextEncoder().encode('OVMFTPL\0');
export const TEMPLATE_FILE_VERSION = 1;
const PREFIX_SIZE = MAGIC.length + 8;
/** A header is a few hundred bytes; anything past this is not one of ours. */
const MAX_HEADER_BYTES = 64 * 1024;
/** The blobs, in file order. */
const BLOBS = ['code', 'vars', 'gop', 'vbt', 'igdAssignment', 'gopPolicy'] as const;
type BlobName = (typeof BLOBS)[number];

interface TemplateHeader {
  readonly key: string;
  readonly jobId: string;
  readonly builder: { readonly id: string; readonly ref: string };
  readonly compiled?: string;
  readonly blobs: readonly { readonly name: BlobName; readonly length: number; readonly sha256: string }[];
}

export type TemplateDecoded =
  { readonly ok: true; readonly template: VariantTemplate } | { readonly ok: false; readonly reason: string };

function blobsOf(template: VariantTemplate): Record<BlobName, Uint8Array> {
  return {
    code: template.code,
    vars: template.vars,
    gop: template.gop,
    vbt: template.vbt,
    igdAssignment: template.helperDrivers.igdAssignment,
    gopPolicy: template.helperDrivers.gopPolicy,
  };
}

/**
 * The parts one after the other, in an array of its own: not a Buffer, whose small results share
 * a pool (`.buffer` would be the pool's) and which compares unequal to a Uint8Array in tests.
 */
function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

/**
 * The file for the template of workspace key `key`, or null when the template cannot be stored
 * faithfully (its OVMF.fd is not OVMF_VARS.fd followed by OVMF_CODE.fd).
 */
export function encodeTemplate(key: string, template: VariantTemplate): Uint8Array | null {
  const { combined, vars, code } = template;
  if (
    combined.length !== vars.length + code.length ||
    !equalBytes(combined.subarray(0, vars.length), vars) ||
    !equalBytes(combined.subarray(vars.length), code)
  ) {
    return null;
  }
  const blobs = blobsOf(template);
  const header: TemplateHeader = {
    key,
    jobId: template.jobId,
    builder: { id: template.builder.id, ref: template.builder.ref },
    ...(template.compiled === undefined ? {} : { compiled: template.compiled }),
    blobs: BLOBS.map((name) => ({ name, length: blobs[name].length, sha256: sha256(blobs[name]) })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(PREFIX_SIZE);
  prefix.set(MAGIC, 0);
  const view = new DataView(prefix.buffer);
  view.setUint32(MAGIC.length, TEMPLATE_FILE_VERSION, true);
  view.setUint32(MAGIC.length + 4, json.length, true);
  return concat([prefix, json, ...BLOBS.map((name) => blobs[name])]);
}

const refuse = (reason: string): TemplateDecoded => ({ ok: false, reason });

function isHeader(value: unknown): value is TemplateHeader {
  if (typeof value !== 'object' || value === null) return false;
  const header = value as Record<string, unknown>;
  const builder = header['builder'] as Record<string, unknown> | undefined;
  const blobs = header['blobs'];
  return (
    typeof header['key'] === 'string' &&
    typeof header['jobId'] === 'string' &&
    (header['compiled'] === undefined || typeof header['compiled'] === 'string') &&
    typeof builder === 'object' &&
    builder !== null &&
    typeof builder['id'] === 'string' &&
    typeof builder['ref'] === 'string' &&
    Array.isArray(blobs) &&
    blobs.length === BLOBS.length &&
    blobs.every(
      (blob: unknown, i) =>
        typeof blob === 'object' &&
        blob !== null &&
        (blob as Record<string, unknown>)['name'] === BLOBS[i] &&
        Number.isSafeInteger((blob as Record<string, unknown>)['length']) &&
        ((blob as Record<string, unknown>)['length'] as number) >= 0 &&
        typeof (blob as Record<string, unknown>)['sha256'] === 'string',
    )
  );
}

/**
 * The template in `bytes`, if it is a whole, undamaged template file of workspace key `key`. Its
 * images are views of `bytes` (no copies), except OVMF.fd, which is made again.
 */
export function decodeTemplate(bytes: Uint8Array, key: string): TemplateDecoded {
  if (bytes.length < PREFIX_SIZE || !equalBytes(bytes.subarray(0, MAGIC.length), MAGIC)) {
    return refuse('not a template file (no OVMFTPL magic)');
  }
  const version = u32(bytes, MAGIC.length);
  if (version !== TEMPLATE_FILE_VERSION) {
    return refuse(`template file version ${version}, this ovmf-build reads ${TEMPLATE_FILE_VERSION}`);
  }
  const headerLength = u32(bytes, MAGIC.length + 4);
  if (headerLength > MAX_HEADER_BYTES || PREFIX_SIZE + headerLength > bytes.length) {
    return refuse(`header of ${headerLength} bytes does not fit the ${bytes.length}-byte file`);
  }
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(
        bytes.subarray(PREFIX_SIZE, PREFIX_SIZE + headerLength),
      ),
    );
  } catch {
    return refuse('the header is not JSON');
  }
  if (!isHeader(header)) return refuse('the header lacks a field or has one of the wrong type');
  if (header.key !== key) return refuse(`the file holds workspace key ${header.key}, not ${key}`);
  const total = header.blobs.reduce((sum, blob) => sum + blob.length, PREFIX_SIZE + headerLength);
  if (total !== bytes.length) {
    return refuse(`the header accounts for ${total} bytes, the file has ${bytes.length}`);
  }
  const blobs = {} as Record<BlobName, Uint8Array>;
  let at = PREFIX_SIZE + headerLength;
  for (const blob of header.blobs) {
    const body = bytes.subarray(at, at + blob.length);
    at += blob.length;
    if (sha256(body) !== blob.sha256) return refuse(`${blob.name} does not match its SHA-256`);
    blobs[blob.name] = body;
  }
  return {
    ok: true,
    template: {
      code: blobs.code,
      vars: blobs.vars,
      combined: concat([blobs.vars, blobs.code]),
      gop: blobs.gop,
      vbt: blobs.vbt,
      helperDrivers: { igdAssignment: blobs.igdAssignment, gopPolicy: blobs.gopPolicy },
      jobId: header.jobId,
      builder: { id: header.builder.id, ref: header.builder.ref },
      ...(header.compiled === undefined ? {} : { compiled: header.compiled }),
    },
  };
}
