// The newest signed index `pull` has accepted from each publisher key, so that a pull can tell
// a replayed older index that is still within its valid_until (TUF's rollback rule, which
// `mirror sync` applies against the tree it holds). Kept per signing key, not per URL: mirrors
// of one publisher carry one serial series, and an older index moved to another address is
// still a rollback. Bytes in, values out (the file is `$XDG_STATE_HOME/ovmf-build/pull-serials.json`,
// read and written by pull.ts).
import { sha256 } from '../core/digest.js';
import { PublishError } from '../publish/errors.js';
import type { MirrorIndex } from './index-types.js';
import { canonicalJson } from './signed-index.js';

export const PULL_SERIALS_FILE = 'pull-serials.json';

export interface SeenIndex {
  readonly serial: number;
  /** SHA-256 of the payload's canonical JSON: the same serial must carry the same index. */
  readonly payloadSha256: string;
  /** The mirror it was pulled from, for the message. */
  readonly mirror: string;
  /** When (ISO 8601). */
  readonly seenAt: string;
}

/** By signing key fingerprint (lower-case hex). */
export type PullSerials = Readonly<Record<string, SeenIndex>>;

function invalid(file: string, why: string): PublishError {
  return new PublishError(
    'E_MIRROR_PULL_STATE',
    `${file} is not a record of index serials (${why}); pull refuses to go on without it, as it could not tell a rolled-back index: fix or remove the file`,
    { file },
  );
}

/** Parses the file's bytes (`file` names it in errors); an empty record for none. */
export function parsePullSerials(bytes: Uint8Array, file: string): PullSerials {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw invalid(file, (error as Error).message);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(file, 'not an object');
  const out: Record<string, SeenIndex> = {};
  for (const [fingerprint, entry] of Object.entries(value)) {
    const e = entry as Partial<SeenIndex> | null;
    if (
      !/^[0-9a-f]{64}$/.test(fingerprint) ||
      typeof e !== 'object' ||
      e === null ||
      !Number.isSafeInteger(e.serial) ||
      (e.serial as number) < 1 ||
      typeof e.payloadSha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(e.payloadSha256) ||
      typeof e.mirror !== 'string' ||
      typeof e.seenAt !== 'string'
    ) {
      throw invalid(file, `bad entry ${JSON.stringify(fingerprint.slice(0, 80))}`);
    }
    out[fingerprint] = {
      serial: e.serial as number,
      payloadSha256: e.payloadSha256,
      mirror: e.mirror,
      seenAt: e.seenAt,
    };
  }
  return out;
}

export function serializePullSerials(serials: PullSerials): string {
  const sorted = Object.fromEntries(Object.entries(serials).sort(([a], [b]) => (a < b ? -1 : 1)));
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/**
 * Refuses (E_MIRROR_INDEX_ROLLBACK) an index older than the newest pulled before under the same
 * key, or one with that serial and other contents. 'newer' when there is something to remember.
 */
export function checkPulledSerial(
  serials: PullSerials,
  fingerprint: string,
  payload: MirrorIndex,
  mirror: string,
  file: string,
): 'newer' | 'same' {
  const seen = serials[fingerprint];
  if (seen === undefined || payload.serial > seen.serial) return 'newer';
  const sameContents = sha256(canonicalJson(payload)) === seen.payloadSha256;
  if (payload.serial === seen.serial && sameContents) return 'same';
  const what =
    payload.serial === seen.serial
      ? `has serial ${payload.serial} with other contents than the index of that serial`
      : `has serial ${payload.serial}, older than the serial ${seen.serial}`;
  throw new PublishError(
    'E_MIRROR_INDEX_ROLLBACK',
    `the index from ${mirror} ${what} this machine pulled from ${seen.mirror} at ${seen.seenAt} under the same key ${fingerprint.slice(0, 16)}..: a replayed or rolled-back index. If its publisher really started over, remove that key's entry from ${file}`,
    {
      serial: payload.serial,
      seenSerial: seen.serial,
      seenMirror: seen.mirror,
      signingKeyFingerprint: fingerprint,
      file,
    },
  );
}

/** `serials` with `payload` as the newest of `fingerprint`. */
export function rememberPulledSerial(
  serials: PullSerials,
  fingerprint: string,
  payload: MirrorIndex,
  mirror: string,
  now: Date,
): PullSerials {
  return {
    ...serials,
    [fingerprint]: {
      serial: payload.serial,
      payloadSha256: sha256(canonicalJson(payload)),
      mirror,
      seenAt: now.toISOString(),
    },
  };
}
