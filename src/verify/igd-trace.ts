// The oracle of the IGD check: QEMU's own trace of PCI config writes (-trace pci_cfg_write).
// It says whether and where the firmware wrote ASLS (0xFC) and BDSM (0x5C, or 0xC0/0xC4) of the
// device at 00:02.0, whatever firmware or option ROM did it and whether it prints a DEBUG log.
// Pure: trace text in, writes and register values out.

/** IGD config registers (QEMU docs/igd-assign.txt). */
export const IGD_REGISTERS = { bdsm32: 0x5c, bdsm64: 0xc0, asls: 0xfc } as const;
/** Where QEMU's IGD assignment puts the iGPU, and so where the firmware looks for it. */
export const IGD_SLOT = { bus: 0, slot: 2, func: 0 } as const;
/** ASLS and BDSM are 32-bit addresses: what they point at must end below 4 GiB. */
export const FOUR_GIB = 0x1_0000_0000;
/** BDSM's alignment, and the unit of the stolen size (GMS). */
export const MiB = 1_048_576;

/** A write to 00:02.0's ASLS, for timing how long the firmware took to set up the OpRegion. */
export const ASLS_WRITE_RE = /^(?:\d+@\d+\.\d+:)?pci_cfg_write \S+ 00:02\.0 @0xf[c-f] /mu;

/** One `pci_cfg_write` trace event (QEMU hw/pci/trace-events). */
export interface PciCfgWrite {
  readonly device: string;
  readonly bus: number;
  readonly slot: number;
  readonly func: number;
  readonly offset: number;
  /** The value as traced; the access width is not in the trace. */
  readonly value: number;
  /** The trace line as QEMU wrote it. */
  readonly text: string;
}

/**
 * QEMU 7.2 hw/pci/trace-events: `pci_cfg_write(const char *dev, uint32_t bus, uint32_t slot,
 * uint32_t func, unsigned offs, unsigned val) "%s %02x:%02x.%x @0x%x <- 0x%x"`, with the log
 * backend's optional `<pid>@<seconds>.<micros>:` prefix (-msg timestamp=on).
 */
const PCI_CFG_WRITE_RE =
  /^(?:\d+@\d+\.\d+:)?pci_cfg_write (\S+) ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) @0x([0-9a-f]{1,3}) <- 0x([0-9a-f]{1,8})$/u;

/** Every `pci_cfg_write` event of a trace log; other lines (other trace events) are skipped. */
export function parsePciCfgWrites(text: string): PciCfgWrite[] {
  const writes: PciCfgWrite[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const match = PCI_CFG_WRITE_RE.exec(line);
    if (match === null) continue;
    const [, device, bus, slot, func, offset, value] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const parsedOffset = Number.parseInt(offset, 16);
    if (parsedOffset > 0xfff) continue;
    writes.push({
      device,
      bus: Number.parseInt(bus, 16),
      slot: Number.parseInt(slot, 16),
      func: Number.parseInt(func, 16),
      offset: parsedOffset,
      value: Number.parseInt(value, 16) >>> 0,
      text: line,
    });
  }
  return writes;
}

/** The trace lines of 00:02.0's ASLS and BDSM registers, in trace order. */
export function igdTraceLines(writes: readonly PciCfgWrite[]): string[] {
  return writes
    .filter(
      (write) =>
        isIgdSlot(write) &&
        (inRange(write, IGD_REGISTERS.asls, 4) ||
          inRange(write, IGD_REGISTERS.bdsm32, 4) ||
          inRange(write, IGD_REGISTERS.bdsm64, 8)),
    )
    .map((write) => write.text);
}

const inRange = (write: PciCfgWrite, from: number, length: number): boolean =>
  write.offset >= from && write.offset < from + length;
const isIgdSlot = (write: PciCfgWrite): boolean =>
  write.bus === IGD_SLOT.bus && write.slot === IGD_SLOT.slot && write.func === IGD_SLOT.func;

/** Writes to ASLS (0xFC-0xFF), BDSM (0x5C-0x5F) and BDSM64 (0xC0-0xC7) of 00:02.0. */
export function igdRegisterWrites(writes: readonly PciCfgWrite[]): {
  readonly asls: PciCfgWrite[];
  readonly bdsm32: PciCfgWrite[];
  readonly bdsm64: PciCfgWrite[];
} {
  const igd = writes.filter(isIgdSlot);
  return {
    asls: igd.filter((write) => inRange(write, IGD_REGISTERS.asls, 4)),
    bdsm32: igd.filter((write) => inRange(write, IGD_REGISTERS.bdsm32, 4)),
    bdsm64: igd.filter((write) => inRange(write, IGD_REGISTERS.bdsm64, 8)),
  };
}

/**
 * The value of a register as the trace leaves it, assuming dword writes at dword offsets (what
 * PciIo.Pci.Write with EfiPciIoWidthUint32 produces); a byte or word write is placed at its
 * offset. Registers start at 0 (QEMU's VGA config space is zero there).
 */
export function tracedValue(writes: readonly PciCfgWrite[], base: number, sizeInBytes: 4 | 8): number {
  const bytes = new Uint8Array(sizeInBytes);
  for (const write of writes) {
    const width = (write.offset & 3) === 0 ? 4 : (write.offset & 1) === 0 ? 2 : 1;
    for (let index = 0; index < width; index++) {
      const at = write.offset - base + index;
      if (at >= 0 && at < sizeInBytes) bytes[at] = (write.value >>> (8 * index)) & 0xff;
    }
  }
  const dv = new DataView(bytes.buffer);
  return sizeInBytes === 4 ? dv.getUint32(0, true) : dv.getUint32(0, true) + dv.getUint32(4, true) * FOUR_GIB;
}
