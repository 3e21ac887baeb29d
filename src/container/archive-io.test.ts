// fetchOutputs against an engine that answers an archive request with an empty body: a fault a
// real Podman showed under heavy load and that cannot be provoked on demand here, so this one
// stands in for the container's getArchive (the tar itself is a real one, made by tar-stream).
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { fetchOutputs } from './archive-io.js';
import { addEntry, ownedHeader, packFrom } from './tar.js';

const OWNER = { uid: 1000, gid: 1000 };
const CODE = new Uint8Array([0x4f, 0x56, 0x4d, 0x46, 1, 2, 3]);

/** A real tar of `output/` holding OVMF_CODE.fd, as Podman's archive endpoint sends it. */
function outputArchive(): Readable {
  return packFrom(async (pack) => {
    await addEntry(pack, ownedHeader('output', 'directory', 0o755, OWNER));
    await addEntry(pack, ownedHeader('output/OVMF_CODE.fd', 'file', 0o644, OWNER), CODE);
  }) as unknown as Readable;
}

/** A container whose first `emptyAnswers` archive requests get a 200 with no body. */
function container(emptyAnswers: number): { container: Docker.Container; calls: () => number } {
  let calls = 0;
  const standIn = {
    id: 'stand-in',
    getArchive: async () => {
      calls += 1;
      return calls <= emptyAnswers ? Readable.from([]) : outputArchive();
    },
  };
  return { container: standIn as unknown as Docker.Container, calls: () => calls };
}

describe('fetchOutputs: an empty archive body', () => {
  it('is asked again, and the third answer is used', async () => {
    const engine = container(2);
    const outputs = await fetchOutputs(engine.container, { outputs: ['/ovmf-build/output'] } as never);
    expect(engine.calls()).toBe(3);
    expect([...outputs.keys()]).toEqual(['output/OVMF_CODE.fd']);
    expect(outputs.get('output/OVMF_CODE.fd')).toEqual(CODE);
  });

  it('three empty answers are E_CONTAINER_OUTPUT_FAILED naming the output, never an empty result', async () => {
    const engine = container(3);
    await expect(
      fetchOutputs(engine.container, { outputs: ['/ovmf-build/output'] } as never),
    ).rejects.toMatchObject({
      code: 'E_CONTAINER_OUTPUT_FAILED',
      details: { path: '/ovmf-build/output', containerId: 'stand-in', attempts: 3 },
    });
    expect(engine.calls()).toBe(3);
  });

  it('a real archive of an empty directory is not retried: it is an empty output', async () => {
    let calls = 0;
    const standIn = {
      id: 'stand-in',
      getArchive: async () => {
        calls += 1;
        return packFrom(async (pack) => {
          await addEntry(pack, ownedHeader('output', 'directory', 0o755, OWNER));
        }) as unknown as Readable;
      },
    };
    const outputs = await fetchOutputs(
      standIn as unknown as Docker.Container,
      {
        outputs: ['/ovmf-build/output'],
      } as never,
    );
    expect(calls).toBe(1);
    expect(outputs.size).toBe(0);
  });
});
