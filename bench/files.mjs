// File transfer between two Chromium pages in one room: the file's
// throughput (accepted to received and checked, SHA-256 of the whole file
// included) against a bare data-channel blast between the same two pages
// in the same run (16 KiB messages, the same back-pressure: 256 KiB high,
// 64 KiB low), the receiving page's JS heap while the file arrives, and
// the latency of chat messages sent while it is in flight. Run by
// scripts/bench.sh inside the loopback-only network namespace; prints a
// table and writes JSON.
//
// usage: node bench/files.mjs [--quick] [--size MIB] [--out FILE]
// (PROFILE=1 also prints where each page and the receiving page's file
// worker spent their time meanwhile, and the CPU time per MiB of every
// thread of the browser's processes during the blast and the file: on a
// machine loaded by other work, the CPU a MiB costs is what bounds it.)
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { enter, launchBrowser, openRoom, ROOT, startServer, waitForMembers } from '../tests/e2e/lib/harness.mjs';
import { cpuPerMiB, fileResult, recordLatencies, threadTicks, watchHeap } from './measure.mjs';

const quick = process.argv.includes('--quick');
const arg = (/** @type {string} */ name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const out = arg('--out') ?? path.join(ROOT, 'target', 'bench', 'files.json');
const MIB = 1024 * 1024;
const SIZE = Number(arg('--size') ?? (quick ? 12 : 200)) * MIB;
const BLAST = Math.min(SIZE, (quick ? 12 : 100) * MIB);

/**
 * Prints where a DevTools CPU profile's time went (self time, top 15).
 * @param {string} label
 * @param {any} prof
 */
function printProfile(label, prof) {
  const self = new Map();
  const byId = new Map(prof.nodes.map((/** @type {any} */ n) => [n.id, n]));
  prof.samples.forEach((/** @type {number} */ id, /** @type {number} */ k) => {
    const n = byId.get(id);
    const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (prof.timeDeltas[k] ?? 0));
  });
  console.log(label, [...self].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => `${(v / 1000).toFixed(0)}ms ${k}`).join('\n'));
}

