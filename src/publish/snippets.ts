// Ready-to-use configuration for the published firmware: a QEMU firmware interop
// descriptor (QEMU docs/interop/firmware.json, schema "Firmware", since 3.0), Proxmox VE
// VM config lines and a QEMU command line for the chosen machine type.

export type MachineType = 'q35' | 'i440fx';

/** The host iGPU the firmware is for (from --device and the device table), for per-generation advice. */
export interface IgdSnippetFacts {
  /** "8086:9b41". */
  readonly deviceId: string;
  readonly platformName: string;
  readonly graphicsVersion: string;
  /** QEMU's legacy IGD mode applies (graphics 6 to 9.5). */
  readonly legacyMode: boolean;
  readonly minQemu: string;
  readonly bdsm: 'bdsm32' | 'bdsm64' | 'none';
}

export interface FirmwareFacts {
  readonly machine: MachineType;
  readonly target: 'DEBUG' | 'RELEASE';
  readonly secureBoot: boolean;
  /** Absolute paths in the final artifact dir. */
  readonly codePath: string;
  readonly varsPath: string;
  readonly romPath: string;
  readonly romFileName: string;
  readonly description: string;
  /** Free-form tags (firmware.json: "management software shall explicitly ignore it"). */
  readonly tags: readonly string[];
  /** The iGPU, when known (--device); the snippets then state what QEMU supports for it. */
  readonly igd?: IgdSnippetFacts;
  /** The ROM carries IgdAssignmentDxe and PlatformGopPolicyDxe: it also works on a stock OVMF (ROM mode). */
  readonly romMode?: boolean;
}

/**
 * Comment lines with what QEMU's docs/igd-assign.txt and hw/vfio/igd.c say about this
 * generation: legacy mode, LPC bridge IDs, stolen memory, host-phys-bits, the QEMU version.
 */
export function igdAdviceLines(facts: FirmwareFacts): string[] {
  const igd = facts.igd;
  const lines: string[] = [];
  if (igd !== undefined) {
    lines.push(
      `# iGPU ${igd.deviceId}: ${igd.platformName}, graphics ${igd.graphicsVersion}; needs QEMU ${igd.minQemu} or newer` +
        (igd.bdsm === 'bdsm64'
          ? ' (64-bit BDSM at 0xC0 for Gen11+; QEMU 7.2 lacks it).'
          : igd.bdsm === 'none'
            ? ' (no BDSM: stolen memory is not programmed by firmware).'
            : '.'),
      igd.legacyMode
        ? "# QEMU legacy IGD mode works for this generation (graphics 6 to 9.5): i440fx, IGD at 00:02.0, a ROM; QEMU then also copies the host's LPC bridge IDs, which the GOP checks."
        : '# QEMU legacy IGD mode does not cover this generation (only graphics 6 to 9.5): use q35 with the IGD on pcie.0 at 00:02.0 and x-igd-opregion=on.',
    );
  }
  if (facts.machine === 'q35') {
    lines.push(
      '# q35 has its own ICH9 LPC bridge at 00:1f.0, so the host LPC IDs cannot be copied (x-igd-lpc is i440fx only).',
    );
  }
  lines.push(
    '# x-igd-gms=0x2 asks for 64 MiB stolen memory; drop it when the host BIOS DVMT pre-allocation already suits.',
    '# If QEMU prints vfio_container_dma_map(...) = -22, limit guest physical address bits to the IOMMU width:',
    '#   -cpu host,host-phys-bits=on,host-phys-bits-limit=$(( ((0x$(cat /sys/devices/virtual/iommu/dmar0/intel-iommu/cap) & 0x3F0000) >> 16) + 1 ))',
  );
  return lines;
}

