import { describe, expect, it } from 'vitest';
import { findMirror, parseDeb822Sources, parseOneLineSources } from './apt-sources.js';

describe('apt sources', () => {
  it('parses one-line entries, skipping deb-src, comments and options', () => {
    const text = [
      '# comment',
      'deb-src http://mirror.invalid/debian bookworm main',
      'deb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/debian bookworm main contrib # tail',
      'deb http://security.invalid/debian-security bookworm-security main',
    ].join('\n');
    expect(parseOneLineSources(text, 'a.list')).toEqual([
      {
        uri: 'http://mirror.invalid/debian',
        suite: 'bookworm',
        components: ['main', 'contrib'],
        file: 'a.list',
      },
      {
        uri: 'http://security.invalid/debian-security',
        suite: 'bookworm-security',
        components: ['main'],
        file: 'a.list',
      },
    ]);
  });

  it('parses deb822 stanzas with several URIs and suites, skipping deb-src and disabled ones', () => {
    const text = [
      'Types: deb',
      '# snapshot comment',
      'URIs: http://one.invalid/debian http://two.invalid/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      '',
      'Types: deb-src',
      'URIs: http://src.invalid/debian',
      'Suites: bookworm',
      'Components: main',
      '',
      'Enabled: no',
      'Types: deb',
      'URIs: http://off.invalid/debian',
      'Suites: bookworm',
    ].join('\n');
    expect(parseDeb822Sources(text, 'x.sources').map((s) => `${s.uri} ${s.suite}`)).toEqual([
      'http://one.invalid/debian bookworm',
      'http://one.invalid/debian bookworm-updates',
      'http://two.invalid/debian bookworm',
      'http://two.invalid/debian bookworm-updates',
    ]);
  });

  it('finds the first deb entry of the suite in file order, ignoring other suites', () => {
    const files = [
      { name: '/etc/apt/sources.list', text: 'deb http://old.invalid/debian bullseye main\n' },
      {
        name: '/etc/apt/sources.list.d/debian.sources',
        text: 'Types: deb\nURIs: http://new.invalid/debian\nSuites: bookworm\n',
      },
      { name: '/etc/apt/sources.list.d/z.list', text: 'deb http://late.invalid/debian bookworm main\n' },
    ];
    expect(findMirror(files, 'bookworm')?.uri).toBe('http://new.invalid/debian');
    expect(findMirror(files, 'trixie')).toBeUndefined();
  });
});
