// Finds the host's Debian mirror for a suite from its apt configuration:
// one-line sources.list format and deb822 *.sources (sources.list(5)).

export interface AptSource {
  readonly uri: string;
  readonly suite: string;
  readonly components: readonly string[];
  /** File the entry came from (for messages). */
  readonly file: string;
}

/** `deb [options] uri suite component...` lines; deb-src and comments are skipped. */
export function parseOneLineSources(text: string, file: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line.startsWith('deb ') && !line.startsWith('deb\t')) {
      continue;
    }
    const rest = line
      .slice(3)
      .trim()
      .replace(/^\[[^\]]*\]\s*/, '');
    const [uri, suite, ...components] = rest.split(/\s+/);
    if (uri !== undefined && suite !== undefined) {
      sources.push({ uri, suite, components, file });
    }
  }
  return sources;
}

/** deb822 stanzas (blank-line separated); each `Types: deb` stanza yields one entry per URI and suite. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let current: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) {
        continue;
      }
      if (/^\s/.test(raw) && current !== undefined) {
        fields.set(current, `${fields.get(current) ?? ''} ${raw.trim()}`);
        continue;
      }
      const match = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (match?.[1] !== undefined) {
        current = match[1].toLowerCase();
        fields.set(current, match[2] ?? '');
      }
    }
    const enabled = (fields.get('enabled') ?? 'yes').trim().toLowerCase();
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (enabled === 'no' || !types.includes('deb')) {
      continue;
    }
    const words = (name: string): string[] => (fields.get(name) ?? '').split(/\s+/).filter((w) => w !== '');
    for (const uri of words('uris')) {
      for (const suite of words('suites')) {
        sources.push({ uri, suite, components: words('components'), file });
      }
    }
  }
  return sources;
}

/** The first `deb` entry for `suite`, in apt's file order (sources.list, then sources.list.d sorted). */
export function findMirror(
  files: readonly { name: string; text: string }[],
  suite: string,
): AptSource | undefined {
  for (const { name, text } of files) {
    const parsed = name.endsWith('.sources')
      ? parseDeb822Sources(text, name)
      : parseOneLineSources(text, name);
    const hit = parsed.find((source) => source.suite === suite);
    if (hit !== undefined) {
      return hit;
    }
  }
  return undefined;
}
