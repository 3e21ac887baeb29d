// Our EDK2 package (containers/edk2-overlay/OvmfGopPkg), read from the installed tool and
// shipped into the build container as input files next to OvmfPkg.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '../core/digest.js';
import { DEFAULT_DEVICE_TABLE_PATH, loadIgdDeviceTable } from '../igd/load.js';
import { Edk2Error } from './errors.js';
import { igdDeviceHeader } from './igd-device-header.js';
import { GOP_EFI, IGD_DEVICE_TABLE_HEADER, OVERLAY_PACKAGE, VBT_BIN } from './layout.js';

/** containers/edk2-overlay of this package (src/edk2 and dist/edk2 sit at the same depth). */
export const DEFAULT_OVERLAY_DIR = fileURLToPath(new URL('../../containers/edk2-overlay', import.meta.url));

export interface WorkspaceFile {
  /** Path relative to the EDK2 workspace root, '/'-separated. */
  readonly path: string;
  readonly data: Uint8Array;
}

export interface Overlay {
  readonly files: readonly WorkspaceFile[];
  /** sha256 over every path and content, part of the warm-workspace key. */
  readonly digest: string;
}

/**
 * The files a build must never take from the overlay dir: the user's binaries, and the header
 * generated from the device table (a stale copy must not shadow the generated one).
 */
const USER_INPUTS: readonly string[] = [GOP_EFI, VBT_BIN, IGD_DEVICE_TABLE_HEADER];
const MAX_OVERLAY_FILES = 200;

async function walk(dir: string, relative: string, out: string[]): Promise<void> {
  for (const entry of await readdir(path.join(dir, relative), { withFileTypes: true })) {
    const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) await walk(dir, child, out);
    else if (entry.isFile()) out.push(child);
    if (out.length > MAX_OVERLAY_FILES) {
      throw new Edk2Error('E_EDK2_OVERLAY_INVALID', `${dir} holds more than ${MAX_OVERLAY_FILES} files`, {
        dir,
      });
    }
  }
}

export interface LoadOverlayOptions {
  /**
   * The IGD device table the generated IgdDeviceTable.h is made from.
   * @default containers/igd-devices.json of this package
   */
  readonly deviceTablePath?: string;
}

/**
 * Reads the overlay package (only `OvmfGopPkg/**`) and adds the generated IgdDeviceTable.h,
 * sorted by path. A bad device table throws E_INPUT_DEVICE_TABLE_INVALID.
 */
export async function loadOverlay(
  overlayDir: string = DEFAULT_OVERLAY_DIR,
  options: LoadOverlayOptions = {},
): Promise<Overlay> {
  const relative: string[] = [];
  try {
    await walk(overlayDir, OVERLAY_PACKAGE, relative);
  } catch (error) {
    if (error instanceof Edk2Error) throw error;
    throw new Edk2Error(
      'E_EDK2_OVERLAY_INVALID',
      `cannot read the EDK2 overlay in ${overlayDir}`,
      { dir: overlayDir },
      {
        cause: error,
      },
    );
  }
  relative.sort();
  const stray = relative.filter((file) => USER_INPUTS.includes(file));
  if (stray.length > 0) {
    throw new Edk2Error(
      'E_EDK2_OVERLAY_INVALID',
      `the overlay must not contain user inputs or generated files (${stray.join(', ')}); they are made per build`,
      { dir: overlayDir, files: stray },
    );
  }
  const table = await loadIgdDeviceTable(options.deviceTablePath ?? DEFAULT_DEVICE_TABLE_PATH);
  const files = [
    ...(await Promise.all(
      relative.map(async (file) => ({
        path: file,
        data: new Uint8Array(await readFile(path.join(overlayDir, file))),
      })),
    )),
    { path: IGD_DEVICE_TABLE_HEADER, data: new TextEncoder().encode(igdDeviceHeader(table)) },
  ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = files.map((file) => `${file.path}\0${file.data.length}\0${sha256(file.data)}\n`).join('');
  return { files, digest: sha256(hash) };
}
