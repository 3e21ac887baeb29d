import { describe, expect, it } from 'vitest';
import { igdAdviceLines, proxmoxSnippet, qemuCommandLine, type FirmwareFacts } from './snippets.js';

const base: FirmwareFacts = {
  machine: 'q35',
  target: 'DEBUG',
  secureBoot: false,
  codePath: '/a/OVMF_CODE.fd',
  varsPath: '/a/OVMF_VARS.fd',
  romPath: '/a/igd.rom',
  romFileName: 'igd.rom',
  description: 'd',
  tags: [],
};
const adln = {
  deviceId: '8086:46d4',
  platformName: 'Alder Lake-N (incl. Twin Lake)',
  graphicsVersion: '12',
  legacyMode: false,
  minQemu: '8.0',
  bdsm: 'bdsm64',
} as const;

describe('snippets', () => {
  it('q35 Proxmox: hostpci0 moved to pcie.0 at 02.0, and ROM mode lines for a chain ROM', () => {
    const text = proxmoxSnippet({ ...base, igd: adln, romMode: true }, 'adln-46d4-gop1066');
    const lines = text.split('\n');
    expect(lines.filter((l) => l.startsWith('hostpci0') || l.startsWith('args:'))).toEqual([
      'hostpci0: 0000:00:02.0,pcie=1,romfile=adln-46d4-gop1066/igd.rom',
      'args: -drive if=pflash,unit=0,format=raw,readonly=on,file=/a/OVMF_CODE.fd -drive if=pflash,unit=1,format=raw,file=/var/lib/vz/images/<vmid>/OVMF_VARS-adln-46d4-gop1066.fd -set device.hostpci0.bus=pcie.0 -set device.hostpci0.addr=02.0 -set device.hostpci0.x-igd-gms=0x2 -set device.hostpci0.x-igd-opregion=on',
    ]);
    expect(lines.slice(lines.indexOf('') + 1)).toEqual([
      "# ROM mode, the fastest path when the VM keeps Proxmox's own (stock) OVMF: the ROM alone carries",
      '# IgdAssignmentDxe, PlatformGopPolicyDxe and the GOP. Keep `bios: ovmf` and the efidisk, copy the ROM',
      '# as in step 1, and use these lines instead of the ones above (no pflash drives in args:):',
      '#   machine: q35',
      '#   hostpci0: 0000:00:02.0,pcie=1,romfile=adln-46d4-gop1066/igd.rom',
      '#   args: -set device.hostpci0.bus=pcie.0 -set device.hostpci0.addr=02.0 -set device.hostpci0.x-igd-gms=0x2 -set device.hostpci0.x-igd-opregion=on',
      '',
    ]);
    expect(proxmoxSnippet(base, 'x')).not.toContain('ROM mode');
  });

  it('states the generation facts: no legacy mode after graphics 9.5, the minimum QEMU, the LPC caveat on q35', () => {
    expect(igdAdviceLines({ ...base, igd: adln }).slice(0, 3)).toEqual([
      '# iGPU 8086:46d4: Alder Lake-N (incl. Twin Lake), graphics 12; needs QEMU 8.0 or newer (64-bit BDSM at 0xC0 for Gen11+; QEMU 7.2 lacks it).',
      '# QEMU legacy IGD mode does not cover this generation (only graphics 6 to 9.5): use q35 with the IGD on pcie.0 at 00:02.0 and x-igd-opregion=on.',
      '# q35 has its own ICH9 LPC bridge at 00:1f.0, so the host LPC IDs cannot be copied (x-igd-lpc is i440fx only).',
    ]);
  });

  it('QEMU command line: vfio-pci on the root bus at 02.0 for both machines', () => {
    const device = (machine: 'q35' | 'i440fx'): string | undefined =>
      /-device (vfio-pci,[^ ]+)/u.exec(qemuCommandLine({ ...base, machine }))?.[1];
    expect([device('q35'), device('i440fx')]).toEqual([
      'vfio-pci,host=0000:00:02.0,bus=pcie.0,addr=02.0,x-igd-opregion=on,x-igd-gms=0x2,romfile=/a/igd.rom',
      'vfio-pci,host=0000:00:02.0,bus=pci.0,addr=02.0,x-igd-opregion=on,x-igd-gms=0x2,romfile=/a/igd.rom',
    ]);
  });
});
