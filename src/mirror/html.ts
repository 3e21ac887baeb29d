// index.html of a mirror, generated from the index alone (so a sync regenerates the same page):
// self-contained (inline CSS, no scripts, no external assets; works offline and from any
// static host), one row per artifact name with older versions under <details>, an anchor per
// row (#<name>) so people can link a board, and a dark palette under prefers-color-scheme.
import path from 'node:path';
import { proxmoxSnippet } from '../publish/snippets.js';
import type { MirrorArtifact, MirrorFile, MirrorIndex, MirrorVersion } from './index-types.js';

/** Where the page's snippets assume `ovmf-build pull --out` put the files. */
export const SNIPPET_ROOT = '/var/lib/ovmf-build';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** "3,653,632" without the locale: the page must be the same bytes on every machine. */
export function groupDigits(value: number): string {
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function humanSize(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

const dash = (value: string | null): string => (value === null || value === '' ? '–' : escapeHtml(value));

function flags(version: MirrorVersion): string {
  const parts = [version.machine, version.target, version.secure_boot === true ? 'secure boot' : null];
  if (version.rom_mode) parts.push('ROM mode');
  return dash(parts.filter((p) => p !== null).join(', '));
}

function verified(version: MirrorVersion): string {
  const v = version.verification;
  const parts = [
    v.structural === null ? null : `structure ${v.structural}`,
    v.boot === null ? null : `boot ${v.boot}`,
    v.igd === null ? null : `IGD ${v.igd}`,
  ].filter((p) => p !== null);
  return dash(parts.join('; '));
}

function fileList(version: MirrorVersion): string {
  const items = version.files.map(
    (file: MirrorFile) =>
      `<li><a href="${escapeHtml(file.url)}">${escapeHtml(file.name)}</a> <span class="size">${groupDigits(file.size)} bytes (${humanSize(file.size)})</span><br><span class="label">SHA-256</span> <code class="sha">${file.sha256}</code></li>`,
  );
  return `<ul class="files">${items.join('')}</ul>`;
}

function snippet(name: string, version: MirrorVersion): string {
  const dir = path.posix.join(SNIPPET_ROOT, name, version.version);
  const rom = version.files.find((f) => f.role === 'rom')?.name ?? 'igd.rom';
  const text = proxmoxSnippet(
    {
      machine: version.machine === 'i440fx' ? 'i440fx' : 'q35',
      target: version.target === 'RELEASE' ? 'RELEASE' : 'DEBUG',
      secureBoot: version.secure_boot === true,
      codePath: `${dir}/OVMF_CODE.fd`,
      varsPath: `${dir}/OVMF_VARS.fd`,
      romPath: `${dir}/${rom}`,
      romFileName: rom,
      description: '',
      tags: [],
      ...(version.rom_mode ? { romMode: true } : {}),
    },
    name,
  );
  return `<details class="snippet"><summary>Proxmox</summary><p>after <code>ovmf-build pull ${escapeHtml(name)}@${escapeHtml(version.version)} --out ${SNIPPET_ROOT}</code>:</p><pre>${escapeHtml(text)}</pre></details>`;
}

function cells(name: string, version: MirrorVersion): string {
  const vbt = [version.vbt.signature, version.vbt.source].filter((p) => p !== null).join(' from ');
  const date = version.built_at ?? version.published_at;
  // data-label: on a narrow screen the header row is hidden and each cell names its column.
  const cell = (label: string, html: string): string => `<td data-label="${label}">${html}</td>`;
  return [
    cell('generation', dash(version.generation)),
    cell('device IDs', dash(version.device_ids.join(' '))),
    cell('GOP build', dash(version.gop_build)),
    cell('VBT', dash(vbt)),
    cell('EDK2', dash(version.edk2.version)),
    cell('flags', flags(version)),
    cell('date', `<time datetime="${escapeHtml(date ?? '')}">${dash(date?.slice(0, 10) ?? null)}</time>`),
    cell('verified', verified(version)),
    cell('files', fileList(version)),
    cell('Proxmox', snippet(name, version)),
  ].join('');
}

function row(artifact: MirrorArtifact): string {
  const latest = artifact.versions.find((v) => v.version === artifact.latest) ?? artifact.versions[0];
  if (latest === undefined) return '';
  const older = artifact.versions.filter((v) => v !== latest);
  const olderHtml =
    older.length === 0
      ? ''
      : `<details class="older"><summary>${older.length} older version${older.length === 1 ? '' : 's'}</summary><table><tbody>${older
          .map((v) => `<tr><th scope="row">${escapeHtml(v.version)}</th>${cells(artifact.name, v)}</tr>`)
          .join('')}</tbody></table></details>`;
  const id = escapeHtml(artifact.name);
  return `<tr id="${id}"><th scope="row"><a href="#${id}">${id}</a><br><span class="version">${escapeHtml(latest.version)}</span>${olderHtml}</th>${cells(artifact.name, latest)}</tr>`;
}

const STYLE = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#5c5c5c;--line:#d8d8d8;--accent:#0b57d0;--code:#f3f3f3}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#e6e6e6;--muted:#a0a0a0;--line:#333;--accent:#8ab4f8;--code:#1e1e1e}}
body{margin:1rem;background:var(--bg);color:var(--fg);font:14px/1.4 system-ui,sans-serif}
a{color:var(--accent)}table{border-collapse:collapse;width:100%}
th,td{border-top:1px solid var(--line);padding:.4rem;vertical-align:top;text-align:left}
thead th{position:sticky;top:0;background:var(--bg)}
tr:target{outline:2px solid var(--accent)}
code,pre{background:var(--code);font:12px/1.3 ui-monospace,monospace}
pre{padding:.5rem;overflow-x:auto;max-width:40rem;white-space:pre-wrap}
.sha{word-break:break-all}.label,.size,.version,.meta{color:var(--muted)}
ul.files{margin:0;padding-left:1rem}
@media (max-width:700px){thead{display:none}table,tbody,tr,th,td{display:block}td{border:0;padding:.15rem .4rem}td[data-label]::before{content:attr(data-label) ": ";color:var(--muted)}}
`.trim();

/** The page for `index`; the same index gives the same bytes. */
export function renderIndexHtml(index: MirrorIndex): string {
  const head = [
    'name',
    'generation',
    'device IDs',
    'GOP build',
    'VBT',
    'EDK2',
    'flags',
    'date',
    'verified',
    'files',
    'Proxmox',
  ]
    .map((h) => `<th scope="col">${h}</th>`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>OVMF with Intel GOP: firmware mirror</title>
<style>${STYLE}</style>
</head>
<body>
<h1>OVMF with Intel GOP and VBT</h1>
<p class="meta">Index serial ${index.serial}, generated ${escapeHtml(index.generated_at)}, valid until ${escapeHtml(index.valid_until)}. Signed by key <code>${index.key_fingerprint}</code> (<a href="keys/${index.key_fingerprint}.pub">public key</a>). Machine-readable: <a href="index.json">index.json</a>, <a href="index.signed.json">index.signed.json</a>. Check files with <code>ovmf-build pull NAME --mirror URL --trust-key ${index.key_fingerprint}</code>.</p>
<table>
<thead><tr>${head}</tr></thead>
<tbody>
${index.artifacts.map(row).join('\n')}
</tbody>
</table>
</body>
</html>
`;
}
