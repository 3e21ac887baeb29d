// IGD assignment in ROM mode (issue 9, item 5) and the machine wiring the snippets publish
// (item 4), for real in QEMU 7.2 under TCG.
// ROM mode: Debian's stock OVMF_CODE_4M.fd (the one Proxmox ships; corpus/ovmf) with our
// option ROM [IgdAssignmentDxe, PlatformGopPolicyDxe, GOP] as romfile= of a VGA device at
// 00:02.0. The helper drivers come from a real DEBUG build (EDK2 in a container, warm after
// build.int), the ROM from prepareRom exactly as the main job makes it. Stock OVMF prints no
// debug log, so QEMU's pci_cfg_write trace, the registers read back and pmemsave at ASLS are
// the oracle; our DEBUG drivers in the ROM print their own lines, extra evidence.
// Wiring: the q35/i440fx device placement of the published QEMU command line and of the
// Proxmox `-set` lines, with a VGA stand-in for vfio-pci, read back with query-pci.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEngine } from '../src/container/index.js';
import type { BuildOvmfResult } from '../src/edk2/build.js';
import { parseOpRegion } from '../src/formats/opregion.js';
import { classifyRomChain } from '../src/formats/rom-chain.js';
import type { IgdPlatform } from '../src/igd/device-table.js';
import { prepareRom } from '../src/jobs/rom.js';
import { proxmoxSnippet, qemuCommandLine, type FirmwareFacts } from '../src/publish/snippets.js';
import type { IgdCheckResult } from '../src/verify/igd-check.js';
import { QmpClient } from '../src/verify/qmp.js';
import { CORPUS_DIR, readCorpus } from './corpus.js';
import { testLogger } from './harness.js';
import {
  buildIgdTestFirmware,
  checkIgdCase,
  expectIgdCasePassed,
  IGD_CASES,
  IGD_GOP_FILE,
} from './igd-oracle.js';

const logger = testLogger();
const GOP_FILE = IGD_GOP_FILE;
const STOCK_CODE = path.join(CORPUS_DIR, 'ovmf/OVMF_CODE_4M.fd');
const STOCK_VARS = path.join(CORPUS_DIR, 'ovmf/OVMF_VARS_4M.fd');

const CASES = IGD_CASES;

let engine: ContainerEngine | undefined;
let work: string;
let build: BuildOvmfResult;
const results = new Map<
  string,
  { result: IgdCheckResult; opRegion: Uint8Array; platform: IgdPlatform; roles: readonly string[] }
>();

describe("IGD assignment, ROM mode (Debian's stock OVMF + our option ROM, QEMU TCG)", () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'ovmf-build-igd-rom-'));
    ({ engine, build } = await buildIgdTestFirmware(`igd-rom-int-${process.pid}`, logger));
    for (const testCase of CASES) {
      const rom = prepareRom({
        kind: 'generated',
        gop: readCorpus(GOP_FILE),
        helpers: build.helperDrivers,
        deviceId: Number.parseInt(testCase.deviceId, 16),
      });
      const romPath = path.join(work, `igd-${testCase.deviceId}.rom`);
      await writeFile(romPath, rom.bytes);
      const checked = await checkIgdCase(
        testCase,
        { codePath: STOCK_CODE, varsPath: STOCK_VARS, romPath },
        { tmpDir: work, logger },
      );
      const { result } = checked;
      results.set(testCase.name, { ...checked, roles: rom.roles });
      console.log(
        `igd rom mode ${testCase.name}: ASLS after ${String(result.timeToAslsMs)} ms, boot manager after ` +
          `${String(result.timeToBootManagerMs)} ms, QEMU ${result.durationMs} ms\n  ${result.traceLines.join('\n  ')}`,
      );
    }
  }, 1_800_000); // may wait for the run's clean build of the default workspace (test/harness.ts)

  afterAll(async () => {
    await engine?.[Symbol.asyncDispose]();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it.each(CASES.map((testCase) => [testCase.name, testCase] as const))('%s', (name, testCase) => {
    const entry = results.get(name);
    if (entry === undefined) throw new Error(`no result for ${name}`);
    const { result, opRegion, platform, roles } = entry;
    expect(roles).toEqual(['igd-assignment', 'gop-policy', 'gop']);
    const asls = expectIgdCasePassed(result, testCase, {
      mode: 'rom',
      platformKey: platform.key,
      opRegionSizeInBytes: opRegion.length,
    });

    // Stock OVMF itself prints nothing on 0x402; when our DEBUG drivers in the ROM print, their
    // lines must say the same as the trace.
    // (The C prints hex digits in either case; compare lower case.)
    const debugLines = result.debugLines.map((line) => line.toLowerCase());
    if (debugLines.length > 0) {
      expect(debugLines).toContain(
        `igdassignmentdxe: opregion ${opRegion.length} bytes at 0x${asls.toString(16)}, asls written`,
      );
      const vbt = parseOpRegion(opRegion).vbt;
      expect(
        debugLines.some((line) =>
          line.startsWith(
            `ovmfgoppkg: vbt from opregion (${vbt?.source === 'rvda' ? 'rvda' : 'mailbox 4'}), ${String(vbt?.sizeInBytes)} bytes`,
          ),
        ),
      ).toBe(true);
    }
  });

  it('the ROM chain inspect sees is the one the build exported', () => {
    const rom = prepareRom({
      kind: 'generated',
      gop: readCorpus(GOP_FILE),
      helpers: build.helperDrivers,
      deviceId: 0x9b41,
    });
    const chain = classifyRomChain(rom.bytes);
    expect(chain.images.map((i) => [i.role, i.moduleName])).toEqual([
      ['igd-assignment', 'IgdAssignmentDxe'],
      ['gop-policy', 'PlatformGopPolicyDxe'],
      ['gop', null],
    ]);
  });
});

