// Text and JSON renderings of a firmware tree for `ovmf-build inspect`.
import { hex } from '../core/hex.js';
import type { FirmwareNode, FirmwareTree } from './firmware-node.js';

export interface RenderOptions {
  /**
   * Show padding and free-space nodes.
   * @default false
   */
  readonly showPadding?: boolean;
  /**
   * Deepest level printed (0 = the image line only).
   * @default Infinity
   */
  readonly maximumDepth?: number;
}

function describe(node: FirmwareNode): string {
  const at = node.offset === null ? '' : ` @${hex(node.offset)}`;
  const size = ` size ${hex(node.sizeInBytes)}`;
  switch (node.kind) {
    case 'image':
      return `${node.name} (${node.format})${size}`;
    case 'capsule':
      return `${node.type} ${node.subtype} ${node.text ?? ''}${at}${size}`;
    case 'region':
      return `${node.name}${at}${size}`;
    case 'partition':
      return `BPDT partition ${node.name}${at}${size}`;
    case 'volume': {
      const stores = node.nvram?.map(
        (s) => `${s.format}${s.variableCount === null ? '' : ` (${s.variableCount} variables)`}`,
      );
      const checksum = node.volume.checksum.valid ? '' : ' [header checksum invalid]';
      return `Volume ${node.subtype} ${node.name}${at}${size}${stores && stores.length > 0 ? ` stores: ${stores.join(', ')}` : ''}${checksum}`;
    }
    case 'file': {
      const ui = node.uiName === null ? '' : ` "${node.uiName}"`;
      const bad = [
        node.file.headerChecksum.valid ? null : 'header checksum invalid',
        node.file.dataChecksum.valid === false ? 'data checksum invalid' : null,
        node.file.deleted ? 'deleted' : null,
      ].filter((x) => x !== null);
      return `File ${node.subtype} ${node.name}${ui}${at}${size}${bad.length > 0 ? ` [${bad.join(', ')}]` : ''}`;
    }
    case 'section': {
      const parts: string[] = [`Section ${node.subtype}`];
      if (node.section.guided !== undefined) parts.push(node.section.guided.guid);
      if (node.compression !== null) {
        parts.push(
          node.compression.decoded
            ? `[${node.compression.algorithm} ${hex(node.compression.compressedSize)} -> ${hex(node.body.length)}]`
            : `[${node.compression.algorithm}, not decoded]`,
        );
      }
      if (node.uiName !== null) parts.push(`"${node.uiName}"`);
      if (node.version !== null) parts.push(`build ${node.version.buildNumber} "${node.version.text}"`);
      if (node.crc32 !== null && !node.crc32.valid) parts.push('[CRC32 mismatch]');
      if (node.pe !== null) parts.push(`${node.pe.format} ${node.pe.machineName} ${node.pe.subsystemName}`);
      return `${parts.join(' ')}${at}${size}`;
    }
    case 'padding':
      return `Padding ${node.subtype}${at}${size}`;
    case 'free-space':
      return `Free space${at}${size}`;
  }
}

/** An indented text tree, one node per line, problems marked with "!". */
export function renderTree(tree: FirmwareTree, options: RenderOptions = {}): string {
  const lines: string[] = [];
  const maximumDepth = options.maximumDepth ?? Infinity;
  const visit = (node: FirmwareNode, depth: number): void => {
    if (!options.showPadding && (node.kind === 'padding' || node.kind === 'free-space')) return;
    lines.push(`${'  '.repeat(depth)}${describe(node)}`);
    for (const problem of node.problems)
      lines.push(`${'  '.repeat(depth + 1)}! ${problem.code}: ${problem.message}`);
    if (depth >= maximumDepth) return;
    for (const child of node.children) visit(child, depth + 1);
  };
  visit(tree.root, 0);
  return lines.join('\n');
}

/** A JSON-safe object for a node and its subtree (no byte arrays, no parent links). */
export function nodeToJson(node: FirmwareNode): Record<string, unknown> {
  const base: Record<string, unknown> = {
    kind: node.kind,
    type: node.type,
    subtype: node.subtype,
    name: node.name,
    offset: node.offset,
    size: node.sizeInBytes,
  };
  if (node.text !== null) base['text'] = node.text;
  switch (node.kind) {
    case 'capsule':
      base['capsule'] = {
        ...node.capsule,
        fmp:
          node.capsule.fmp === null
            ? null
            : {
                ...node.capsule.fmp,
                payloads: node.capsule.fmp.payloads.map((p) => ({
                  ...p,
                  hardwareInstance: p.hardwareInstance?.toString() ?? null,
                })),
              },
      };
      break;
    case 'volume':
      base['volume'] = node.volume;
      if (node.nvram !== null) base['nvram'] = node.nvram;
      break;
    case 'file':
      base['guid'] = node.guid;
      base['uiName'] = node.uiName;
      base['file'] = node.file;
      break;
    case 'section':
      base['section'] = node.section;
      if (node.compression !== null)
        base['compression'] = {
          ...node.compression,
          decompressedSize: node.compression.decoded ? node.body.length : null,
        };
      if (node.uiName !== null) base['uiName'] = node.uiName;
      if (node.version !== null) base['version'] = node.version;
      if (node.crc32 !== null) base['crc32'] = node.crc32;
      if (node.pe !== null) base['pe'] = node.pe;
      break;
    case 'region':
      base['region'] = node.region;
      break;
    case 'partition':
      base['partition'] = node.partition;
      break;
    case 'padding':
      base['empty'] = node.empty;
      break;
    default:
      break;
  }
  if (node.problems.length > 0) base['problems'] = node.problems;
  if (node.children.length > 0) base['children'] = node.children.map(nodeToJson);
  return base;
}

/** Deep copy with bigint values as decimal strings and byte arrays as their length, for JSON output. */
export function toJsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return { byteLength: value.length };
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonSafe(v)]));
  }
  return value;
}
