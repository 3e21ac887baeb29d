import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirPerTest } from '../../test/temp-dir.js';
import {
  DEFAULT_KEEP_WORKSPACES,
  keepWorkspacesOf,
  parseKeep,
  RECENT_USE_MS,
  WorkspaceUse,
  workspacesToRemove,
} from './workspace-retention.js';

const dir = tempDirPerTest('workspace-retention-');
const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 11, 5, 12);

describe('workspacesToRemove', () => {
  it('removes all but the `keep` most recently used, sparing any used within the hour', () => {
    const workspaces = [
      { ref: 'r:a', lastUsedMs: NOW - 5 * HOUR },
      { ref: 'r:b', lastUsedMs: NOW - 10 * 60_000 },
      { ref: 'r:c', lastUsedMs: NOW - 30 * 24 * HOUR },
      { ref: 'r:d', lastUsedMs: NOW - 59 * 60_000 },
      { ref: 'r:e', lastUsedMs: NOW - 2 * HOUR },
    ];
    // Newest first: b, d, e, a, c. keep 1 keeps b; d is within the hour; e, a, c go.
    expect(workspacesToRemove(workspaces, { keep: 1, now: NOW })).toEqual(['r:e', 'r:a', 'r:c']);
    expect(workspacesToRemove(workspaces, { keep: 3, now: NOW })).toEqual(['r:a', 'r:c']);
    expect(workspacesToRemove(workspaces, { keep: 5, now: NOW })).toEqual([]);
    // Exactly an hour old is no longer recent.
    expect(
      workspacesToRemove(
        [
          { ref: 'r:new', lastUsedMs: NOW },
          { ref: 'r:hour', lastUsedMs: NOW - RECENT_USE_MS },
        ],
        { keep: 1, now: NOW },
      ),
    ).toEqual(['r:hour']);
  });

  it('on a tie keeps the one listed first', () => {
    const tie = [
      { ref: 'r:first', lastUsedMs: NOW - 3 * HOUR },
      { ref: 'r:second', lastUsedMs: NOW - 3 * HOUR },
    ];
    expect(workspacesToRemove(tie, { keep: 1, now: NOW })).toEqual(['r:second']);
  });
});

describe('how many workspaces to keep', () => {
  it('OVMF_BUILD_KEEP_WORKSPACES: default 3, a positive whole number, anything else a usage error', () => {
    expect(DEFAULT_KEEP_WORKSPACES).toBe(3);
    expect(keepWorkspacesOf({})).toBe(3);
    expect(keepWorkspacesOf({ OVMF_BUILD_KEEP_WORKSPACES: '' })).toBe(3);
    expect(keepWorkspacesOf({ OVMF_BUILD_KEEP_WORKSPACES: '1' })).toBe(1);
    expect(keepWorkspacesOf({ OVMF_BUILD_KEEP_WORKSPACES: '12' })).toBe(12);
    for (const bad of ['0', '-1', '1.5', 'three', '07', ' 2', '10000']) {
      let thrown: unknown;
      try {
        keepWorkspacesOf({ OVMF_BUILD_KEEP_WORKSPACES: bad });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({
        code: 'E_USAGE',
        message: `OVMF_BUILD_KEEP_WORKSPACES must be a positive whole number of workspaces to keep, not ${JSON.stringify(bad)}`,
      });
    }
    expect(() => parseKeep('x', '--keep-workspaces')).toThrow(
      '--keep-workspaces must be a positive whole number of workspaces to keep, not "x"',
    );
  });
});

describe('WorkspaceUse', () => {
  const KEY_A = 'a'.repeat(24);
  const KEY_B = 'b'.repeat(24);
  const REPO = 'localhost/ovmf-build/edk2-workspace';

  it('records a use as the mtime of an empty file per repository and key', async () => {
    const use = new WorkspaceUse(path.join(dir(), 'use'));
    expect(await use.lastUsedMs(REPO, KEY_A)).toBeUndefined();
    const when = new Date(NOW - 2 * HOUR);
    await use.touch(REPO, KEY_A, when);
    expect(await use.lastUsedMs(REPO, KEY_A)).toBe(when.getTime());
    const file = path.join(dir(), 'use', 'localhost+ovmf-build+edk2-workspace', KEY_A);
    expect((await stat(file)).size).toBe(0);
    // Another repository's record of the same key is another file.
    expect(await use.lastUsedMs('localhost/other/edk2-workspace', KEY_A)).toBeUndefined();
    await use.touch(REPO, KEY_A, new Date(NOW));
    expect(await use.lastUsedMs(REPO, KEY_A)).toBe(NOW);
  });

  it('forgets the records of one repository whose keys are gone, and only those', async () => {
    const use = new WorkspaceUse(path.join(dir(), 'use'));
    await use.touch(REPO, KEY_A);
    await use.touch(REPO, KEY_B);
    await use.touch('localhost/other/edk2-workspace', KEY_B);
    await use.forgetAllBut(REPO, new Set([KEY_A]));
    expect(await readdir(path.join(dir(), 'use', 'localhost+ovmf-build+edk2-workspace'))).toEqual([KEY_A]);
    expect(await use.lastUsedMs('localhost/other/edk2-workspace', KEY_B)).toBeTypeOf('number');
    // A repository without records: nothing to do.
    await use.forgetAllBut('localhost/none/edk2-workspace', new Set());
  });

  it('refuses keys and repositories that would name other paths', async () => {
    const use = new WorkspaceUse(path.join(dir(), 'use'));
    await expect(use.touch(REPO, '../x')).rejects.toThrow(
      'Expected `key` to be a hex workspace key, got `../x`',
    );
    await expect(use.touch('../etc', KEY_A)).rejects.toThrow(
      'Expected `repository` to be an image repository path, got `../etc`',
    );
  });
});
