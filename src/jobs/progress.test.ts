import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from './progress.js';

function stream(isTTY: boolean): {
  stream: PassThrough & { isTTY?: boolean; columns?: number };
  text: () => string;
} {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  out.isTTY = isTTY;
  out.columns = 60;
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { stream: out, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('createProgress', () => {
  it('prints phases with elapsed time; build lines only on a TTY, on one status line', () => {
    let now = 0;
    const tty = stream(true);
    const progress = createProgress({ stream: tty.stream, now: () => now });
    progress({ type: 'phase', phase: 'build', message: 'building OVMF' });
    now = 1_500;
    progress({ type: 'progress', line: '[12] MdeModulePkg/Core/Dxe/DxeMain.inf' });
    now = 2_000;
    progress({ type: 'progress', line: '[13] OvmfPkg/PlatformDxe/Platform.inf' });
    now = 62_300;
    progress({ type: 'phase', phase: 'publish', message: 'publishing the artifact' });
    expect(tty.text()).toBe(
      '[   0.0s] build: building OVMF\n' +
        '[   1.5s]   [12] MdeModulePkg/Core/Dxe/DxeMain.inf' +
        '\r\u001b[2K[   2.0s]   [13] OvmfPkg/PlatformDxe/Platform.inf' +
        '\r\u001b[2K[  62.3s] publish: publishing the artifact\n',
    );
    const plain = stream(false);
    const quiet = createProgress({ stream: plain.stream, now: () => 0 });
    quiet({ type: 'progress', line: 'not shown' });
    quiet({ type: 'note', message: 'waiting' });
    expect(plain.text()).toBe('[   0.0s] note: waiting\n');
  });
});
