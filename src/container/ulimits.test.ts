// Ulimit probing and clamping: the /proc/<pid>/limits layout of proc(5), and
// the clamp checked against this process's real hard limits as bash reports them.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ulimitsWithinHostLimits } from './podman-quirks.js';
import { hostHardLimits, parseHardLimits } from './ulimits.js';

// proc(5): name, soft, hard, units in fixed-width columns.
const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             4096                 unlimited            processes
Max open files            1024                 4096                 files
`;

describe('parseHardLimits', () => {
  it('reads the hard column of nofile and nproc, unlimited as Infinity', () => {
    expect(parseHardLimits(LIMITS)).toEqual(
      new Map([
        ['nofile', 4096],
        ['nproc', Infinity],
      ]),
    );
  });

  it('leaves out a row that is missing or unreadable', () => {
    expect(
      parseHardLimits('Max open files            1024                 lots                 files\n'),
    ).toEqual(new Map());
    expect(parseHardLimits('')).toEqual(new Map());
  });
});

describe('ulimitsWithinHostLimits', () => {
  it("clamps to this process's hard limits (as bash's ulimit -H reports them)", () => {
    const shell = (flag: string): number => {
      const text = execFileSync('bash', ['-c', `ulimit -H${flag}`], { encoding: 'utf8' }).trim();
      return text === 'unlimited' ? Infinity : Number(text);
    };
    const hard = { nofile: shell('n'), nproc: shell('u') };
    expect(hostHardLimits()).toEqual(new Map(Object.entries(hard)));
    const wanted = { nofile: 20_000, nproc: 32_768 };
    const expected = (name: 'nofile' | 'nproc'): number => Math.min(wanted[name], hard[name]);
    expect(ulimitsWithinHostLimits(wanted)).toEqual([
      { Name: 'nofile', Soft: expected('nofile'), Hard: expected('nofile') },
      { Name: 'nproc', Soft: expected('nproc'), Hard: expected('nproc') },
    ]);
    // Far above any host's hard limit: clamped, never passed through.
    expect(ulimitsWithinHostLimits({ nofile: Number.MAX_SAFE_INTEGER })).toEqual(
      Number.isFinite(hard.nofile)
        ? [{ Name: 'nofile', Soft: hard.nofile, Hard: hard.nofile }]
        : [{ Name: 'nofile', Soft: Number.MAX_SAFE_INTEGER, Hard: Number.MAX_SAFE_INTEGER }],
    );
    // A limit the host does not report (not in /proc/self/limits rows we read) is left out.
    expect(ulimitsWithinHostLimits({ memlock: 1024 })).toEqual([]);
  });
});
