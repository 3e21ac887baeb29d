// `ovmf-build cleanup` through the real CLI entry against real Podman.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, testEngine, testLogger } from '../../test/harness.js';
import { main } from '../cli/main.js';
import { pruneWorkspaces, WorkspaceUse } from '../edk2/workspace-retention.js';
import type { ContainerEngine } from './index.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const logger = testLogger();
let engine: ContainerEngine;
let docker: Docker;
let imageRef: string;

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await main({
    argv,
    stdout,
    stderr,
    env: { DOCKER_HOST: `unix://${engine.info.socketPath}`, PATH: process.env['PATH'] ?? '' },
    cwd: repoRoot,
    signal: new AbortController().signal,
  });
  return { code, stdout: out, stderr: err };
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid ?? 0;
}

async function orphanContainer(jobId: string, ownerPid: number, ownerHost = os.hostname()): Promise<string> {
  const container = await docker.createContainer({
    Image: imageRef,
    Cmd: ['sleep', '300'],
    Labels: {
      'ovmf-build.job': jobId,
      'ovmf-build.purpose': 'cleanup-test',
      'ovmf-build.owner-pid': String(ownerPid),
      'ovmf-build.owner-host': ownerHost,
      'ovmf-build.created': new Date().toISOString(),
    },
    HostConfig: { NetworkMode: 'none' },
  });
  return container.id;
}

