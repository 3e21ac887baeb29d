// A minimal x86 flash image for exercising the QEMU boot runner on paths a real OVMF cannot
// produce on demand (a hang before BDS, a guest reset, silence, DEBUG text on the serial
// port). It is real firmware: QEMU maps it at the top of 4 GiB and the CPU starts at the
// reset vector (Intel SDM vol. 3, 9.1.4 "First Instruction Executed": CS base 0xFFFF0000,
// IP 0xFFF0), in 16-bit real mode. The code writes a text to one I/O port byte by byte and
// then hangs or triple-faults. The KVM probe (accel.ts) boots it to learn whether KVM can run
// firmware on this host; the tests use it for the boot runner's failure paths.

export const TINY_FIRMWARE_SIZE_IN_BYTES = 0x1_0000;
/** Offset of the text in the image (= in the CS segment, whose base is the image start). */
const TEXT_OFFSET = 0x100;
const RESET_VECTOR_OFFSET = 0xfff0;

export interface TinyFirmwareOptions {
  /** Text written to the port (ASCII); NUL ends it. */
  readonly text: string;
  /** 0x402 = QEMU debug console (OVMF's DEBUG port), 0x3f8 = COM1 data register. */
  readonly port: number;
  /**
   * After the text: `hang` (cli; hlt forever) or `triple-fault` (empty IDT, int3: the CPU
   * shuts down and QEMU, started with -no-reboot, exits).
   */
  readonly end: 'hang' | 'triple-fault';
}

/** A 64 KiB flash image (pflash unit 0) running the described program. */
export function buildTinyFirmware(options: TinyFirmwareOptions): Uint8Array {
  const text = Buffer.from(options.text, 'latin1');
  if (text.includes(0) || TEXT_OFFSET + text.length + 1 > RESET_VECTOR_OFFSET) {
    throw new TypeError(
      `Expected \`text\` to be at most ${RESET_VECTOR_OFFSET - TEXT_OFFSET - 1} bytes without NUL`,
    );
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 0xffff) {
    throw new TypeError(`Expected \`port\` to be a 16-bit I/O port, got \`${String(options.port)}\``);
  }
  const image = new Uint8Array(TINY_FIRMWARE_SIZE_IN_BYTES);
  const code = [
    0xfc, // cld
    0xbe,
    TEXT_OFFSET & 0xff,
    TEXT_OFFSET >> 8, // mov si, TEXT_OFFSET
    0xba,
    options.port & 0xff,
    options.port >> 8, // mov dx, port
    // 0x0007 loop:
    0x2e,
    0xac, // cs lodsb
    0x84,
    0xc0, // test al, al
    0x74,
    0x03, // jz 0x0010
    0xee, // out dx, al
    0xeb,
    0xf7, // jmp 0x0007
  ];
  // 0x0010: the end action.
  const end =
    options.end === 'hang'
      ? [0xfa, 0xf4, 0xeb, 0xfd] // cli; hlt; jmp back to hlt
      : [0x2e, 0x0f, 0x01, 0x1e, 0x20, 0x00, 0xcc, 0xf4]; // lidt cs:[0x0020] (limit 0); int3; hlt
  image.set([...code, ...end], 0);
  // 0x0020: a 6-byte IDT descriptor with limit 0 and base 0 (already zero).
  image.set(text, TEXT_OFFSET);
  // jmp near 0x0000, relative to the next instruction at 0xfff3 (wraps in the 64 KiB segment).
  image.set([0xe9, 0x0d, 0x00], RESET_VECTOR_OFFSET);
  return image;
}
