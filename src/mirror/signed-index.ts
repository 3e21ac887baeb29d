// index.signed.json: the index payload and its ed25519 signature in one object (so they can
// never be out of step, unlike a detached .sig). The signed bytes are a domain-separation line
// and the payload's canonical JSON (keys sorted, no spaces), so a verifier needs no byte copy
// of what was signed, only the parsed payload. Parsing checks the whole schema: every name,
// version and file name that later becomes a local path is validated here.
import { sign, type KeyObject } from 'node:crypto';
import { PublishError } from '../publish/errors.js';
import { isPlainFileName } from '../publish/layout.js';
import { verifyMessage, type SigningKey } from '../publish/signing.js';
import {
  INDEX_FORMAT,
  INDEX_FORMAT_VERSION,
  INDEX_SIGNATURE_CONTEXT,
  byHashUrl,
  keyUrl,
  versionUrl,
  type MirrorIndex,
  type SignedMirrorIndex,
} from './index-types.js';

const HEX_SHA256 = /^[0-9a-f]{64}$/;
const ARTIFACT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/** JSON with object keys sorted at every level and no whitespace: the bytes the signature covers. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function indexSignedBytes(payload: MirrorIndex): Buffer {
  return Buffer.from(`${INDEX_SIGNATURE_CONTEXT}${canonicalJson(payload)}`, 'utf8');
}

export function signIndex(payload: MirrorIndex, key: SigningKey): SignedMirrorIndex {
  return {
    payload,
    algorithm: 'ed25519',
    key_fingerprint: key.fingerprint,
    signature: sign(null, indexSignedBytes(payload), key.privateKey).toString('base64'),
  };
}

/** The file's text: pretty JSON in the object's own key order (deterministic for the same payload). */
export function serializeJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function invalid(what: string, details: Record<string, unknown> = {}): PublishError {
  return new PublishError('E_MIRROR_INDEX_INVALID', `index.signed.json ${what}`, details);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function expectString(value: unknown, where: string): string {
  if (typeof value !== 'string') throw invalid(`has no string ${where}`);
  return value;
}

function expectSha(value: unknown, where: string): string {
  if (typeof value !== 'string' || !HEX_SHA256.test(value)) throw invalid(`has no sha256 at ${where}`);
  return value;
}

function expectSize(value: unknown, where: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw invalid(`has no size at ${where}`);
  return value as number;
}

function checkPayload(payload: Record<string, unknown>): MirrorIndex {
  if (payload['format'] !== INDEX_FORMAT || payload['format_version'] !== INDEX_FORMAT_VERSION) {
    throw invalid(`is not an ${INDEX_FORMAT} version ${INDEX_FORMAT_VERSION} payload`);
  }
  if (!Number.isSafeInteger(payload['serial']) || (payload['serial'] as number) < 1) {
    throw invalid('has no positive integer serial');
  }
  for (const field of ['generated_at', 'valid_until']) {
    if (Number.isNaN(Date.parse(expectString(payload[field], field)))) throw invalid(`has a bad ${field}`);
  }
  expectSha(payload['key_fingerprint'], 'key_fingerprint');
  const keys = payload['keys'];
  if (!Array.isArray(keys)) throw invalid('has no keys list');
  for (const [i, key] of keys.entries()) {
    if (!isObject(key)) throw invalid(`keys[${i}] is not an object`);
    const fingerprint = expectSha(key['fingerprint'], `keys[${i}].fingerprint`);
    expectSha(key['sha256'], `keys[${i}].sha256`);
    expectSize(key['size'], `keys[${i}].size`);
    if (key['url'] !== keyUrl(fingerprint)) throw invalid(`keys[${i}].url is not ${keyUrl(fingerprint)}`);
  }
  const artifacts = payload['artifacts'];
  if (!Array.isArray(artifacts)) throw invalid('has no artifacts list');
  const names = new Set<string>();
  for (const [i, artifact] of artifacts.entries()) {
    if (!isObject(artifact)) throw invalid(`artifacts[${i}] is not an object`);
    const name = expectString(artifact['name'], `artifacts[${i}].name`);
    if (!ARTIFACT_NAME.test(name) || name.includes('..') || names.has(name)) {
      throw invalid(`names a bad or repeated artifact \`${name}\``, { name });
    }
    names.add(name);
    const versions = artifact['versions'];
    if (!Array.isArray(versions) || versions.length === 0) throw invalid(`lists no versions of ${name}`);
    const seen = new Set<string>();
    for (const version of versions) {
      if (!isObject(version)) throw invalid(`has a version of ${name} that is not an object`);
      const v = expectString(version['version'], `${name} version`);
      if (!isPlainFileName(v) || seen.has(v)) throw invalid(`names a bad or repeated version \`${v}\``);
      seen.add(v);
      if (version['url'] !== versionUrl(name, v))
        throw invalid(`gives ${name} ${v} a url other than its own`);
      expectSha(version['signing_key_fingerprint'], `${name} ${v} signing_key_fingerprint`);
      const files = version['files'];
      if (!Array.isArray(files) || files.length === 0) throw invalid(`lists no files of ${name} ${v}`);
      const fileNames = new Set<string>();
      for (const file of files) {
        if (!isObject(file)) throw invalid(`has a file of ${name} ${v} that is not an object`);
        const fileName = expectString(file['name'], `${name} ${v} file name`);
        if (!isPlainFileName(fileName) || fileNames.has(fileName)) {
          throw invalid(`names a bad or repeated file \`${fileName}\` in ${name} ${v}`);
        }
        fileNames.add(fileName);
        const sha = expectSha(file['sha256'], `${name} ${v} ${fileName}`);
        expectSize(file['size'], `${name} ${v} ${fileName}`);
        if (file['url'] !== `${versionUrl(name, v)}${fileName}` || file['by_hash'] !== byHashUrl(sha)) {
          throw invalid(`gives ${name} ${v} ${fileName} urls other than its own`);
        }
      }
    }
    if (typeof artifact['latest'] !== 'string' || !seen.has(artifact['latest'])) {
      throw invalid(`gives ${name} a latest version it does not list`);
    }
  }
  return payload as unknown as MirrorIndex;
}

/** Parses index.signed.json and checks its schema (not yet its signature). */
export function parseSignedIndex(bytes: Uint8Array): SignedMirrorIndex {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw invalid('is not JSON');
  }
  if (
    !isObject(parsed) ||
    !isObject(parsed['payload']) ||
    parsed['algorithm'] !== 'ed25519' ||
    typeof parsed['signature'] !== 'string' ||
    typeof parsed['key_fingerprint'] !== 'string' ||
    !HEX_SHA256.test(parsed['key_fingerprint'])
  ) {
    throw invalid('is not one object {payload, algorithm: "ed25519", key_fingerprint, signature}');
  }
  const payload = checkPayload(parsed['payload']);
  if (payload.key_fingerprint !== parsed['key_fingerprint']) {
    throw invalid('names two different signing keys (payload and envelope)');
  }
  return {
    payload,
    algorithm: 'ed25519',
    key_fingerprint: parsed['key_fingerprint'],
    signature: parsed['signature'],
  };
}

