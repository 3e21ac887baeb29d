import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirPerTest } from '../../test/temp-dir.js';
import { diesWithParent, findOnPath } from './exec-path.js';

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
});
