// Adapter between the job and the EDK2 helper's buildOvmf: runs the build and puts the
// outputs in a private temp dir for the QEMU boot check.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ContainerEngine } from '../container/index.js';
import { OvmfBuildError } from '../core/errors.js';
import type { BuildRequest } from './backend.js';

export interface Edk2BuildOutput {
  readonly code: Uint8Array;
  readonly vars: Uint8Array;
  readonly codePath: string;
  readonly varsPath: string;
  readonly sourceDigest: string;
  readonly builderImageId: string;
  readonly durationMs: number;
  readonly facts: Readonly<Record<string, unknown>>;
  /** Removes the temp dir. */
  readonly cleanup: () => Promise<void>;
}

export async function runEdk2Build(
  _engine: ContainerEngine,
  _request: BuildRequest,
): Promise<Edk2BuildOutput> {
  throw new OvmfBuildError('E_NOT_IMPLEMENTED', 'the EDK2 build (buildOvmf) has not landed yet');
}

/** Writes the outputs where QEMU can read them. */
export async function stageOutputs(
  code: Uint8Array,
  vars: Uint8Array,
): Promise<{ dir: string; codePath: string; varsPath: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ovmf-build-out-'));
  const codePath = path.join(dir, 'OVMF_CODE.fd');
  const varsPath = path.join(dir, 'OVMF_VARS.fd');
  await writeFile(codePath, code);
  await writeFile(varsPath, vars);
  return { dir, codePath, varsPath };
}

export async function removeStaged(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
