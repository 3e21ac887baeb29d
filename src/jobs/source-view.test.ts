import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { safeSourceView, sameInode } from './source-view.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ovmf-view-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('safeSourceView', () => {
  it('hard-links files, keeps inner symlinks and leaves out links that leave the tree', async () => {
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'OvmfPkg', 'Include'), { recursive: true });
    await mkdir(path.join(src, 'EmulatorPkg', 'Unix', 'Host'), { recursive: true });
    await writeFile(path.join(src, 'OvmfPkg', 'OvmfPkgX64.dsc'), 'dsc\r\n');
    await symlink('../OvmfPkgX64.dsc', path.join(src, 'OvmfPkg', 'Include', 'inner'));
    await symlink('/opt/X11/include', path.join(src, 'EmulatorPkg', 'Unix', 'Host', 'X11IncludeHack'));
    await symlink('../../../..', path.join(src, 'EmulatorPkg', 'Unix', 'Host', 'up'));
    const source = { dir: src, digest: 'sha256-abc', description: 'test', details: {} };
    const view = await safeSourceView(source, path.join(dir, 'views'));
    expect(view.created).toBe(true);
    expect(view.skipped).toEqual(['EmulatorPkg/Unix/Host/X11IncludeHack', 'EmulatorPkg/Unix/Host/up']);
    expect(view.source).toEqual({ ...source, dir: path.join(dir, 'views', 'sha256-abc', 'src') });
    const viewDsc = path.join(view.source.dir, 'OvmfPkg', 'OvmfPkgX64.dsc');
    expect(await readFile(viewDsc, 'utf8')).toBe('dsc\r\n');
    expect(await sameInode(viewDsc, path.join(src, 'OvmfPkg', 'OvmfPkgX64.dsc'))).toBe(true);
    expect(await readlink(path.join(view.source.dir, 'OvmfPkg', 'Include', 'inner'))).toBe(
      '../OvmfPkgX64.dsc',
    );
    expect(await readdir(path.join(view.source.dir, 'EmulatorPkg', 'Unix', 'Host'))).toEqual([]);
    expect((await lstat(path.join(view.source.dir, 'OvmfPkg'))).isDirectory()).toBe(true);
    const again = await safeSourceView(source, path.join(dir, 'views'));
    expect(again).toEqual({ ...view, created: false });
    expect(await readdir(path.join(dir, 'views'))).toEqual(['sha256-abc']);
  });
});