/** The firmware.json `Firmware` object for a split OVMF (flash mapping: executable + NVRAM template). */
export function firmwareDescriptor(facts: FirmwareFacts): Record<string, unknown> {
  // An X64 SMM build cannot resume from S3 (OvmfPkg/README; its PlatformPei ASSERTs when QEMU
  // offers S3), so it does not claim acpi-s3 and management software keeps S3 off.
  const features: string[] = facts.secureBoot
    ? ['acpi-s4', 'requires-smm', 'secure-boot']
    : ['acpi-s3', 'acpi-s4'];
  // DEBUG OVMF writes its log to the isa-debugcon port 0x402 only when captured (firmware.json: verbose-dynamic).
  if (facts.target === 'DEBUG') features.push('verbose-dynamic');
  return {
    description: facts.description,
    'interface-types': ['uefi'],
    mapping: {
      device: 'flash',
      executable: { filename: facts.codePath, format: 'raw' },
      'nvram-template': { filename: facts.varsPath, format: 'raw' },
    },
    targets: [
      {
        architecture: 'x86_64',
        // SMM (secure boot) needs the ICH9 chipset: q35 only (firmware.json, @requires-smm).
        machines: facts.machine === 'q35' ? ['pc-q35-*'] : ['pc-i440fx-*'],
      },
    ],
    features,
    tags: [...facts.tags],
  };
}

/**
 * Proxmox VE lines for /etc/pve/qemu-server/<vmid>.conf. The custom OVMF is given as two
 * pflash drives in `args:` while `bios:` stays SeaBIOS (the default), because Proxmox
 * otherwise adds its own OVMF_CODE pflash (qemu-server config_to_command); `romfile=` is
 * relative to /usr/share/kvm. The q35 `-set` lines put the IGD at 00:02.0 with the OpRegion
 * and a stolen-memory size (QEMU docs/igd-assign.txt, "UPT mode"); i440fx uses Proxmox's
 * `legacy-igd=1` (QEMU legacy mode: i440fx, IGD at 00:02.0, VGA ROM).
 */