async function exists(id: string): Promise<boolean> {
  return docker
    .getContainer(id)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

beforeAll(async () => {
  engine = await testEngine(logger);
  docker = new Docker({ socketPath: engine.info.socketPath });
  imageRef = harness().builderImage.ref;
});

afterAll(async () => {
  await engine?.[Symbol.asyncDispose]();
});

describe('ovmf-build cleanup', () => {
  it('removes containers of dead owners on this host and keeps live and foreign ones; --all removes those too', async () => {
    const tag = randomBytes(4).toString('hex');
    // One job id for all three, so `--all --job` cannot touch other runs' containers on this machine.
    const job = `cleanup-test-${tag}`;
    const live = await orphanContainer(job, process.pid);
    const foreign = await orphanContainer(job, await deadPid(), 'another-host.invalid');
    const mine = [live, foreign];
    try {
      // Every build stage of the suite's other files sweeps dead owners' containers as well
      // (stage-build.ts), and one of them can remove a dead container before `cleanup` runs (CI
      // rehearsal, 4 December 2026). Then `cleanup` has proved nothing; try again with a new dead
      // container, at most three times, until `cleanup` itself removed one.
      let removedByCleanup = false;
      for (let attempt = 0; attempt < 3 && !removedByCleanup; attempt += 1) {
        const dead = await orphanContainer(job, await deadPid());
        mine.push(dead);
        const first = await cli(['cleanup', '--json']);
        expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
        const removed = (JSON.parse(first.stdout) as { removed: string[] }).removed;
        removedByCleanup = removed.includes(dead);
        expect(removed.filter((id) => mine.includes(id))).toEqual(removedByCleanup ? [dead] : []);
        expect([await exists(dead), await exists(live), await exists(foreign)]).toEqual([false, true, true]);
      }
      expect(removedByCleanup).toBe(true);

      const all = await cli(['cleanup', '--all', '--job', job]);
      expect(all.code).toBe(0);
      expect(all.stdout.trimEnd().split(' ').slice(3).sort()).toEqual(
        [live.slice(0, 12), foreign.slice(0, 12)].sort(),
      );
      expect(all.stdout).toMatch(/^removed 2 container\(s\): /);
      expect(await cli(['cleanup', '--job', job])).toEqual({
        code: 0,
        stdout: 'no leftover containers\n',
        stderr: '',
      });
      expect([await exists(live), await exists(foreign)]).toEqual([false, false]);
    } finally {
      for (const id of mine) {
        await docker
          .getContainer(id)
          .remove({ force: true })
          .catch(() => undefined);
      }
    }
  });

  it('removes a replaced (untagged) workspace image only once no container uses it; tagged ones only when asked', async () => {
    const bare = (id: string | null | undefined): string | undefined => id?.replace(/^sha256:/, '');
    // Another file's plain `ovmf-build cleanup` (test/queue-rig.ts, after its workers) may run
    // beside this one and rightly prune any replaced image no container uses (a CI rehearsal of
    // a03c526 failed so). So the first commit is in use from before its tag moves until this
    // test's own cleanup has kept it; only the short window from that container's removal to
    // the next cleanup is open, and a run whose image went there is tried again with a new pair
    // (at most 3), until this test's cleanup is the one that removed it.
    for (let attempt = 1; ; attempt++) {
      const tag = randomBytes(4).toString('hex');
      const repository = `localhost/ovmf-build/cleanup-test-${tag}`;
      const ref = `${repository}:ws`;
      const commitRun = (marker: string) =>
        engine.run({
          image: imageRef,
          cmd: ['sh', '-c', `echo ${marker} > /edk2/marker`],
          jobId: `cleanup-test-${tag}`,
          purpose: 'cleanup-test',
          commitAs: ref,
          logger,
        });
      const first = bare((await commitRun('one')).committedImageId);
      expect(first).toMatch(/^[0-9a-f]{64}$/);
      const user = await docker.createContainer({ Image: `sha256:${first}`, Cmd: ['true'] });
      let removedByUs: boolean;
      let second: string | undefined;
      try {
        second = bare((await commitRun('two')).committedImageId);
        expect(second).toMatch(/^[0-9a-f]{64}$/);
        expect(second).not.toBe(first);
        // The tag moved: the first commit is now untagged but still carries the build labels.
        const replaced = (await docker.getImage(`sha256:${first}`).inspect()) as {
          RepoTags?: string[];
          Config: { Labels: Record<string, string> | null };
        };
        expect(replaced.RepoTags ?? []).toEqual([]);
        expect(replaced.Config.Labels?.['ovmf-build.job']).toBe(`cleanup-test-${tag}`);
        expect(await engine.removeImage(first as string, { force: false })).toBe('in-use');
        const kept = await cli(['cleanup', '--json']);
        expect(kept.code).toBe(0);
        const keptImages = (JSON.parse(kept.stdout) as { images: { removed: string[]; inUse: string[] } })
          .images;
        expect(keptImages.inUse.map(bare)).toContain(first);
        expect(keptImages.removed.map(bare)).not.toContain(first);
        expect(bare(await engine.imageId(first as string))).toBe(first);
      } finally {
        await user.remove({ force: true });
      }
      try {
        const pruned = await cli(['cleanup', '--json']);
        expect(pruned.code).toBe(0);
        const images = (JSON.parse(pruned.stdout) as { images: { removed: string[]; inUse: string[] } })
          .images;
        removedByUs = images.removed.map(bare).includes(first);
        expect(await engine.imageId(first as string)).toBeNull();
        if (removedByUs || attempt === 3) {
          expect(images.removed.map(bare)).toContain(first);
          // A tagged image survives a plain cleanup and goes only when its repository is named.
          expect(bare(await engine.imageId(ref))).toBe(second);
          expect(await engine.pruneImages({ repositories: [repository] })).toEqual({
            removed: [ref],
            inUse: [],
          });
          expect(await engine.imageId(ref)).toBeNull();
          expect(await engine.removeImage(ref, { force: false })).toBe('absent');
        }
      } finally {
        await engine.removeImage(ref);
        await engine.removeImage(first as string);
      }
      if (removedByUs) return;
    }
  });

  it('prints usage for --help and refuses unknown options with exit code 2', async () => {
    const help = await cli(['cleanup', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.split('\n')[0]).toBe(
      'usage: ovmf-build cleanup [--all] [--job <id>] [--workspaces | --keep-workspaces N] [--json]',
    );
    for (const argv of [
      ['cleanup', '--keep-workspaces', '0'],
      ['cleanup', '--keep-workspaces', 'all'],
    ]) {
      const refused = await cli(argv);
      expect([refused.code, refused.stderr]).toEqual([
        2,
        `ovmf-build: --keep-workspaces must be a positive whole number of workspaces to keep, not ${JSON.stringify(argv[2])}; run \`ovmf-build cleanup --help\` [E_USAGE]\n`,
      ]);
    }
    const withAll = await cli(['cleanup', '--keep-workspaces', '2', '--workspaces']);
    expect(withAll.code).toBe(2);
    expect(withAll.stderr).toMatch(/^ovmf-build: --keep-workspaces goes with neither --workspaces/);
    const both = await cli(['cleanup', '--job', 'x', '--workspaces']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^ovmf-build: --workspaces removes images, which belong to no job/);
    const bad = await cli(['cleanup', '--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^ovmf-build: Unknown option '--bogus'/);
  });
});

describe('warm workspaces beyond the ones kept (edk2/workspace-retention.ts)', () => {
  it('go by least recent use, except one used within the hour; tags that name no key stay', async () => {
    const repository = `localhost/ovmf-build-test-${randomBytes(4).toString('hex')}/edk2-workspace`;
    const keys = ['1', '2', '3', '4'].map((digit) => digit.repeat(24));
    const ages = [4 * 3_600_000, 3 * 3_600_000, 30 * 60_000, 10 * 60_000];
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-retention-'));
    const use = new WorkspaceUse(path.join(dir, 'use'));
    const now = Date.now();
    try {
      for (const [i, key] of keys.entries()) {
        await docker.getImage(imageRef).tag({ repo: repository, tag: key });
        await use.touch(repository, key, new Date(now - (ages[i] as number)));
      }
      await docker.getImage(imageRef).tag({ repo: repository, tag: 'manual' });
      const result = await pruneWorkspaces(engine, repository, { use, keep: 1 }, logger, now);
      // Newest first: 4 (kept), 3 (30 min: within the hour), then 2 and 1 go.
      expect(result.removed).toEqual([`${repository}:${keys[1]}`, `${repository}:${keys[0]}`]);
      expect(result.inUse).toEqual([]);
      expect([...result.kept].sort()).toEqual([`${repository}:${keys[2]}`, `${repository}:${keys[3]}`]);
      const left = (await engine.taggedImages(repository)).map((image) => image.ref).sort();
      expect(left).toEqual([`${repository}:${keys[2]}`, `${repository}:${keys[3]}`, `${repository}:manual`]);
      expect(await Promise.all(keys.map((key) => use.lastUsedMs(repository, key)))).toEqual([
        undefined,
        undefined,
        now - (ages[2] as number),
        now - (ages[3] as number),
      ]);
      // Only tags went: the image they named is still there.
      expect(await engine.imageId(imageRef)).not.toBeNull();
      // keep 2 with the same records: 3 is kept by count now, nothing else to remove.
      expect((await pruneWorkspaces(engine, repository, { use, keep: 2 }, logger, now)).removed).toEqual([]);
    } finally {
      for (const image of await engine.taggedImages(repository))
        await engine.removeImage(image.ref, { force: false });
      await rm(dir, { recursive: true, force: true });
    }
  });
});
