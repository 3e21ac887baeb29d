import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../test/corpus.js';
import { isRunning, pidsOf } from '../../test/proc-state.js';
import { tempDirPerTest } from '../../test/temp-dir.js';
import { diesWithParent, diesWithParentTree, findOnPath } from './exec-path.js';

const dir = tempDirPerTest('exec-path-');

describe('findOnPath and diesWithParent', () => {
  it('finds the first executable of the name on PATH, skipping empty entries and files that cannot run', async () => {
    const [a, b] = [path.join(dir(), 'a'), path.join(dir(), 'b')];
    await mkdir(a);
    await mkdir(b);
    await writeFile(path.join(a, 'tool'), '#!/bin/sh\n', { mode: 0o644 });
    await writeFile(path.join(b, 'tool'), '#!/bin/sh\n');
    await chmod(path.join(b, 'tool'), 0o755);
    const env = { PATH: ['', a, b].join(path.delimiter) };
    expect(findOnPath('tool', env)).toBe(path.join(b, 'tool'));
    expect(findOnPath('missing', env)).toBeUndefined();
    expect(findOnPath('tool', {})).toBeUndefined();
  });

  it('runs a program through setpriv --pdeathsig KILL when setpriv is on PATH, else as given', async () => {
    const bin = path.join(dir(), 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'setpriv'), '#!/bin/sh\n', { mode: 0o755 });
    expect(diesWithParent('/usr/bin/qemu', ['-S'], { PATH: bin })).toEqual({
      command: path.join(bin, 'setpriv'),
      args: ['--pdeathsig', 'KILL', '--', '/usr/bin/qemu', '-S'],
    });
    expect(diesWithParent('/usr/bin/qemu', ['-S'], { PATH: dir() })).toEqual({
      command: '/usr/bin/qemu',
      args: ['-S'],
    });
  });

  it('runs a program with children of its own in its own PID and mount namespaces, under setpriv', async () => {
    const bin = path.join(dir(), 'bin');
    await mkdir(bin);
    for (const name of ['setpriv', 'unshare'])
      await writeFile(path.join(bin, name), '#!/bin/sh\n', { mode: 0o755 });
    expect(diesWithParentTree('/usr/sbin/debootstrap', ['bookworm'], { PATH: bin })).toEqual({
      command: path.join(bin, 'setpriv'),
      args: [
        '--pdeathsig',
        'KILL',
        '--',
        path.join(bin, 'unshare'),
        '--pid',
        '--fork',
        '--kill-child',
        '--mount',
        '--propagation',
        'private',
        '--mount-proc',
        '--',
        '/usr/sbin/debootstrap',
        'bookworm',
      ],
    });
  });
});

/** Whether something is mounted on `dir` in the mount namespace of process `pid`. */
function mountedIn(pid: number, dir: string): boolean {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === dir);
}

describe.skipIf(process.getuid?.() !== 0)('diesWithParentTree, for real (root: namespaces)', () => {
  it('kill -9 of the caller kills the whole tree and drops its mounts; diesWithParent alone (the control) leaves the grandchild', async () => {
    const mountDir = path.join(dir(), 'mnt');
    await mkdir(mountDir);
    const parent = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'tree-orphan-child.ts'), mountDir],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const lengths = ['311', '312', '313', '314'];
    let sleeps = new Map<string, number>();
    try {
      await new Promise<void>((resolve) => parent.stdout.once('data', () => resolve()));
      const deadline = Date.now() + 10_000;
      while (sleeps.size < 4 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        sleeps = pidsOf('sleep', lengths);
      }
      expect([...sleeps.keys()].sort()).toEqual(lengths);
      // The tmpfs is in the tree's mount namespace only, never in ours.
      expect([mountedIn(sleeps.get('312') as number, mountDir), mountedIn(process.pid, mountDir)]).toEqual([
        true,
        false,
      ]);
      parent.kill('SIGKILL');
      const pid = (length: string): number => sleeps.get(length) as number;
      const gone = Date.now() + 10_000;
      while ((isRunning(pid('311')) || isRunning(pid('312'))) && Date.now() < gone) {
        await new Promise((r) => setTimeout(r, 50));
      }
      // The control's shell died of setpriv's signal, but not its children: both its sleeps
      // live on, as debootstrap's dpkg did after a kill -9 before.
      expect(lengths.map((length) => isRunning(pid(length)))).toEqual([false, false, true, true]);
    } finally {
      parent.kill('SIGKILL');
      // Should the tree ever mount in our namespace again, leave no tmpfs behind.
      if (mountedIn(process.pid, mountDir)) spawnSync('umount', [mountDir]);
      for (const pid of sleeps.values()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});
