// Which Cache-Control a file of the mirror tree gets, by its place in the tree (issue 13 item 2).
// Content-addressed and versioned files never change under their name (a published file is never
// overwritten), so a client may keep them for a year without asking again; the index, the page
// and latest.json change with every publish, so they get a short max-age. The nginx config
// (src/serve/nginx-conf.ts) writes the same rules as locations; keep the two in step.

/** A year: the longest max-age RFC 9111 clients are expected to honour. */
export const IMMUTABLE_MAX_AGE_S = 31_536_000;
/** How long a client may reuse the index, the page or latest.json without asking again. */
export const SHORT_MAX_AGE_S = 60;

export const IMMUTABLE_CACHE_CONTROL = `public, max-age=${IMMUTABLE_MAX_AGE_S}, immutable`;
export const SHORT_CACHE_CONTROL = `public, max-age=${SHORT_MAX_AGE_S}`;

/**
 * Paths (relative to the tree's root, '/'-separated, no leading '/') that never change:
 * `by-hash/sha256/<hex>`, `artifacts/<name>/<version>/<file>` (not `artifacts/<name>/latest.json`)
 * and `keys/<fingerprint>.pub`.
 */
const IMMUTABLE_PATH = /^(?:by-hash\/.+|artifacts\/[^/]+\/[^/]+\/.+|keys\/[^/]+\.pub)$/;

/** Whether a tree path is content-addressed or versioned (see IMMUTABLE_PATH). */
export function isImmutablePath(relativePath: string): boolean {
  return IMMUTABLE_PATH.test(relativePath);
}

/** The Cache-Control header for a file at this tree path. */
export function cacheControlFor(relativePath: string): string {
  return isImmutablePath(relativePath) ? IMMUTABLE_CACHE_CONTROL : SHORT_CACHE_CONTROL;
}
