import { describe, expect, it } from 'vitest';
import { formatSize, formatSizeShort } from './size.js';

describe('formatSize', () => {
  it('prints exact decimal bytes, with KiB/MiB/GiB beside them from 1 KiB on', () => {
    expect([0, 1, 1023, 1024, 1536, 268_435_456, 3 * 1024 ** 3, 5n].map((n) => formatSize(n))).toEqual([
      '0 bytes',
      '1 byte',
      '1023 bytes',
      '1024 bytes (1 KiB)',
      '1536 bytes (1.5 KiB)',
      '268435456 bytes (256 MiB)',
      '3221225472 bytes (3 GiB)',
      '5 bytes',
    ]);
  });

  it('formatSizeShort fits a table column', () => {
    expect([0, 512, 4096, 3_670_016].map((n) => formatSizeShort(n))).toEqual([
      '0 B',
      '512 B',
      '4.0 KiB',
      '3.5 MiB',
    ]);
  });
});
