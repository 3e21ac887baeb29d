// Reads the device table shipped with the tool (containers/igd-devices.json).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseIgdDeviceTable, type IgdDeviceTable } from './device-table.js';

/** containers/igd-devices.json of this package (src/igd and dist/igd sit at the same depth). */
export const DEFAULT_DEVICE_TABLE_PATH = fileURLToPath(
  new URL('../../containers/igd-devices.json', import.meta.url),
);

let cached: Promise<IgdDeviceTable> | undefined;

/** The table at `file` (default: the one shipped with the tool, read once per process). */
export function loadIgdDeviceTable(file: string = DEFAULT_DEVICE_TABLE_PATH): Promise<IgdDeviceTable> {
  if (file !== DEFAULT_DEVICE_TABLE_PATH) return readFile(file).then(parseIgdDeviceTable);
  cached ??= readFile(file).then(parseIgdDeviceTable);
  return cached;
}
