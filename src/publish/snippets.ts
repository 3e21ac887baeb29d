// Ready-to-use configuration for the published firmware: a QEMU firmware interop
// descriptor (QEMU docs/interop/firmware.json, schema "Firmware", since 3.0), Proxmox VE
// VM config lines and a QEMU command line for the chosen machine type.

export type MachineType = 'q35' | 'i440fx';

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
        '-set device.hostpci0.addr=02.0',
        '-set device.hostpci0.x-igd-gms=0x2',
        '-set device.hostpci0.x-igd-opregion=on',
      ].join(' ')}`,
    );
  } else {
    lines.push(
      '# i440fx legacy IGD mode: the IGD must be the primary VGA at 00:02.0 (Proxmox legacy-igd=1).',
      `hostpci0: 0000:00:02.0,legacy-igd=1,romfile=${romRelative}`,
      `args: ${[...pflash, '-set device.hostpci0.x-igd-opregion=on'].join(' ')}`,
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
  return `${lines.join('\n')}\n`;
}
