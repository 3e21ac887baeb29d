// "Does this symlink leave the tree?": asked when the EDK2 source cache drops escaping links
// and when the container layer refuses to archive one. One copy, so both agree on the rule.
import path from 'node:path';

/**
 * True when a symlink at `linkPath` (relative to the tree root, `/`-separated) pointing to
 * `target` resolves outside the tree: an absolute target, or one whose `..` steps climb
 * above the root.
 */
export function symlinkLeavesTree(linkPath: string, target: string): boolean {
  if (path.posix.isAbsolute(target)) return true;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(linkPath), target));
  return resolved === '..' || resolved.startsWith('../');
}