/** E_MIRROR_INDEX_SIGNATURE unless the signature verifies with `publicKey` (a key the user trusts). */
export function assertIndexSignature(
  signed: SignedMirrorIndex,
  publicKey: KeyObject,
  fingerprint: string,
): void {
  if (signed.key_fingerprint !== fingerprint) {
    throw new PublishError(
      'E_MIRROR_INDEX_UNTRUSTED',
      `the index is signed by key ${signed.key_fingerprint}, not by the trusted key ${fingerprint}`,
      { signingKeyFingerprint: signed.key_fingerprint, trustedFingerprint: fingerprint },
    );
  }
  if (!verifyMessage(publicKey, indexSignedBytes(signed.payload), signed.signature)) {
    throw new PublishError(
      'E_MIRROR_INDEX_SIGNATURE',
      `the signature of index.signed.json (serial ${signed.payload.serial}) does not verify with key ${fingerprint.slice(0, 16)}..`,
      { serial: signed.payload.serial, signingKeyFingerprint: fingerprint },
    );
  }
}

/**
 * The replay checks (Debian's Valid-Until, TUF's rollback rule): refused when expired, or when
 * its serial is older than the one the mirror holds. The same serial is "no change" only when
 * the payload is the same; a different payload under the same serial is a rollback too.
 */
export function assertFresh(payload: MirrorIndex, now: Date, current: MirrorIndex | null): 'newer' | 'same' {
  if (Date.parse(payload.valid_until) <= now.getTime()) {
    throw new PublishError(
      'E_MIRROR_INDEX_EXPIRED',
      `the index (serial ${payload.serial}) expired at ${payload.valid_until}`,
      { serial: payload.serial, validUntil: payload.valid_until, now: now.toISOString() },
    );
  }
  if (current === null || payload.serial > current.serial) return 'newer';
  if (payload.serial === current.serial && canonicalJson(payload) === canonicalJson(current)) return 'same';
  throw new PublishError(
    'E_MIRROR_INDEX_ROLLBACK',
    `the index has serial ${payload.serial}, not newer than the ${current.serial} this mirror holds`,
    { serial: payload.serial, currentSerial: current.serial },
  );
}
