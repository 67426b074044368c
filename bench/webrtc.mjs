// Data-channel benchmarks: connect time and message round trips between
// native clients and Chromium pages, with Chromium-to-Chromium measured in
// the same run as the reference. Run by scripts/bench.sh inside the
// loopback-only network namespace; prints a table and writes JSON.
//
// usage: node bench/webrtc.mjs [--quick] [--out FILE]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { join, launchBrowser, newPage, openRoom, ROOT, startServer, waitForMembers } from '../tests/e2e/lib/harness.mjs';

const run = promisify(execFile);
const quick = process.argv.includes('--quick');
/** `--first-message`: only the page-load-to-first-message runs (what version 2's figures come from). */
const firstOnly = process.argv.includes('--first-message');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : path.join(ROOT, 'target', 'bench', 'webrtc.json');
const COUNT = quick ? 20 : 200;
/** Messages and bytes per message for the throughput runs. */
const BLAST = quick ? 50 : 500;
const BLAST_SIZE = 1000;
/** Runs of page load to first message. */
const FIRST_RUNS = quick ? 3 : 20;
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

/** Makes a page note when each `blast N` message arrives. */
async function sinkPage(page) {
  await page.evaluate(() => {
    const log = /** @type {HTMLElement} */ (document.querySelector('[role="log"]'));
    const arrivals = /** @type {number[]} */ ([]);
    Object.assign(window, { arrivals });
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) {
          if (n instanceof HTMLElement && n.classList.contains('msg') && !n.classList.contains('own')) {
            if (n.querySelector('.msg-text')?.textContent?.startsWith('blast ')) arrivals.push(performance.now());
          }
        }
      }
    }).observe(log, { childList: true });
  });
}

/** Waits for `count` blast messages at a sink page; MiB/s from first to last. */
async function sinkRate(page, count) {
  await page.waitForFunction((count) => /** @type {any} */ (window).arrivals.length >= count, count, { timeout: 120_000 });
  const ms = await page.evaluate(() => {
    const a = /** @type {any} */ (window).arrivals;
    return a[a.length - 1] - a[0];
  });
  return { count, size: BLAST_SIZE, first_to_last_ms: ms, mib_per_s: ((count - 1) * BLAST_SIZE) / (ms / 1000) / 2 ** 20 };
}

/** The text of blast message `i`, padded to BLAST_SIZE bytes (as peerchat-bench does). */
const blastText = (i) => `blast ${i} `.padEnd(BLAST_SIZE, 'x');

/**
 * Runs in a page before its scripts: notes when each piece of protocol
 * version 2's work is in flight, as [start, end, what] in ms since the Unix
 * epoch, in `window.v2Spans`: WebCrypto calls (HKDF, AES-GCM, Ed25519 or
 * ECDSA signatures and their checks, key generation and import, SHA-512 for
 * safety numbers; SHA-256 is left out, version 1 used it for member keys
 * too) and requests to the key store's IndexedDB database (identity, pins);
 * in `window.channelOpens` when each data channel opened, and in
 * `window.joinSentAt` when the page's `join` went out.
 */
