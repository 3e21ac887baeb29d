// The mirror's page in a real browser (issue 13 item 7): Debian's chromium driven by
// playwright-core against `serve` on 127.0.0.1 and a real mirror tree. Every link answers 200
// (a range of the large file 206) when fetched by the page itself, the SHA-256 values shown are
// index.json's, nothing is requested from any other origin (every such request is aborted and
// fails the test), the console stays free of errors, and screenshots at 1280x800 and 390x844 are
// written to .cache/screenshots/ (git-ignored; OVMF_BUILD_SCREENSHOT_DIR overrides) and printed.
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMirrorServer, type MirrorServer } from '../src/serve/server.js';
import { makeServeTree, type ServeTree } from './serve-tree.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT_DIR =
  process.env['OVMF_BUILD_SCREENSHOT_DIR'] ??
  path.resolve(import.meta.dirname, '..', '.cache', 'screenshots');

let tree: ServeTree;
let server: MirrorServer;
let browser: Browser;
beforeAll(async () => {
  tree = await makeServeTree('ovmf-page-');
  server = await startMirrorServer({ root: tree.root, port: 0 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox needs user namespaces that root in a container does not get.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await rm(tree.dir, { recursive: true, force: true });
});

/** Width and height from a PNG's IHDR chunk (PNG spec 11.2.2). */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe('the mirror page in Chromium', () => {
  it.each([
    [1280, 800],
    [390, 844],
  ])(
    'at %dx%d: links answer, digests match index.json, no foreign request, no console error',
    async (width, height) => {
      const origin = new URL(server.url).origin;
      const foreign: string[] = [];
      const consoleErrors: string[] = [];
      const context = await browser.newContext({ viewport: { width, height } });
      try {
        const page = await context.newPage();
        await page.route('**/*', async (route) => {
          const url = route.request().url();
          if (new URL(url).origin === origin) return route.continue();
          foreign.push(url);
          return route.abort('blockedbyclient');
        });
        page.on('console', (message) => {
          if (message.type() === 'error') consoleErrors.push(message.text());
        });
        page.on('pageerror', (error) => consoleErrors.push(error.message));
        const response = await page.goto(server.url, { waitUntil: 'load' });
        expect(response?.status()).toBe(200);

        // Every file row: its link and the SHA-256 shown beside it, as index.json has them.
        const shown = await page.$$eval('li', (items) =>
          items.flatMap((item) => {
            const link = item.querySelector('a[href]');
            const sha = item.querySelector('code.sha');
            return link === null || sha === null
              ? []
              : [[link.getAttribute('href') ?? '', sha.textContent ?? '']];
          }),
        );
        const index = JSON.parse(
          await readFile(path.join(tree.root, 'index.json'), 'utf8'),
        ) as ServeTree['index'];
        const expected = index.artifacts.flatMap((artifact) =>
          artifact.versions.flatMap((version) => version.files.map((file) => [file.url, file.sha256])),
        );
        expect([...shown].sort()).toEqual([...expected].sort());
        expect(expected.length).toBeGreaterThanOrEqual(24);

        // Every link of the page, fetched by the page (through the same routing): anchors exist, files answer 200.
        const pageUrl = page.url();
        const attributes = await page.$$eval('a[href]', (links) =>
          links.map((link) => link.getAttribute('href') ?? ''),
        );
        const hrefs = attributes.map((href) => new URL(href, pageUrl).href);
        expect(hrefs.length).toBeGreaterThan(expected.length);
        for (const href of new Set(hrefs)) {
          const url = new URL(href);
          expect({ href, origin: url.origin }).toEqual({ href, origin });
          if (url.hash !== '' && url.pathname === '/') {
            expect({ href, anchors: await page.locator(`[id="${url.hash.slice(1)}"]`).count() }).toEqual({
              href,
              anchors: 1,
            });
            continue;
          }
          const status = await page.evaluate(async (target) => (await fetch(target)).status, href);
          expect({ href, status }).toEqual({ href, status: 200 });
        }
        const large = expected.find(([url]) => url === tree.largeFile);
        expect(large).toBeDefined();
        const range = await page.evaluate(async (target) => {
          const answer = await fetch(target, { headers: { Range: 'bytes=0-1023' } });
          return [
            answer.status,
            (await answer.arrayBuffer()).byteLength,
            answer.headers.get('content-range'),
          ];
        }, new URL(tree.largeFile, server.url).href);
        expect(range).toEqual([206, 1024, `bytes 0-1023/${4 * 1024 * 1024}`]);

        await mkdir(SCREENSHOT_DIR, { recursive: true });
        const file = path.join(SCREENSHOT_DIR, `mirror-page-${width}x${height}.png`);
        await page.screenshot({ path: file });
        expect(pngSize(await readFile(file))).toEqual({ width, height });
        console.log(`screenshot: ${file}`);

        expect(foreign).toEqual([]);
        expect(consoleErrors).toEqual([]);
      } finally {
        await context.close();
      }
    },
  );
});
