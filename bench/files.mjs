// File transfer between two Chromium pages in one room: the file's
// throughput (accepted to received and checked, SHA-256 of the whole file
// included) against a bare data-channel blast between the same two pages
// in the same run (32 KiB messages, as a file's pieces travel, with the
// same back-pressure: 256 KiB high, 64 KiB low), the receiving page's JS
// heap while the file arrives, and
// the latency of chat messages sent while a second file of the same size
// is in flight (with its throughput: the chat, ten messages a second
// drawn by both pages, costs CPU the blast does not spend). Run by
// scripts/bench.sh inside the loopback-only network namespace; prints a
// table and writes JSON.
//
// usage: node bench/files.mjs [--quick] [--size MIB] [--rounds N] [--out FILE]
// (PROFILE=1 also prints where each page and the receiving page's file
// worker spent their time meanwhile, and the CPU time per MiB of every
// thread of the browser's processes during the blast and the file
// (PROFILE=cpu: only the CPU time, without the pages' profilers): on a
// machine loaded by other work, the CPU a MiB costs is what bounds it.
// PRIVATE=1: the pages in private contexts; PROFILES=1: each page in a
// regular profile of its own; see below.)
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { MAX_CHUNK } from '../web/js/transfer.js';
import { enter, launchBrowser, launchProfile, openRoom, ROOT, startServer, waitForMembers } from '../tests/e2e/lib/harness.mjs';
import { cpuPerMiB, quantile, recordLatencies, threadTicks, watchHeap } from './measure.mjs';

