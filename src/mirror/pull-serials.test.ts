import { describe, expect, it } from 'vitest';
import { errorOf } from '../../test/rejection.js';
import { INDEX_FORMAT, INDEX_FORMAT_VERSION, type MirrorIndex } from './index-types.js';
import {
  checkPulledSerial,
  parsePullSerials,
  rememberPulledSerial,
  serializePullSerials,
  type PullSerials,
} from './pull-serials.js';

const KEY = 'ab'.repeat(32);
const OTHER = 'cd'.repeat(32);
const FILE = '/state/pull-serials.json';
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function index(serial: number, validUntil = '2026-12-12T00:00:00.000Z'): MirrorIndex {
  return {
    format: INDEX_FORMAT,
    format_version: INDEX_FORMAT_VERSION,
    serial,
    generated_at: '2026-12-05T00:00:00.000Z',
    valid_until: validUntil,
    key_fingerprint: KEY,
    keys: [],
    artifacts: [],
  };
}

/** The error a call throws. */
function thrown(call: () => unknown): { code: string; message: string; details: Record<string, unknown> } {
  try {
    call();
  } catch (error) {
    return error as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error('expected a throw');
}

describe('the serials pull has accepted', () => {
  const now = new Date('2026-12-05T10:00:00Z');
  const seen: PullSerials = rememberPulledSerial({}, KEY, index(5), 'https://a.example/m/', now);

  it('accepts a newer serial, the same index again, and any serial of another key', () => {
    expect(checkPulledSerial({}, KEY, index(1), 'https://a.example/m/', FILE)).toBe('newer');
    expect(checkPulledSerial(seen, KEY, index(6), 'https://b.example/', FILE)).toBe('newer');
    expect(checkPulledSerial(seen, KEY, index(5), 'https://b.example/', FILE)).toBe('same');
    expect(checkPulledSerial(seen, OTHER, index(1), 'https://a.example/m/', FILE)).toBe('newer');
  });

  it('refuses an older serial from any mirror, and the same serial with other contents', () => {
    const older = thrown(() => checkPulledSerial(seen, KEY, index(4), 'https://b.example/', FILE));
    expect(older.code).toBe('E_MIRROR_INDEX_ROLLBACK');
    expect(older.message).toBe(
      `the index from https://b.example/ has serial 4, older than the serial 5 this machine pulled from https://a.example/m/ at 2026-12-05T10:00:00.000Z under the same key ${KEY.slice(0, 16)}..: a replayed or rolled-back index. If its publisher really started over, remove that key's entry from ${FILE}`,
    );
    expect(older.details).toEqual({
      serial: 4,
      seenSerial: 5,
      seenMirror: 'https://a.example/m/',
      signingKeyFingerprint: KEY,
      file: FILE,
    });
    const other = thrown(() =>
      checkPulledSerial(seen, KEY, index(5, '2026-12-13T00:00:00.000Z'), 'https://a.example/m/', FILE),
    );
    expect(other.code).toBe('E_MIRROR_INDEX_ROLLBACK');
    expect(other.message).toMatch(
      /^the index from https:\/\/a\.example\/m\/ has serial 5 with other contents than/,
    );
  });

  it('round-trips through its file, sorted by key, and refuses a damaged file with E_MIRROR_PULL_STATE', async () => {
    const both = rememberPulledSerial(seen, OTHER, index(2), 'https://c.example/', now);
    const text = serializePullSerials(both);
    expect(Object.keys(JSON.parse(text) as object)).toEqual([KEY, OTHER]);
    expect(parsePullSerials(bytes(text), FILE)).toEqual(both);
    expect(both[KEY]).toEqual(seen[KEY]);
    for (const bad of [
      '',
      '[]',
      'null',
      '{"x": {}}',
      `{"${KEY}": {"serial": 0, "payloadSha256": "${'0'.repeat(64)}", "mirror": "m", "seenAt": "t"}}`,
      `{"${KEY}": {"serial": 1.5, "payloadSha256": "${'0'.repeat(64)}", "mirror": "m", "seenAt": "t"}}`,
      `{"${KEY}": {"serial": 1, "payloadSha256": "short", "mirror": "m", "seenAt": "t"}}`,
    ]) {
      const error = await errorOf(Promise.resolve().then(() => parsePullSerials(bytes(bad), FILE)));
      expect(error.code).toBe('E_MIRROR_PULL_STATE');
      expect(error.message).toMatch(
        /^\/state\/pull-serials\.json is not a record of index serials \(.+\); pull refuses to go on without it/,
      );
    }
  });
});