function recordV2Work() {
  /** @type {[number, number, string][]} */
  const spans = [];
  /** @type {number[]} when each data channel opened */
  const opens = [];
  Object.assign(window, { v2Spans: spans, channelOpens: opens, joinSentAt: null });
  // When the page's `join` left for the server.
  const wsSend = WebSocket.prototype.send;
  WebSocket.prototype.send = function (/** @type {any} */ data) {
    const w = /** @type {any} */ (window);
    if (w.joinSentAt === null && typeof data === 'string' && data.includes('"join"')) w.joinSentAt = now();
    return wsSend.call(this, data);
  };
  const Peer = RTCPeerConnection;
  const watch = (/** @type {RTCDataChannel} */ channel) => channel.addEventListener('open', () => opens.push(now()));
  window.RTCPeerConnection = class extends Peer {
    /** @param {any[]} args */
    constructor(...args) {
      super(...args);
      this.addEventListener('datachannel', (e) => watch(/** @type {RTCDataChannelEvent} */ (e).channel));
    }

    /** @param {any[]} args */
    createDataChannel(...args) {
      const channel = super.createDataChannel(...args);
      watch(channel);
      return channel;
    }
  };
  const now = () => performance.timeOrigin + performance.now();
  const subtle = /** @type {any} */ (SubtleCrypto.prototype);
  for (const name of ['encrypt', 'decrypt', 'sign', 'verify', 'digest', 'generateKey', 'deriveKey', 'deriveBits', 'importKey', 'exportKey']) {
    const original = subtle[name];
    subtle[name] = function (/** @type {any[]} */ ...args) {
      const start = now();
      const result = original.apply(this, args);
      const algorithm = typeof args[0] === 'string' ? args[0] : args[0]?.name;
      if (name !== 'digest' || /^sha-512$/i.test(algorithm ?? '')) {
        const done = () => spans.push([start, now(), name]);
        result.then(done, done);
      }
      return result;
    };
  }
  const store = /** @type {any} */ (IDBObjectStore.prototype);
  for (const name of ['get', 'getAll', 'put', 'add']) {
    const original = store[name];
    store[name] = function (/** @type {any[]} */ ...args) {
      const start = now();
      const request = original.apply(this, args);
      if (this.transaction.db.name === 'peerchat-keys') {
        const done = () => spans.push([start, now(), `key store ${name}`]);
        request.addEventListener('success', done);
        request.addEventListener('error', done);
      }
      return request;
    };
  }
  const factory = /** @type {any} */ (IDBFactory.prototype);
  const open = factory.open;
  factory.open = function (/** @type {any[]} */ ...args) {
    const start = now();
    const request = open.apply(this, args);
    if (args[0] === 'peerchat-keys') {
      const done = () => spans.push([start, now(), 'key store open']);
      request.addEventListener('success', done);
      request.addEventListener('error', done);
    }
    return request;
  };
}

/**
 * The time within [from, to] during which at least one of `spans` was in
 * flight (overlapping spans count once).
 * @param {[number, number, string][]} spans
 * @param {number} from
 * @param {number} to
 */
function inFlight(spans, from, to) {
  const clipped = spans
    .map(([a, b]) => [Math.max(a, from), Math.min(b, to)])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of clipped) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

function percentile(samples, p) {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.round((s.length - 1) * p)];
}

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.round((s.length - 1) * p)];
  return { count: s.length, rtt_p50_ms: q(0.5), rtt_p99_ms: q(0.99), one_way_p50_ms: q(0.5) / 2 };
}

const server = await startServer();
const browser = await launchBrowser();
const results = {};
/** @type {Record<string, {count: number, size: number, first_to_last_ms: number, mib_per_s: number}>} */
const throughput = {};
/** @type {{runs: number, median_ms: number, p95_ms: number, from_load_median_ms: number, from_load_p95_ms: number,
 *   v2_work_median_ms: number, v2_work_p95_ms: number, without_v2_median_ms: number, without_v2_p95_ms: number,
 *   v2_exposed_median_ms: number, v2_exposed_p95_ms: number, without_v2_exposed_median_ms: number,
 *   without_v2_exposed_p95_ms: number, v2_exposed_from_start_median_ms: number, v2_exposed_from_start_p95_ms: number,
 *   load_to_join_median_ms: number, load_to_join_p95_ms: number, v2_work_by_kind_median_ms: Record<string, number>} | null} */