export function proxmoxSnippet(facts: FirmwareFacts, artifactName: string): string {
  const romRelative = `${artifactName}/${facts.romFileName}`;
  const pflash = [
    `-drive if=pflash,unit=0,format=raw,readonly=on,file=${facts.codePath}`,
    `-drive if=pflash,unit=1,format=raw,file=/var/lib/vz/images/<vmid>/OVMF_VARS-${artifactName}.fd`,
  ];
  const lines = [
    `# Proxmox VE: add to /etc/pve/qemu-server/<vmid>.conf (${facts.machine}, ${facts.target})`,
    '# 1. copy the ROM:  mkdir -p /usr/share/kvm/' +
      artifactName +
      ' && cp ' +
      facts.romPath +
      ' /usr/share/kvm/' +
      romRelative,
    `# 2. copy the NVRAM template per VM:  cp ${facts.varsPath} /var/lib/vz/images/<vmid>/OVMF_VARS-${artifactName}.fd`,
    '# 3. do not set `bios: ovmf` or an efidisk: the firmware comes from the pflash drives below.',
    ...igdAdviceLines(facts),
    'vga: none',
  ];
  if (facts.machine === 'q35') {
    lines.push(
      'machine: q35',
      `hostpci0: 0000:00:02.0,pcie=1,romfile=${romRelative}`,
      `args: ${[
        ...pflash,
        ...(facts.secureBoot
          ? [
              '-machine smm=on',
              '-global driver=cfi.pflash01,property=secure,value=on',
              '-global ICH9-LPC.disable_s3=1',
            ]
          : []),
        // qemu-server puts hostpci0 with pcie=1 on ich9-pcie-port-1 (PCI.pm, print_pcie_addr);
        // -set moves it to the root bus at 00:02.0, free on q35 with vga: none. Proxmox appends
        // args: after its own -device options, so the -set finds hostpci0.
        '-set device.hostpci0.bus=pcie.0',
        '-set device.hostpci0.addr=02.0',
        '-set device.hostpci0.x-igd-gms=0x2',
        '-set device.hostpci0.x-igd-opregion=on',
      ].join(' ')}`,
    );
  } else {
    lines.push(
      '# i440fx legacy IGD mode: the IGD must be the primary VGA at 00:02.0 (Proxmox legacy-igd=1).',
      `hostpci0: 0000:00:02.0,legacy-igd=1,romfile=${romRelative}`,
      `args: ${[...pflash, '-set device.hostpci0.x-igd-gms=0x2', '-set device.hostpci0.x-igd-opregion=on'].join(' ')}`,
    );
  }
  if (facts.romMode === true) {
    lines.push(
      '',
      "# ROM mode, the fastest path when the VM keeps Proxmox's own (stock) OVMF: the ROM alone carries",
      '# IgdAssignmentDxe, PlatformGopPolicyDxe and the GOP. Keep `bios: ovmf` and the efidisk, copy the ROM',
      '# as in step 1, and use these lines instead of the ones above (no pflash drives in args:):',
      `#   machine: ${facts.machine === 'q35' ? 'q35' : 'pc'}`,
      facts.machine === 'q35'
        ? `#   hostpci0: 0000:00:02.0,pcie=1,romfile=${romRelative}`
        : `#   hostpci0: 0000:00:02.0,legacy-igd=1,romfile=${romRelative}`,
      facts.machine === 'q35'
        ? '#   args: -set device.hostpci0.bus=pcie.0 -set device.hostpci0.addr=02.0 -set device.hostpci0.x-igd-gms=0x2 -set device.hostpci0.x-igd-opregion=on'
        : '#   args: -set device.hostpci0.x-igd-gms=0x2 -set device.hostpci0.x-igd-opregion=on',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A QEMU command line (POSIX shell) that boots this firmware with the IGD passed through. */
export function qemuCommandLine(facts: FirmwareFacts): string {
  const machine =
    facts.machine === 'q35' ? `q35,accel=kvm${facts.secureBoot ? ',smm=on' : ''}` : 'pc,accel=kvm';
  const bus = facts.machine === 'q35' ? 'pcie.0' : 'pci.0';
  const lines = [
    '#!/bin/sh',
    `# Boot with the IGD (00:02.0) passed through, ${facts.machine}${facts.machine === 'i440fx' ? ' (legacy IGD mode: IGD is the primary VGA at 00:02.0)' : ''}.`,
    '# The host IGD must be bound to vfio-pci first. VARS is a per-VM copy of the template.',
    ...igdAdviceLines(facts),
    'set -eu',
    'VARS="${VARS:-./OVMF_VARS.vm.fd}"',
    `[ -e "$VARS" ] || cp ${facts.varsPath} "$VARS"`,
    'exec qemu-system-x86_64 \\',
    `  -machine ${machine} -cpu host -m 4096 \\`,
    ...(facts.secureBoot
      ? ['  -global driver=cfi.pflash01,property=secure,value=on -global ICH9-LPC.disable_s3=1 \\']
      : []),
    `  -drive if=pflash,format=raw,unit=0,readonly=on,file=${facts.codePath} \\`,
    '  -drive if=pflash,format=raw,unit=1,file="$VARS" \\',
    '  -nodefaults -vga none \\',
    `  -device vfio-pci,host=0000:00:02.0,bus=${bus},addr=02.0,x-igd-opregion=on,x-igd-gms=0x2,romfile=${facts.romPath} \\`,
    ...(facts.target === 'DEBUG'
      ? [
          '  -chardev file,id=fwdebug,path=ovmf-debug.log -device isa-debugcon,iobase=0x402,chardev=fwdebug \\',
        ]
      : []),
    '  "$@"',
  ];
  if (facts.romMode === true) {
    lines.push(
      "# ROM mode: with a stock OVMF (e.g. /usr/share/OVMF/OVMF_CODE_4M.fd) instead of this artifact's,",
      `# the ROM (${facts.romPath}) alone brings IgdAssignmentDxe, PlatformGopPolicyDxe and the GOP.`,
    );
  }
  return `${lines.join('\n')}\n`;
}
