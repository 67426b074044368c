// File transfer from a terminal to a browser: `peerchat chat` in line mode
// offers a file (/send) to a room where a Chromium page accepts it. The
// file's throughput (accepted to received and checked, as the page's file
// card says) against a bare data-channel blast between the same two stacks
// in the same run (peerchat-bench page-blast: a webrtc-rs link, made as the
// terminal client makes its links, sending 32 KiB messages with the file
// sender's back-pressure, to a peer connection in the receiving page), the
// receiving page's JS heap while the file arrives, then another file of
// the same size while the terminal sends a chat message every 100 ms: the
// messages' latency, and that file's throughput. Run by scripts/bench.sh
// inside the loopback-only network namespace; prints its figures and writes
// JSON.
//
// usage: node bench/terminal-browser-files.mjs [--quick] [--size MIB] [--out FILE]
// (PROFILE=1 also prints the CPU time per MiB of every thread of the
// browser's, the terminal client's and peerchat-bench's processes during
// the blast and during the file; PRIVATE=1 opens the page in a private
// context instead of a regular profile.)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { MAX_CHUNK } from '../web/js/transfer.js';
import { LineClient } from '../tests/e2e/lib/cli.mjs';
import { BIN, launchBrowser, launchProfile, openRoom, ROOT, startServer, waitForMembers } from '../tests/e2e/lib/harness.mjs';
import { cpuPerMiB, fileResult, recordLatencies, threadTicks, watchHeap } from './measure.mjs';

