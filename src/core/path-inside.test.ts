// The symlink rule the source cache and the container archiver share, case by case.
import { describe, expect, it } from 'vitest';
import { symlinkLeavesTree } from './path-inside.js';

describe('symlinkLeavesTree', () => {
  it('flags absolute targets and targets that climb above the root, and only those', () => {
    const cases: [string, string, boolean][] = [
      ['EmulatorPkg/Unix/Host/X11IncludeHack', '/opt/X11/include', true],
      ['a/b/link', '../../../etc', true],
      ['a/b/link', '../../..', true],
      ['link', '..', true],
      ['a/b/link', '../../x/../../y', true],
      ['a/b/link', '../../edksetup.sh', false],
      ['a/b/link', '../c', false],
      ['a/b/link', 'c/../d', false],
      ['link', '.', false],
      ['a/link', '..x', false],
    ];
    expect(cases.map(([link, target]) => symlinkLeavesTree(link, target))).toEqual(
      cases.map(([, , leaves]) => leaves),
    );
  });
});
