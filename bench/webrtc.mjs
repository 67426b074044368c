// Data-channel benchmarks: connect time and message round trips between
// native clients and Chromium pages, with Chromium-to-Chromium measured in
// the same run as the reference. Run by scripts/bench.sh inside the
// loopback-only network namespace; prints a table and writes JSON.
//
// usage: node bench/webrtc.mjs [--quick] [--out FILE]
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { join, launchBrowser, newPage, openRoom, ROOT, startServer, waitForMembers } from '../tests/e2e/lib/harness.mjs';

const run = promisify(execFile);
const quick = process.argv.includes('--quick');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : path.join(ROOT, 'target', 'bench', 'webrtc.json');
const COUNT = quick ? 20 : 200;
const BENCH = process.env.PEERCHAT_BENCH_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat-bench');

/** Makes a joined page answer every `ping N` from anyone with `pong N`. */
async function echoPage(page) {
  await page.evaluate(() => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    const box = /** @type {HTMLTextAreaElement} */ (document.getElementById('message'));
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) {
          if (!(n instanceof HTMLElement) || !n.classList.contains('msg') || n.classList.contains('own')) continue;
          const text = n.querySelector('.msg-text')?.textContent ?? '';
          if (text.startsWith('ping ')) {
            box.value = `pong ${text.slice(5)}`;
            box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
          }
        }
      }
    }).observe(log, { childList: true });
  });
}

/** Round trips timed inside a page, against an echoing member. */
async function pagePings(page, count) {
  return page.evaluate(async (count) => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    const box = /** @type {HTMLTextAreaElement} */ (document.getElementById('message'));
    const samples = [];
    for (let i = 0; i < count + 10; i++) {
      const want = `pong ${i}`;
      const got = new Promise((resolve) => {
        const obs = new MutationObserver(() => {
          const last = log.lastElementChild;
          if (last?.querySelector('.msg-text')?.textContent === want) {
            obs.disconnect();
            resolve(undefined);
          }
        });
        obs.observe(log, { childList: true });
      });
      const t0 = performance.now();
      box.value = `ping ${i}`;
      box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
      await got;
      if (i >= 10) samples.push(performance.now() - t0);
    }
    return samples;
  }, count);
}

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.round((s.length - 1) * p)];
  return { count: s.length, rtt_p50_ms: q(0.5), rtt_p99_ms: q(0.99), one_way_p50_ms: q(0.5) / 2 };
}

const server = await startServer();
const browser = await launchBrowser();
const results = {};
try {
  // native ↔ native
  {
    const link = `${server.url}/r/bench-native-native-aaaaaa`;
    const { stdout } = await run(BENCH, ['rtt', link, '--echo-native', '--count', String(COUNT)]);
    results.native_native = JSON.parse(stdout);
  }
  // native ↔ Chromium
  {
    const echo = await openRoom(browser, server.url, 'echo');
    await echoPage(echo);
    const { stdout } = await run(BENCH, ['rtt', echo.url(), '--echo', 'echo', '--count', String(COUNT)]);
    results.native_chromium = JSON.parse(stdout);
    await echo.context().close();
  }
  // Chromium ↔ Chromium (the reference)
  {
    const echo = await openRoom(browser, server.url, 'echo');
    await echoPage(echo);
    const pinger = await newPage(browser, server.url);
    await pinger.goto(echo.url());
    const t0 = Date.now();
    await join(pinger, 'pinger');
    await waitForMembers(pinger, ['echo']);
    const connect = Date.now() - t0;
    results.chromium_chromium = { peer: 'echo', connect_ms: connect, ...summary(await pagePings(pinger, COUNT)) };
  }
  // Chromium ↔ Chromium with bare RTCPeerConnections and no UI: what the
  // WebRTC stack itself costs, for context.
  {
    const pages = [await newPage(browser, server.url), await newPage(browser, server.url)];
    for (const p of pages) await p.goto(`${server.url}/healthz`);
    const gather = (page, offer) =>
      page.evaluate(async (offer) => {
        const pc = new RTCPeerConnection();
        Object.assign(window, { pc });
        if (offer) {
          pc.ondatachannel = ({ channel }) => {
            channel.onmessage = (m) => channel.send(m.data);
          };
          await pc.setRemoteDescription(offer);
        } else {
          Object.assign(window, { dc: pc.createDataChannel('chat') });
        }
        await pc.setLocalDescription();
        await new Promise((resolve) => {
          const done = () => pc.iceGatheringState === 'complete' && resolve(undefined);
          pc.onicegatheringstatechange = done;
          done();
        });
        return pc.localDescription?.toJSON();
      }, offer);
    const offer = await gather(pages[0], null);
    const answer = await gather(pages[1], offer);
    const samples = await pages[0].evaluate(
      async ({ answer, count }) => {
        const { pc, dc } = /** @type {any} */ (window);
        await pc.setRemoteDescription(answer);
        await new Promise((resolve) => (dc.readyState === 'open' ? resolve(undefined) : (dc.onopen = resolve)));
        const samples = [];
        for (let i = 0; i < count + 10; i++) {
          const t = performance.now();
          await new Promise((resolve) => {
            dc.onmessage = resolve;
            dc.send(`ping ${i}`);
          });
          if (i >= 10) samples.push(performance.now() - t);
        }
        return samples;
      },
      { answer, count: COUNT },
    );
    results.chromium_chromium_bare = { peer: 'bare', connect_ms: null, ...summary(samples) };
  }
} finally {
  await browser.close();
  await server.stop();
}

const ref = results.chromium_chromium;
const rows = [
  ['pair', 'connect (ms)', 'RTT p50 (ms)', 'RTT p99 (ms)', 'one-way p50 (ms)', 'one-way vs Chromium-Chromium'],
  ...Object.entries(results).map(([name, r]) => [
    name.replace('_', ' ↔ ').replace('_bare', ' (bare, no UI)'),
    r.connect_ms === null ? '–' : r.connect_ms.toFixed(0),
    r.rtt_p50_ms.toFixed(2),
    r.rtt_p99_ms.toFixed(2),
    r.one_way_p50_ms.toFixed(2),
    `${(r.one_way_p50_ms / ref.one_way_p50_ms).toFixed(2)}×`,
  ]),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ quick, count: COUNT, results }, null, 2)}\n`);
console.log(`\nwritten to ${path.relative(ROOT, out)}`);