const quick = process.argv.includes('--quick');
const arg = (/** @type {string} */ name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const out = arg('--out') ?? path.join(ROOT, 'target', 'bench', 'files.json');
const MIB = 1024 * 1024;
const SIZE = Number(arg('--size') ?? (quick ? 12 : 200)) * MIB;
const BLAST = Math.min(SIZE, (quick ? 12 : 100) * MIB);
const ROUNDS = Number(arg('--rounds') ?? (quick ? 1 : 3));

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
// The two pages in one browser, in a regular profile as people's browsers
// are (its Origin Private File System on disk, written from the page's own
// process), as two origins of the same server: alice's page at 127.0.0.1,
// bob's at localhost, so each has storage of its own (identity, history,
// files), as two people do. `PRIVATE=1`: the two pages in private contexts
// of one browser (their Origin Private File System kept in memory behind
// the browser process, which costs the receiving page more, see
// bench/terminal-browser-files.mjs). `PROFILES=1`: each page in a regular
// profile of its own, which takes two browsers, each with its own network
// process: on one 2-core machine that halves the blast and the file alike.
const profiles = mkdtempSync(path.join(tmpdir(), 'peerchat-bench-bb-'));
const shared = !process.env.PRIVATE && !process.env.PROFILES;
const bobOrigin = shared ? server.url.replace('//127.0.0.1:', '//localhost:') : server.url;
if (shared && bobOrigin === server.url) throw new Error(`the server is not at 127.0.0.1: ${server.url}`);
const [aliceBrowser, bobBrowser] = process.env.PROFILES
  ? [await launchProfile(path.join(profiles, 'alice'), server.url), await launchProfile(path.join(profiles, 'bob'), server.url)]
  : shared
    ? Array(2).fill(await launchProfile(path.join(profiles, 'both'), server.url))
    : Array(2).fill(await launchBrowser());
if (shared) await aliceBrowser.grantPermissions(['microphone', 'camera'], { origin: bobOrigin });
try {
  const alice = await openRoom(aliceBrowser, server.url, 'alice');
  const url = new URL(alice.url());
  const link = `${url.origin}${url.pathname}?testhooks#${url.hash.slice(1)}`;
  await alice.goto(link);
  await alice.getByRole('log').getByText('You are back as alice').waitFor();
  const bob = await enter(bobBrowser, bobOrigin, link.replace(server.url, bobOrigin), 'bob');
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
  /**
   * One blast of `bytes` from alice to bob: MiB/s.
   * @param {boolean} profiled
   * @param {number} [bytes]
   */
  const blast = async (profiled, bytes = BLAST) => {
    const blastTicks = profiled && process.env.PROFILE ? threadTicks() : null;
    const blastMiBs = await alice.evaluate(async ({ total, size }) => {
      const files = /** @type {any} */ (window).peerchatFiles;
      const link = [...files.room.members.values()][0].link;
      const ch = /** @type {RTCDataChannel} */ (link.pc.createDataChannel('blast', { ordered: true, protocol: String(total) }));
      ch.binaryType = 'arraybuffer';
      await new Promise((resolve) => ch.addEventListener('open', resolve, { once: true }));
      ch.bufferedAmountLowThreshold = 64 * 1024;
      const chunk = new Uint8Array(size + 9);
      const done = new Promise((resolve) => ch.addEventListener('message', resolve, { once: true }));
      const start = performance.now();
      let sent = 0;
      while (sent < total) {
        while (ch.bufferedAmount < 256 * 1024 && sent < total) {
          ch.send(chunk.subarray(0, 9 + Math.min(size, total - sent)));
          sent += Math.min(size, total - sent);
        }
        if (sent < total) await new Promise((resolve) => ch.addEventListener('bufferedamountlow', resolve, { once: true }));
      }
      await done;
      const seconds = (performance.now() - start) / 1000;
      ch.close();
      return total / (1024 * 1024) / seconds;
    }, { total: bytes, size: MAX_CHUNK });

    if (blastTicks) cpuPerMiB('blast', blastTicks, BLAST / MIB);
    return blastMiBs;
  };

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

  /**
   * Offers a file of SIZE bytes from alice's page and times bob's page
   * fetching it, from Accept to "Received and checked"; with `chatting`,
   * alice sends a timed chat message every 100 ms meanwhile.
   * @param {string} name
   * @param {boolean} chatting
   * @param {boolean} profiled
   */
  const transfer = async (name, chatting, profiled) => {
    // The file, made in the sender's page (a Blob of one repeated chunk
    // would hash the same piece again and again: each MiB differs).
    await alice.evaluate(
      ([size, fileName]) => {
        const parts = [];
        const mib = 1024 * 1024;
        for (let at = 0; at < size; at += mib) {
          const part = new Uint8Array(Math.min(mib, size - at));
          crypto.getRandomValues(part.subarray(0, Math.min(65536, part.length)));
          part[part.length - 1] = at / mib;
          part[0] = fileName.length;
          parts.push(part);
        }
        const dt = new DataTransfer();
        dt.items.add(new File(parts, fileName));
        document.getElementById('room-view')?.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      },
      /** @type {[number, string]} */ ([SIZE, name]),
    );
    const card = bob.locator('.file-card', { hasText: name });
    await card.getByRole('button', { name: `Accept ${name}` }).waitFor({ timeout: 120_000 });
    const heap = await watchHeap(bob);
    const profiling = profiled && process.env.PROFILE;
    const sampling = profiling && process.env.PROFILE !== 'cpu';
    const profile = sampling
      ? await Promise.all(
          [bob, alice].map(async (p) => {
            const c = await p.context().newCDPSession(p);
            await c.send('Profiler.enable');
            await c.send('Profiler.start');
            return c;
          }),
        )
      : null;
    // The receiving page's file worker, profiled through the page's
    // DevTools session, attached to it.
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
          void (/** @type {import('playwright-core').CDPSession} */ (workerCdp).send('Target.sendMessageToTarget', { sessionId: /** @type {string} */ (this.session), message }));
        });
      },
    };
    const workerCdp = sampling ? await bob.context().newCDPSession(bob) : null;
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
    const fileTicks = profiling ? threadTicks() : null;
    const started = Date.now();
    await card.getByRole('button', { name: `Accept ${name}` }).click();

    let sending = chatting;
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
    const heapGrowth = await heap.stop();
    sending = false;
    await chat;
    return { mibS: SIZE / MIB / seconds, heapGrowth };
  };

  // Rounds of a blast then the file alone (the machine's load changes
  // within a run: each file against the blast just before it), then
  // another file while alice chats. Between rounds, bob's copy goes and
  // alice withdraws her offer, so that neither holds every round's file.
  /** @type {{blast_mib_s: number, file_mib_s: number, ratio: number, heap_growth_mib: number}[]} */
  const rounds = [];
  // The connection's first bytes go slower while its congestion window
  // opens: a blast not counted first.
  await blast(false, 8 * MIB);
  for (let r = 0; r < ROUNDS; r += 1) {
    const blastMiBs = await blast(r === 0);
    const alone = await transfer(`big-${r + 1}.bin`, false, r === 0);
    rounds.push({ blast_mib_s: blastMiBs, file_mib_s: alone.mibS, ratio: alone.mibS / blastMiBs, heap_growth_mib: alone.heapGrowth });
    await bob.evaluate(() => /** @type {any} */ (window).peerchatFiles.clearAll());
    await alice.evaluate(() => {
      const files = /** @type {any} */ (window).peerchatFiles;
      for (const fid of files.sent.keys()) files.cancel(fid);
    });
  }
  const chatting = await transfer('while-chatting.bin', true, false);
  const latencies = /** @type {number[]} */ (await bob.evaluate(() => /** @type {any} */ (window).latencies));
  const median = (/** @type {number[]} */ xs) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  const blastMiBs = median(rounds.map((r) => r.blast_mib_s));
  const result = {
    quick,
    size_mib: SIZE / MIB,
    rounds,
    file_mib_s: median(rounds.map((r) => r.file_mib_s)),
    blast_mib_s: blastMiBs,
    blast_size_mib: BLAST / MIB,
    ratio: median(rounds.map((r) => r.ratio)),
    file_while_chatting_mib_s: chatting.mibS,
    ratio_while_chatting: chatting.mibS / blastMiBs,
    heap_growth_mib: Math.max(chatting.heapGrowth, ...rounds.map((r) => r.heap_growth_mib)),
    chat_idle: { count: idle.length, p50_ms: quantile(idle, 0.5), p95_ms: quantile(idle, 0.95) },
    chat_during_transfer: {
      count: latencies.length,
      p50_ms: quantile(latencies, 0.5),
      p95_ms: quantile(latencies, 0.95),
      max_ms: quantile(latencies, 1),
    },
  };
  for (const [i, r] of rounds.entries()) {
    console.log(
      `round ${i + 1}: blast ${BLAST / MIB} MiB ${r.blast_mib_s.toFixed(1)} MiB/s, then file ${SIZE / MIB} MiB browser→browser ` +
        `${r.file_mib_s.toFixed(1)} MiB/s (accepted to received and checked): ${r.ratio.toFixed(2)}×`,
    );
  }
  console.log(`ratio (median of ${rounds.length}): ${result.ratio.toFixed(2)}×`);
  console.log(
    `another file of ${SIZE / MIB} MiB while alice sends a chat message every 100 ms: ${chatting.mibS.toFixed(1)} MiB/s ` +
      `(${result.ratio_while_chatting.toFixed(2)}× the median blast)`,
  );
  console.log(`receiving page's JS heap grew by at most ${result.heap_growth_mib.toFixed(1)} MiB`);
  console.log(`chat with nothing else going on: p50 ${result.chat_idle.p50_ms?.toFixed(1)} ms, p95 ${result.chat_idle.p95_ms?.toFixed(1)} ms`);
  console.log(
    `chat while it was in flight: ${latencies.length} messages, p50 ${result.chat_during_transfer.p50_ms?.toFixed(1)} ms, ` +
      `p95 ${result.chat_during_transfer.p95_ms?.toFixed(1)} ms, max ${result.chat_during_transfer.max_ms?.toFixed(1)} ms`,
  );
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  for (const browser of new Set([aliceBrowser, bobBrowser])) await browser.close();
  await server.stop('SIGKILL');
  rmSync(profiles, { recursive: true, force: true });
}
