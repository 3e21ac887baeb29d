import { describe, expect, it } from 'vitest';
import { LineSplitter, TailBuffer } from './line-splitter.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function split(chunks: readonly Uint8Array[], maxLineBytes?: number): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), maxLineBytes);
  for (const chunk of chunks) {
    splitter.write(chunk);
  }
  splitter.end();
  return lines;
}

describe('LineSplitter', () => {
  it('emits one call per line across chunk boundaries and strips CR', () => {
    expect(split([bytes('a\nb'), bytes('c\r\n\nd')])).toEqual(['a', 'bc', '', 'd']);
  });

  it('emits nothing for an empty stream and no trailing empty line after a final newline', () => {
    expect(split([])).toEqual([]);
    expect(split([bytes('x\n')])).toEqual(['x']);
  });

  it('decodes a multi-byte character split between chunks', () => {
    const euro = bytes('€\n');
    expect(split([euro.subarray(0, 1), euro.subarray(1, 2), euro.subarray(2)])).toEqual(['€']);
  });

  it('cuts an over-long line into pieces instead of growing without bound', () => {
    expect(split([bytes('abcdefghij'), bytes('kl\nm')], 4)).toEqual(['abcd', 'efgh', 'ijkl', 'm']);
  });

  it('handles every byte arriving separately', () => {
    const text = 'line one\nline two\r\nthree';
    expect(split([...bytes(text)].map((b) => Uint8Array.of(b)))).toEqual(['line one', 'line two', 'three']);
  });

  it('rejects a bad bound', () => {
    expect(() => new LineSplitter(() => undefined, 0)).toThrow(
      new TypeError('Expected `maxLineBytes` to be a positive integer, got `0`'),
    );
  });
});

describe('TailBuffer', () => {
  it('keeps the last lines in order', () => {
    const tail = new TailBuffer(3);
    for (const line of ['1', '2', '3', '4', '5']) {
      tail.push(line);
    }
    expect(tail.lines()).toEqual(['3', '4', '5']);
  });
});