/** Starts QEMU stopped (-S) with a QMP socket and returns HMP `info qtree`; QEMU is killed after. */
async function qtree(args: readonly string[]): Promise<string> {
  const socketPath = path.join(
    os.tmpdir(),
    `ovmf-build-wiring-${process.pid}-${Math.random().toString(16).slice(2)}.sock`,
  );
  const qemu = spawn(
    'qemu-system-x86_64',
    [...args, '-nodefaults', '-display', 'none', '-S', '-qmp', `unix:${socketPath},server=on,wait=off`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  let exited: string | undefined;
  qemu.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  qemu.on('exit', (code) => (exited = `QEMU exited with ${String(code)}: ${stderr}`));
  try {
    await using qmp = await QmpClient.connect({ socketPath, giveUp: () => exited });
    return await qmp.hmp('info qtree');
  } finally {
    qemu.kill('SIGKILL');
    await rm(socketPath, { force: true });
  }
}

/**
 * `<bus> <addr>` of the device with this id in `info qtree` ("pcie.0 02.0"): the nearest
 * `bus:` line above it with less indentation, and its `addr = ` property. Bus numbers are of
 * no use before the firmware numbers the bridges, so the tree is read, not `info pci`.
 */
function placement(tree: string, id: string): string | null {
  const lines = tree.split('\n');
  const at = lines.findIndex((line) => line.trim().startsWith(`dev: VGA, id "${id}"`));
  if (at < 0) return null;
  const indent = (line: string): number => line.length - line.trimStart().length;
  const devIndent = indent(lines[at] as string);
  let bus: string | undefined;
  for (let i = at - 1; i >= 0 && bus === undefined; i--) {
    const line = lines[i] as string;
    if (indent(line) < devIndent && line.trim().startsWith('bus: ')) bus = line.trim().slice(5);
  }
  let addr: string | undefined;
  for (let i = at + 1; i < lines.length && indent(lines[i] as string) > devIndent; i++) {
    addr ??= /^addr = ([0-9a-f]{2}\.[0-7])$/u.exec((lines[i] as string).trim())?.[1];
  }
  return `${bus ?? '?'} ${addr ?? '?'}`;
}

const facts = (machine: 'q35' | 'i440fx'): FirmwareFacts => ({
  machine,
  target: 'DEBUG',
  secureBoot: false,
  codePath: '/opt/fw/OVMF_CODE.fd',
  varsPath: '/opt/fw/OVMF_VARS.fd',
  romPath: '/opt/fw/igd.rom',
  romFileName: 'igd.rom',
  description: 'test',
  tags: [],
});

/** The published vfio-pci device, with a VGA stand-in for the host iGPU and vfio's own options dropped. */
function standIn(published: string, id: string): string {
  const device = /-device (vfio-pci,\S+)/u.exec(published)?.[1];
  if (device === undefined) throw new Error('no vfio-pci device in the published command line');
  const kept = device
    .split(',')
    .filter((part) => /^(bus|addr)=/u.test(part))
    .join(',');
  return `VGA,id=${id},${kept}`;
}

describe('the published wiring puts the iGPU at 00:02.0 on the root bus (QEMU 7.2, VGA stand-in, info qtree)', () => {
  it('QEMU command line, q35: pcie.0 at 02.0', async () => {
    const device = standIn(qemuCommandLine(facts('q35')), 'igd');
    expect(device).toBe('VGA,id=igd,bus=pcie.0,addr=02.0');
    expect(placement(await qtree(['-machine', 'q35,accel=tcg', '-device', device]), 'igd')).toBe(
      'pcie.0 02.0',
    );
  });

  it('QEMU command line, i440fx: pci.0 at 02.0', async () => {
    const device = standIn(qemuCommandLine(facts('i440fx')), 'igd');
    expect(device).toBe('VGA,id=igd,bus=pci.0,addr=02.0');
    expect(placement(await qtree(['-machine', 'pc,accel=tcg', '-device', device]), 'igd')).toBe('pci.0 02.0');
  });

  it("Proxmox q35: the args: -set lines move hostpci0 from qemu-server's root port to pcie.0 at 02.0", async () => {
    // What qemu-server emits for `hostpci0: ...,pcie=1` on q35 (PCI.pm print_pcie_addr: bus
    // ich9-pcie-port-1, addr 0; the port itself comes from pve-q35-4.0.cfg at 1c.0), then our
    // args: line, which Proxmox appends at the end of the command line.
    const proxmox = [
      '-machine',
      'q35,accel=tcg',
      '-device',
      'pcie-root-port,id=ich9-pcie-port-1,bus=pcie.0,addr=1c.0,port=1,chassis=1',
      '-device',
      'VGA,id=hostpci0,bus=ich9-pcie-port-1,addr=0x0',
    ];
    const argsLine = /^args: (.*)$/mu.exec(proxmoxSnippet(facts('q35'), 'test'))?.[1] ?? '';
    const sets = [...argsLine.matchAll(/-set (device\.hostpci0\.(?:bus|addr)=\S+)/gu)].map(
      (m) => m[1] as string,
    );
    expect(sets).toEqual(['device.hostpci0.bus=pcie.0', 'device.hostpci0.addr=02.0']);
    // Without them (the snippet before issue 9): slot 0 behind the root port, not 00:02.0.
    expect(placement(await qtree(proxmox), 'hostpci0')).toBe('ich9-pcie-port-1 00.0');
    expect(placement(await qtree([...proxmox, ...sets.flatMap((s) => ['-set', s])]), 'hostpci0')).toBe(
      'pcie.0 02.0',
    );
  });
});