const quick = process.argv.includes('--quick');
const arg = (/** @type {string} */ name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const out = arg('--out') ?? path.join(ROOT, 'target', 'bench', 'terminal-browser-files.json');
const BENCH = process.env.PEERCHAT_BENCH_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat-bench');
const MIB = 1024 * 1024;
// Over the page's 10 MiB auto-accept limit either way: the page accepts it.
const SIZE = Number(arg('--size') ?? (quick ? 12 : 200)) * MIB;
const BLAST = Math.min(SIZE, (quick ? 4 : 100) * MIB);
// Payload bytes per message, as a transfer channel carries a file's pieces.
const CHUNK = MAX_CHUNK;

/**
 * The bare blast: peerchat-bench's link offers, the page answers with a
 * peer connection of its own and counts the messages on the transfer
 * channel, then says `done`. MiB/s as peerchat-bench timed it (first
 * message sent to `done` received).
 * @param {import('playwright-core').Page} page
 * @param {number} bytes
 * @param {Map<string, number> | null} ticks when profiling, the threads' CPU time before
 */
async function blast(page, bytes, ticks) {
  const proc = spawn(BENCH, ['page-blast', '--bytes', String(bytes)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const line = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('peerchat-bench page-blast ended early');
    return JSON.parse(value);
  };
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  try {
    const offer = await line();
    const answer = await page.evaluate(
      async ({ offer, count }) => {
        const pc = new RTCPeerConnection();
        Object.assign(window, { blastPc: pc });
        pc.addEventListener('datachannel', ({ channel }) => {
          if (channel.label !== 'file') return;
          channel.binaryType = 'arraybuffer';
          let got = 0;
          channel.addEventListener('message', () => {
            got += 1;
            if (got === count) channel.send('done');
          });
        });
        await pc.setRemoteDescription(offer.description);
        await pc.setLocalDescription();
        await new Promise((resolve) => {
          const done = () => pc.iceGatheringState === 'complete' && resolve(undefined);
          pc.addEventListener('icegatheringstatechange', done);
          done();
        });
        return { sid: offer.sid, description: pc.localDescription?.toJSON() };
      },
      { offer, count: Math.ceil(bytes / CHUNK) },
    );
    proc.stdin.write(`${JSON.stringify(answer)}\n`);
    const report = await line();
    // It stays until its standard input closes: its CPU time counts.
    if (ticks) cpuPerMiB('blast', ticks, bytes / MIB);
    proc.stdin.end();
    if ((await exited) !== 0) throw new Error('peerchat-bench page-blast failed');
    return report;
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    await page.evaluate(() => /** @type {any} */ (window).blastPc?.close());
  }
}

const server = await startServer();
const dir = mkdtempSync(path.join(tmpdir(), 'peerchat-bench-tb-'));
// The page in a regular profile, as people's browsers are (`PRIVATE=1`: a
// private context, where the Origin Private File System is kept in memory
// behind the browser process).
const browser = process.env.PRIVATE ? await launchBrowser() : await launchProfile(path.join(dir, 'profile'), server.url);
/** @type {LineClient | null} */
let alice = null;
try {
  const bob = await openRoom(browser, server.url, 'bob');

  const bare = await blast(bob, BLAST, process.env.PROFILE ? threadTicks() : null);

  // The files, each MiB different (a repeated MiB would let a cache or the
  // hashing look better than it is).
  const made = (/** @type {string} */ name) => {
    const file = path.join(dir, name);
    const fd = openSync(file, 'w');
    const block = randomBytes(MIB);
    for (let at = 0; at < SIZE; at += MIB) {
      block[MIB - 1] = at / MIB;
      writeSync(fd, block, 0, Math.min(MIB, SIZE - at));
    }
    closeSync(fd);
    return file;
  };
  const file = made('big.bin');
  const chatFile = made('while-chatting.bin');

  alice = new LineClient('alice', BIN, [
    'chat',
    bob.url(),
    '--name',
    'alice',
    '--json',
    '--no-history',
    '--identity-file',
    path.join(dir, 'alice.key'),
    '--download-dir',
    path.join(dir, 'alice-in'),
  ]);
  await waitForMembers(bob, ['alice']);

  // Chat latency: the terminal's messages, timed at the page (the same
  // clock: both read the system's), first with nothing else going on
  // (20 messages, 5 in quick mode), then while the file is in flight.
  await recordLatencies(bob);
  const terminal = alice;
  const ping = () => terminal.say(`lat ${performance.timeOrigin + performance.now()}`);
  const idleCount = quick ? 5 : 20;
  for (let i = 0; i < idleCount; i += 1) {
    ping();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await bob.waitForFunction((n) => /** @type {any} */ (window).latencies.length >= n, idleCount);
  const idle = /** @type {number[]} */ (await bob.evaluate(() => /** @type {any} */ (window).latencies.splice(0)));

  /**
   * Offers `filePath` from the terminal and accepts it in the page: seconds
   * from Accept to "Received and checked", and the page's heap growth
   * meanwhile. With `chatting`, the terminal sends a chat message every
   * 100 ms until then.
   * @param {string} filePath
   * @param {boolean} chatting
   * @param {boolean} profiled
   */
  const transfer = async (filePath, chatting, profiled) => {
    const name = path.basename(filePath);
    terminal.say(`/send ${filePath}`);
    const card = bob.locator('.file-card', { hasText: name });
    await card.getByRole('button', { name: `Accept ${name}` }).waitFor({ timeout: 120_000 });
    const heap = await watchHeap(bob);
    const fileTicks = profiled ? threadTicks() : null;
    const started = Date.now();
    await card.getByRole('button', { name: `Accept ${name}` }).click();
    let complete = false;
    let pinged = 0;
    const chat = (async () => {
      while (chatting && !complete) {
        ping();
        pinged += 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await card.getByText('Received and checked').waitFor({ timeout: 600_000 });
    const seconds = (Date.now() - started) / 1000;
    complete = true;
    if (fileTicks) cpuPerMiB(chatting ? 'file while chatting' : 'file', fileTicks, SIZE / MIB);
    const heapGrowthMiB = await heap.stop();
    await chat;
    return { seconds, heapGrowthMiB, pinged };
  };
  const alone = await transfer(file, false, Boolean(process.env.PROFILE));
  const chatting = await transfer(chatFile, true, false);
  const { seconds } = alone;
  const heapGrowthMiB = Math.max(alone.heapGrowthMiB, chatting.heapGrowthMiB);
  const { pinged } = chatting;
  // The last messages sent may still be on their way.
  await bob.waitForFunction((n) => /** @type {any} */ (window).latencies.length >= n, pinged);
  const latencies = /** @type {number[]} */ (await bob.evaluate(() => /** @type {any} */ (window).latencies));
  const result = fileResult({
    quick,
    route: 'terminal→browser',
    blastWhat: 'webrtc-rs → the same page',
    sizeMiB: SIZE / MIB,
    seconds,
    blastMiBs: bare.mib_per_s,
    blastSizeMiB: BLAST / MIB,
    heapGrowthMiB,
    idle,
    latencies,
    chattingSeconds: chatting.seconds,
  });
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  alice?.kill();
  await browser.close();
  await server.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
