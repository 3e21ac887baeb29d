// The conditional request headers evaluated against our strong sha256 ETag (RFC 9110 section
// 13). @fastify/send evaluates them against its own weak "size-mtime" tag, which it computes
// itself; so the server decides If-Match, If-None-Match and an entity-tag If-Range here and
// hands send a request without them (send still handles Range and date validators).

/** The strong entity tag of a file with this sha256 (lower-case hex). */
export function strongEtag(sha256Hex: string): string {
  return `"${sha256Hex}"`;
}

/** The entity tags of a list header (`"a", W/"b"`), or '*'. */
function entityTags(value: string): readonly string[] | '*' {
  if (value.trim() === '*') return '*';
  return value
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag.length > 0);
}

/** Weak comparison (If-None-Match): W/ prefixes are ignored. */
function weakMatch(tags: readonly string[] | '*', etag: string): boolean {
  return tags === '*' || tags.some((tag) => (tag.startsWith('W/') ? tag.slice(2) : tag) === etag);
}

/** Strong comparison (If-Match, If-Range): a weak tag never matches. */
function strongMatch(tags: readonly string[] | '*', etag: string): boolean {
  return tags === '*' || tags.includes(etag);
}

export type ConditionOutcome =
  /** Serve the file; `headers` are the request headers to give send. */
  | { readonly kind: 'send'; readonly headers: Record<string, string | string[] | undefined> }
  | { readonly kind: 'not-modified' }
  | { readonly kind: 'precondition-failed' };

/**
 * What the conditional headers of a GET or HEAD ask for, given the file's strong ETag. The
 * returned headers have If-Match and If-None-Match removed (decided here), If-Modified-Since
 * removed when If-None-Match was present (RFC 9110 section 13.1.3), and an entity-tag If-Range
 * removed when it matches (the range is served) or taken with the Range when it does not (the
 * whole file is served).
 */
export function evaluateConditions(
  requestHeaders: Readonly<Record<string, string | string[] | undefined>>,
  etag: string,
): ConditionOutcome {
  const headers = { ...requestHeaders };
  const ifMatch = headers['if-match'];
  if (typeof ifMatch === 'string') {
    if (!strongMatch(entityTags(ifMatch), etag)) return { kind: 'precondition-failed' };
    delete headers['if-match'];
    delete headers['if-unmodified-since'];
  }
  const ifNoneMatch = headers['if-none-match'];
  if (typeof ifNoneMatch === 'string') {
    if (weakMatch(entityTags(ifNoneMatch), etag)) return { kind: 'not-modified' };
    delete headers['if-none-match'];
    delete headers['if-modified-since'];
  }
  const ifRange = headers['if-range'];
  if (typeof ifRange === 'string' && ifRange.includes('"')) {
    if (!strongMatch([ifRange.trim()], etag)) delete headers['range'];
    delete headers['if-range'];
  }
  return { kind: 'send', headers };
}
