// Image references: the repository and tag parts of 'registry:port/name:tag',
// as the engine's commit and import endpoints take them separately.

/** 'a/b:tag' -> ['a/b', 'tag']; a ':' before the last '/' is a registry port. */
export function splitRef(ref: string): [string, string] {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
}
