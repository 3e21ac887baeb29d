// The fixed file names of an artifact version directory, shared by the publisher and the
// verifier. Every name is a plain file name: no directory part, no leading dot.

export const CODE_FILE = 'OVMF_CODE.fd';
export const VARS_FILE = 'OVMF_VARS.fd';
export const DEFAULT_ROM_FILE = 'igd.rom';
export const MANIFEST_FILE = 'manifest.json';
export const SUMS_FILE = 'SHA256SUMS';
export const SIGNATURE_FILE = 'signature.json';
export const PUBLIC_KEY_FILE = 'signing-key.pub';
export const PROXMOX_FILE = 'proxmox.conf';
export const QEMU_FILE = 'qemu.sh';
export const LATEST_LINK = 'latest';
/** Files that cannot be listed in SHA256SUMS (they are made from it). */
export const UNSUMMED: readonly string[] = [SUMS_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE];
/** What each fixed file is (the `role` of a file in the mirror index); code, vars and ROM names vary. */
export const FIXED_FILE_ROLES: Readonly<Record<string, string>> = {
  [MANIFEST_FILE]: 'manifest',
  [SUMS_FILE]: 'sums',
  [SIGNATURE_FILE]: 'signature',
  [PUBLIC_KEY_FILE]: 'key',
  [PROXMOX_FILE]: 'proxmox',
  [QEMU_FILE]: 'qemu',
};

/** A name inside an artifact directory: letters, digits, '.', '_', '-', starting with a letter or digit. */
const PLAIN_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isPlainFileName(name: unknown): name is string {
  return typeof name === 'string' && PLAIN_FILE_NAME.test(name);
}

/** `60-ovmf-build-<name>.json`: ready to drop into /etc/qemu/firmware (firmware.json: NN- prefix sorts). */
export function descriptorFileName(name: string): string {
  return `60-ovmf-build-${name}.json`;
}
