// The pure parts of serving: the nginx locations shipped in contrib/ are the generated ones (so
// nginx and `serve` cannot drift apart), the Cache-Control rule per tree path, the conditional
// request decisions against a strong ETag, and the S3 URL and upload order of `mirror push`.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseS3Url, pushPhase } from '../src/mirror/s3-push.js';
import { cacheControlFor, IMMUTABLE_CACHE_CONTROL, SHORT_CACHE_CONTROL } from '../src/serve/cache-policy.js';
import { evaluateConditions, strongEtag } from '../src/serve/conditions.js';
import { NGINX_LOCATIONS, readContribLocations } from '../src/serve/nginx-conf.js';

const REPO = path.resolve(import.meta.dirname, '..');
const HEX = 'ab'.repeat(32);
const ETAG = strongEtag(HEX);

describe('serving rules', () => {
  it('contrib/nginx/ovmf-mirror.locations.conf is NGINX_LOCATIONS byte for byte', async () => {
    expect(await readContribLocations(REPO)).toBe(NGINX_LOCATIONS);
  });

  it.each([
    [`by-hash/sha256/${HEX}`, IMMUTABLE_CACHE_CONTROL],
    ['artifacts/cml/cml-20261124-a1b2c3d4/OVMF_CODE.fd', IMMUTABLE_CACHE_CONTROL],
    ['keys/0123abcd.pub', IMMUTABLE_CACHE_CONTROL],
    ['artifacts/cml/latest.json', SHORT_CACHE_CONTROL],
    ['index.json', SHORT_CACHE_CONTROL],
    ['index.signed.json', SHORT_CACHE_CONTROL],
    ['index.html', SHORT_CACHE_CONTROL],
    ['keys/notes.txt', SHORT_CACHE_CONTROL],
  ])('Cache-Control of %s', (relativePath, expected) => {
    expect(cacheControlFor(relativePath)).toBe(expected);
  });

  it.each([
    [{ 'if-none-match': ETAG }, { kind: 'not-modified' }],
    [{ 'if-none-match': `W/${ETAG}` }, { kind: 'not-modified' }],
    [{ 'if-none-match': '*' }, { kind: 'not-modified' }],
    [
      { 'if-none-match': '"x"', 'if-modified-since': 'Wed, 01 Jan 2020 00:00:00 GMT' },
      { kind: 'send', headers: {} },
    ],
    [{ 'if-match': '"x"' }, { kind: 'precondition-failed' }],
    [{ 'if-match': `W/${ETAG}` }, { kind: 'precondition-failed' }],
    [{ 'if-match': `"x", ${ETAG}` }, { kind: 'send', headers: {} }],
    [
      { range: 'bytes=0-1', 'if-range': ETAG },
      { kind: 'send', headers: { range: 'bytes=0-1' } },
    ],
    [
      { range: 'bytes=0-1', 'if-range': `W/${ETAG}` },
      { kind: 'send', headers: {} },
    ],
    [
      { range: 'bytes=0-1', 'if-range': '"x"' },
      { kind: 'send', headers: {} },
    ],
    [
      { range: 'bytes=0-1', 'if-range': 'Wed, 01 Jan 2020 00:00:00 GMT' },
      { kind: 'send', headers: { range: 'bytes=0-1', 'if-range': 'Wed, 01 Jan 2020 00:00:00 GMT' } },
    ],
  ])('conditions %j', (headers, expected) => {
    expect(evaluateConditions(headers, ETAG)).toEqual(expected);
  });

  it.each([
    ['s3://mirror/ovmf/', { bucket: 'mirror', prefix: 'ovmf' }],
    ['s3://my.bucket-1', { bucket: 'my.bucket-1', prefix: '' }],
    ['s3://mirror/a/b', { bucket: 'mirror', prefix: 'a/b' }],
  ])('parseS3Url(%s)', (url, expected) => {
    expect(parseS3Url(url)).toEqual(expected);
  });

  it.each(['http://mirror/x', 's3://', 's3://UPPER/x', 's3://b/../x', 'mirror/x'])(
    'parseS3Url(%s) is E_USAGE',
    (url) => {
      expect(() => parseS3Url(url)).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    },
  );

  it('pushes objects, then version directories and keys, then the small indexes, the page, and the signed index last', () => {
    const paths = [
      'index.signed.json',
      'index.html',
      'index.json',
      'artifacts/cml/latest.json',
      'keys/ab.pub',
      'artifacts/cml/v1/OVMF_CODE.fd',
      `by-hash/sha256/${HEX}`,
    ];
    expect([...paths].sort((a, b) => pushPhase(a) - pushPhase(b))).toEqual([
      `by-hash/sha256/${HEX}`,
      'keys/ab.pub',
      'artifacts/cml/v1/OVMF_CODE.fd',
      'index.json',
      'artifacts/cml/latest.json',
      'index.html',
      'index.signed.json',
    ]);
  });
});