const server = await startServer();
const browser = await launchBrowser();
try {
  const alice = await openRoom(browser, server.url, 'alice');
  const url = new URL(alice.url());
  const link = `${url.origin}${url.pathname}?testhooks#${url.hash.slice(1)}`;
  await alice.goto(link);
  await alice.getByRole('log').getByText('You are back as alice').waitFor();
  const bob = await enter(browser, server.url, link, 'bob');
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);

  // The bare blast: a channel of its own on the same connection.
  await bob.evaluate(() => {
    const files = /** @type {any} */ (window).peerchatFiles;
    const link = [...files.room.members.values()][0].link;
    link.pc.addEventListener('datachannel', (/** @type {RTCDataChannelEvent} */ { channel }) => {
      if (channel.label !== 'blast') return;
      channel.binaryType = 'arraybuffer';
      let got = 0;
      channel.addEventListener('message', (e) => {
        if (typeof e.data === 'string') {
          got = 0;
          return;
        }
        got += e.data.byteLength;
        if (got >= Number(channel.protocol || 0)) channel.send('done');
      });
    });
  });
  const blastTicks = process.env.PROFILE ? threadTicks() : null;
  const blastMiBs = await alice.evaluate(async (total) => {
    const files = /** @type {any} */ (window).peerchatFiles;
    const link = [...files.room.members.values()][0].link;
    const ch = /** @type {RTCDataChannel} */ (link.pc.createDataChannel('blast', { ordered: true, protocol: String(total) }));
    ch.binaryType = 'arraybuffer';
    await new Promise((resolve) => ch.addEventListener('open', resolve, { once: true }));
    ch.bufferedAmountLowThreshold = 64 * 1024;
    const chunk = new Uint8Array(16 * 1024 + 9);
    const done = new Promise((resolve) => ch.addEventListener('message', resolve, { once: true }));
    const start = performance.now();
    let sent = 0;
    while (sent < total) {
      while (ch.bufferedAmount < 256 * 1024 && sent < total) {
        ch.send(chunk.subarray(0, 9 + Math.min(16 * 1024, total - sent)));
        sent += Math.min(16 * 1024, total - sent);
      }
      if (sent < total) await new Promise((resolve) => ch.addEventListener('bufferedamountlow', resolve, { once: true }));
    }
    await done;
    const seconds = (performance.now() - start) / 1000;
    ch.close();
    return total / (1024 * 1024) / seconds;
  }, BLAST);

  if (blastTicks) cpuPerMiB('blast', blastTicks, BLAST / MIB);

  // Chat latency: alice's messages, timed at bob's page (the two pages
  // share a clock), first with nothing else going on, then while the file
  // is in flight.
  await recordLatencies(bob);
  /** Sends one timed message from alice. */
  const ping = () =>
    alice.evaluate(() => {
      const box = /** @type {HTMLTextAreaElement} */ (document.getElementById('message'));
      box.value = `lat ${performance.timeOrigin + performance.now()}`;
      box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    });
  for (let i = 0; i < 20; i += 1) {
    await ping();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await bob.waitForFunction(() => /** @type {any} */ (window).latencies.length >= 20);
  const idle = /** @type {number[]} */ (await bob.evaluate(() => /** @type {any} */ (window).latencies.splice(0)));

  // The file, made in the sender's page (a Blob of one repeated chunk
  // would hash the same piece again and again: each MiB differs).
  await alice.evaluate((size) => {
    const parts = [];
    const mib = 1024 * 1024;
    for (let at = 0; at < size; at += mib) {
      const part = new Uint8Array(Math.min(mib, size - at));
      crypto.getRandomValues(part.subarray(0, Math.min(65536, part.length)));
      part[part.length - 1] = at / mib;
      parts.push(part);
    }
    const dt = new DataTransfer();
    dt.items.add(new File(parts, 'big.bin'));
    document.getElementById('room-view')?.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, SIZE);
  const card = bob.locator('.file-card', { hasText: 'big.bin' });
  await card.getByRole('button', { name: 'Accept big.bin' }).waitFor({ timeout: 120_000 });
  const heap = await watchHeap(bob);
  const profile = process.env.PROFILE ? await Promise.all([bob, alice].map(async (p) => {
    const c = await p.context().newCDPSession(p);
    await c.send('Profiler.enable');
    await c.send('Profiler.start');
    return c;
  })) : null;
  // The receiving page's file worker, profiled from when it starts (at the
  // Accept): through the page's DevTools session, attached to it.
  const worker = {
    /** @type {string | null} */ session: null,
    next: 1,
    /** @type {Map<number, (m: any) => void>} */ waiting: new Map(),
    /** @param {string} method */
    send(method) {
      const id = this.next++;
      const message = JSON.stringify({ id, method, params: {} });
      return new Promise((resolve) => {
        this.waiting.set(id, resolve);
        void /** @type {import('playwright-core').CDPSession} */ (workerCdp).send('Target.sendMessageToTarget', { sessionId: /** @type {string} */ (this.session), message });
      });
    },
  };
  const workerCdp = profile ? await bob.context().newCDPSession(bob) : null;
  if (workerCdp) {
    workerCdp.on('Target.receivedMessageFromTarget', (e) => {
      const m = JSON.parse(e.message);
      worker.waiting.get(m.id)?.(m);
      worker.waiting.delete(m.id);
    });
    workerCdp.on('Target.attachedToTarget', (e) => {
      if (e.targetInfo.type !== 'worker' || worker.session) return;
      worker.session = e.sessionId;
      void worker.send('Profiler.enable').then(() => worker.send('Profiler.start'));
    });
    await workerCdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  }
  const fileTicks = process.env.PROFILE ? threadTicks() : null;
  const started = Date.now();
  await card.getByRole('button', { name: 'Accept big.bin' }).click();

  let sending = true;
  const chat = (async () => {
    while (sending) {
      await ping();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  await card.getByText('Received and checked').waitFor({ timeout: 600_000 });
  const seconds = (Date.now() - started) / 1000;
  if (fileTicks) cpuPerMiB('file', fileTicks, SIZE / MIB);
  if (profile) {
    for (const [i, c] of profile.entries()) printProfile(i === 0 ? 'bob' : 'alice', (await c.send('Profiler.stop')).profile);
    if (worker.session) printProfile("bob's file worker", (await worker.send('Profiler.stop')).result.profile);
  }
  sending = false;
  const heapGrowthMiB = await heap.stop();
  await chat;
  const latencies = /** @type {number[]} */ (await bob.evaluate(() => /** @type {any} */ (window).latencies));
  const result = fileResult({
    quick,
    route: 'browser→browser',
    blastWhat: 'same pages',
    sizeMiB: SIZE / MIB,
    seconds,
    blastMiBs,
    blastSizeMiB: BLAST / MIB,
    heapGrowthMiB,
    idle,
    latencies,
  });
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await browser.close();
  await server.stop('SIGKILL');
}
