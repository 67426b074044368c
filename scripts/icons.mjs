#!/usr/bin/env node
// Renders the app's PNG icons (web/icons/) from its SVG ones with headless
// Chromium, for the web app manifest and the home screens that want PNG:
//   node scripts/icons.mjs
// web/favicon.svg gives icon-192.png and icon-512.png (rounded, for any
// use); web/icons/maskable.svg (full bleed, the mark inside the safe zone)
// gives maskable-512.png. Run it after changing either SVG and commit the
// PNGs.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'tests/e2e/package.json'));
const { chromium } = require('playwright-core');

const jobs = [
  ['web/favicon.svg', 192, 'web/icons/icon-192.png'],
  ['web/favicon.svg', 512, 'web/icons/icon-512.png'],
  ['web/icons/maskable.svg', 512, 'web/icons/maskable-512.png'],
];

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox'] });
try {
  for (const [source, size, target] of jobs) {
    const svg = await readFile(path.join(root, source), 'utf8');
    const page = await browser.newPage({ viewport: { width: size, height: size }, deviceScaleFactor: 1 });
    const data = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
    await page.setContent(`<style>html,body{margin:0;background:transparent}img{display:block;width:${size}px;height:${size}px}</style><img src="${data}">`);
    await page.locator('img').evaluate((img) => /** @type {HTMLImageElement} */ (img).decode());
    await page.screenshot({ path: path.join(root, target), omitBackground: true });
    await page.close();
    console.log(`${target} (${size}×${size})`);
  }
} finally {
  await browser.close();
}