let firstMessage = null;
try {
  // native ↔ native
  if (!firstOnly) {
    const link = `${server.url}/r/bench-native-native-aaaaaa#${randomBytes(32).toString('base64url')}`;
    const { stdout } = await run(BENCH, ['rtt', link, '--echo-native', '--count', String(COUNT)]);
    results.native_native = JSON.parse(stdout);
  }
  // native ↔ Chromium
  if (!firstOnly) {
    const echo = await openRoom(browser, server.url, 'echo');
    await echoPage(echo);
    const { stdout } = await run(BENCH, ['rtt', echo.url(), '--echo', 'echo', '--count', String(COUNT)]);
    results.native_chromium = JSON.parse(stdout);
    await echo.context().close();
  }
  // Chromium ↔ Chromium (the reference)
  if (!firstOnly) {
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
  // Page load to the first message: a member waits in a room; a new page
  // loads the room link and, as soon as it has loaded, takes a nickname,
  // joins, and sends once the message box shows (the message goes out when
  // the channel opens). The person's steps are scripted inside the page, so
  // the automation adds no round trips. Measured to the message showing at
  // the waiting member: from the new page's navigation start, and from its
  // load event.
  {
    const host = await newPage(browser, server.url);
    await host.addInitScript(recordV2Work);
    await host.goto(`${server.url}/`);
    await host.waitForURL(/#/);
    await join(host, 'host');
    await host.getByRole('log').getByText('You joined as host').waitFor();
    await host.evaluate(() => {
      const arrivals = /** @type {Record<string, number>} */ ({});
      Object.assign(window, { arrivals });
      new MutationObserver((records) => {
        for (const r of records) {
          for (const n of r.addedNodes) {
            const text = n instanceof HTMLElement ? n.querySelector('.msg-text')?.textContent : null;
            if (text?.startsWith('first ')) arrivals[text] = performance.timeOrigin + performance.now();
          }
        }
      }).observe(/** @type {HTMLElement} */ (document.querySelector('[role="log"]')), { childList: true });
    });
    const fromStart = [];
    const fromLoad = [];
    /** Protocol version 2's work in flight, in either page, during each run. */
    const v2Work = [];
    /** What of it was on the message's path. */
    const v2Exposed = [];
    /** The same counted from navigation start (how this was measured before 2026-11-24 evening). */
    const v2ExposedFromStart = [];
    /** From the new page's load event to its join leaving. */
    const loadToJoin = [];
    /** @type {Record<string, number[]>} the same, by kind of work */
    const v2ByKind = {};
    for (let i = 0; i < FIRST_RUNS; i++) {
      const page = await newPage(browser, server.url);
      await page.addInitScript(recordV2Work);
      await page.addInitScript((i) => {
        addEventListener('load', async () => {
          Object.assign(window, { loadedAt: performance.timeOrigin + performance.now() });
          const nick = /** @type {HTMLInputElement} */ (document.getElementById('nick'));
          nick.value = `guest${i}`;
          nick.dispatchEvent(new Event('input'));
          /** @type {HTMLFormElement} */ (document.getElementById('join-form')).requestSubmit();
          const chat = /** @type {HTMLElement} */ (document.getElementById('chat-view'));
          while (chat.hidden) await new Promise((resolve) => requestAnimationFrame(resolve));
          /** @type {HTMLTextAreaElement} */ (document.getElementById('message')).value = `first ${i}`;
          /** @type {HTMLFormElement} */ (document.getElementById('composer')).requestSubmit();
        }, { once: true });
      }, i);
      await page.goto(host.url());
      await host.waitForFunction((t) => /** @type {any} */ (window).arrivals[t], `first ${i}`);
      const { start, loaded } = await page.evaluate(() => ({ start: performance.timeOrigin, loaded: /** @type {any} */ (window).loadedAt }));
      const end = await host.evaluate((t) => /** @type {any} */ (window).arrivals[t], `first ${i}`);
      fromStart.push(end - start);
      fromLoad.push(end - loaded);
      const spanOf = (/** @type {import('playwright-core').Page} */ p) => p.evaluate(() => /** @type {any} */ (window).v2Spans);
      const spans = [...(await spanOf(page)), ...(await spanOf(host))];
      v2Work.push(inFlight(spans, start, end));
      // On the message's path: the WebCrypto work in flight in either page
      // from the new page's load event (where the scripted person submits
      // the join form) to the message showing: sealing and opening
      // signals, the hellos, the message's signature and its check, and a
      // key derivation the join had to wait for; plus however long the new
      // page's hello waited for its identity key after the channel opened.
      // Work done before the load event ran beside the page loading, which
      // takes as long without it (WebCrypto runs off the page's thread);
      // the join waits for the room's signal key, so a derivation still
      // running at the load event is counted. The key store is opened and
      // read beside the join (the join does not wait for it); it reaches
      // the path only through the hello's wait.
      const crypto = spans.filter((x) => !x[2].startsWith('key store'));
      const { opens, own, joinSentAt } = await page.evaluate(() => ({
        opens: /** @type {any} */ (window).channelOpens,
        own: /** @type {any} */ (window).v2Spans,
        joinSentAt: /** @type {any} */ (window).joinSentAt,
      }));
      const opened = opens[0] ?? end;
      const hello = own.find((/** @type {[number, number, string]} */ x) => x[2] === 'sign' && x[0] >= opened);
      const helloWait = Math.max(0, (hello?.[0] ?? opened) - opened);
      v2Exposed.push(inFlight(crypto, loaded, end) + helloWait);
      v2ExposedFromStart.push(inFlight(crypto, start, end) + helloWait);
      loadToJoin.push((joinSentAt ?? end) - loaded);
      for (const what of new Set(spans.map((x) => x[2]))) {
        (v2ByKind[what] ??= []).push(inFlight(spans.filter((x) => x[2] === what), start, end));
      }
      await page.context().close();
    }
    firstMessage = {
      runs: fromStart.length,
      median_ms: percentile(fromStart, 0.5),
      p95_ms: percentile(fromStart, 0.95),
      from_load_median_ms: percentile(fromLoad, 0.5),
      from_load_p95_ms: percentile(fromLoad, 0.95),
      // The reference without encryption: each run's time less the time
      // protocol version 2's work was in flight in it (an upper bound of
      // what that work adds: some of it overlaps waiting for the network).
      v2_work_median_ms: percentile(v2Work, 0.5),
      v2_work_p95_ms: percentile(v2Work, 0.95),
      without_v2_median_ms: percentile(fromStart.map((t, i) => t - v2Work[i]), 0.5),
      without_v2_p95_ms: percentile(fromStart.map((t, i) => t - v2Work[i]), 0.95),
      v2_exposed_median_ms: percentile(v2Exposed, 0.5),
      v2_exposed_p95_ms: percentile(v2Exposed, 0.95),
      without_v2_exposed_median_ms: percentile(fromStart.map((t, i) => t - v2Exposed[i]), 0.5),
      without_v2_exposed_p95_ms: percentile(fromStart.map((t, i) => t - v2Exposed[i]), 0.95),
      v2_exposed_from_start_median_ms: percentile(v2ExposedFromStart, 0.5),
      v2_exposed_from_start_p95_ms: percentile(v2ExposedFromStart, 0.95),
      load_to_join_median_ms: percentile(loadToJoin, 0.5),
      load_to_join_p95_ms: percentile(loadToJoin, 0.95),
      v2_work_by_kind_median_ms: Object.fromEntries(
        Object.entries(v2ByKind).map(([what, ms]) => [what, percentile([...ms, ...Array(fromStart.length - ms.length).fill(0)], 0.5)]),
      ),
    };
    await host.context().close();
  }
  // Throughput: 1 KB messages as fast as the sender can, timed at the
  // receiver from the first arrival to the last.
  if (!firstOnly) {
    const { stdout } = await run(BENCH, ['blast', `${server.url}/r/bench-blast-native-native-aa#${randomBytes(32).toString('base64url')}`, '--sink-native', '--count', String(BLAST), '--size', String(BLAST_SIZE)]);
    throughput.native_native = JSON.parse(stdout);
  }
  if (!firstOnly) {
    const sink = await openRoom(browser, server.url, 'sink');
    await sinkPage(sink);
    await run(BENCH, ['blast', sink.url(), '--to', 'sink', '--count', String(BLAST), '--size', String(BLAST_SIZE)]);
    throughput.native_chromium = await sinkRate(sink, BLAST);
    await sink.context().close();
  }
  if (!firstOnly) {
    const sink = await openRoom(browser, server.url, 'sink');
    await sinkPage(sink);
    const sender = await newPage(browser, server.url);
    await sender.goto(sink.url());
    await join(sender, 'sender');
    await waitForMembers(sender, ['sink']);
    await sender.evaluate(
      ({ count, texts }) => {
        const box = /** @type {HTMLTextAreaElement} */ (document.getElementById('message'));
        const form = /** @type {HTMLFormElement} */ (document.getElementById('composer'));
        for (let i = 0; i < count; i++) {
          box.value = texts[i];
          form.requestSubmit();
        }
      },
      { count: BLAST, texts: Array.from({ length: BLAST }, (_, i) => blastText(i)) },
    );
    throughput.chromium_chromium = await sinkRate(sink, BLAST);
    await sink.context().close();
    await sender.context().close();
  }
  // Chromium ↔ Chromium with bare RTCPeerConnections and no UI: what the
  // WebRTC stack itself costs, for context.
  if (!firstOnly) {
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
/** @param {string[][]} table */
function print(table) {
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
}
if (ref) print(rows);
console.log();
const tref = throughput.chromium_chromium;
print([
  ['throughput (sender → receiver)', `messages × bytes`, 'first to last (ms)', 'MiB/s', 'vs Chromium → Chromium'],
  ...Object.entries(throughput).map(([name, r]) => [
    name.replace('_', ' → '),
    `${r.count} × ${r.size}`,
    r.first_to_last_ms.toFixed(0),
    r.mib_per_s.toFixed(2),
    `${(r.mib_per_s / tref.mib_per_s).toFixed(2)}×`,
  ]),
]);
if (firstMessage) {
  console.log(
    `\nfirst peer-to-peer message, ${firstMessage.runs} runs: from navigation start median ${firstMessage.median_ms.toFixed(0)} ms, p95 ${firstMessage.p95_ms.toFixed(0)} ms;` +
      ` from the load event median ${firstMessage.from_load_median_ms.toFixed(0)} ms, p95 ${firstMessage.from_load_p95_ms.toFixed(0)} ms`,
  );
  console.log(
    `  protocol version 2's work in flight (either page): median ${firstMessage.v2_work_median_ms.toFixed(1)} ms, p95 ${firstMessage.v2_work_p95_ms.toFixed(1)} ms;` +
      ` without it, from navigation start: median ${firstMessage.without_v2_median_ms.toFixed(0)} ms, p95 ${firstMessage.without_v2_p95_ms.toFixed(0)} ms` +
      ' (an upper bound)',
  );
  console.log(
    `  of which on the message's path (WebCrypto, and the hello waiting for the identity key): median ${firstMessage.v2_exposed_median_ms.toFixed(1)} ms, p95 ${firstMessage.v2_exposed_p95_ms.toFixed(1)} ms;` +
      ` without it: median ${firstMessage.without_v2_exposed_median_ms.toFixed(0)} ms, p95 ${firstMessage.without_v2_exposed_p95_ms.toFixed(0)} ms` +
      ' (target: the work on the path at most 20 ms, median)',
  );
  console.log(
    `  the same counted from navigation start (work beside the page's loading included): median ${firstMessage.v2_exposed_from_start_median_ms.toFixed(1)} ms, p95 ${firstMessage.v2_exposed_from_start_p95_ms.toFixed(1)} ms;` +
      ` load event to the join sent: median ${firstMessage.load_to_join_median_ms.toFixed(1)} ms, p95 ${firstMessage.load_to_join_p95_ms.toFixed(1)} ms`,
  );
  console.log(`  by kind (median ms in flight): ${JSON.stringify(firstMessage.v2_work_by_kind_median_ms)}`);
}
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ quick, count: COUNT, results, throughput, first_message: firstMessage }, null, 2)}\n`);
console.log(`\nwritten to ${path.relative(ROOT, out)}`);
