// File transfer benchmarks, terminal to terminal. Run by scripts/bench.sh
// inside the loopback-only network namespace; prints a table and writes
// JSON.
//
// 1. Throughput: peerchat-bench moves the same bytes twice in one run, as a
//    bare data-channel blast between two webrtc-rs links and as a file
//    offered by one engine and fetched by another (hash list, pieces
//    checked, written to disk, whole file checked): MiB/s and their ratio,
//    and the CPU time the process (both ends) spent per MiB on each. In
//    between, the same blast with its receiver hashing each piece and the
//    whole of what arrives, as a fetcher must: what the checks alone leave
//    of the bare blast on these stacks and this machine.
// 2. Memory: two `peerchat chat` processes in line mode, one sending a file
//    of 1 GiB (`--quick`: 8 MiB) with /send, the other fetching it; each
//    process's resident memory is sampled from /proc during the transfer,
//    and its growth over what it held once connected is reported.
//
// usage: node bench/terminal-files.mjs [--quick] [--out FILE]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { LineClient } from '../tests/e2e/lib/cli.mjs';
import { BIN, ROOT, startServer } from '../tests/e2e/lib/harness.mjs';

const run = promisify(execFile);
const quick = process.argv.includes('--quick');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : path.join(ROOT, 'target', 'bench', 'terminal-files.json');
const BENCH = process.env.PEERCHAT_BENCH_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat-bench');
const THROUGHPUT_BYTES = quick ? 4 << 20 : 256 << 20;
const MEMORY_BYTES = quick ? 8 << 20 : 1 << 30;

/** @param {number} pid resident set size in KiB, from /proc */
function rssKib(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = status.split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0);
}

/** @param {string} line */
function json(line) {
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}

const server = await startServer();
try {
  // 1. Throughput against the bare blast, one run.
  const link = `${server.url}/r/bench-files-aaaaaaaaaaaaaa#${randomBytes(32).toString('base64url')}`;
  const { stdout } = await run(BENCH, ['files', link, '--bytes', String(THROUGHPUT_BYTES)], {
    maxBuffer: 1 << 20,
  });
  const throughput = JSON.parse(stdout);

  // 2. Memory of two terminal processes moving a large file.
  const dir = mkdtempSync(path.join(tmpdir(), 'peerchat-bench-files-'));
  const memory = await (async () => {
    const file = path.join(dir, 'big.bin');
    // A sparse file: the sender reads zeros (hashing and sending them costs
    // what any bytes do); the receiver writes it all to disk.
    writeFileSync(file, '');
    truncateSync(file, MEMORY_BYTES);
    const args = (/** @type {string} */ name) => [
      '--name',
      name,
      '--json',
      '--no-history',
      '--identity-file',
      path.join(dir, `${name}.key`),
      '--download-dir',
      path.join(dir, `${name}-in`),
      '--accept-files',
      '0',
    ];
    const sender = new LineClient('sender', BIN, ['chat', '--server', server.url, ...args('sender')]);
    let fetcher;
    try {
      await sender.waitFor((l) => l.startsWith('new room: '), 'err');
      const room = sender.err.find((l) => l.startsWith('new room: '))?.split(' ')[2] ?? '';
      fetcher = new LineClient('fetcher', BIN, ['chat', room, ...args('fetcher')]);
      sender.say('ready?');
      await fetcher.waitFor((l) => json(l)?.event === 'message' && json(l).text === 'ready?');
      const base = { sender: rssKib(sender.proc.pid ?? 0), fetcher: rssKib(fetcher.proc.pid ?? 0) };
      const peak = { ...base };
      const sampler = setInterval(() => {
        try {
          peak.sender = Math.max(peak.sender, rssKib(sender.proc.pid ?? 0));
          peak.fetcher = Math.max(peak.fetcher, rssKib(fetcher?.proc.pid ?? 0));
        } catch {
          // A process ended; the transfer's end is reported below.
        }
      }, 50);
      sender.say(`/send ${file}`);
      await fetcher.waitFor((l) => json(l)?.event === 'file_offered');
      const started = performance.now();
      fetcher.say('/accept');
      const deadline = Date.now() + 3_600_000;
      while (!fetcher.out.some((l) => json(l)?.event === 'file_saved')) {
        if (fetcher.out.some((l) => json(l)?.event === 'file_failed')) throw new Error('the transfer failed');
        if (Date.now() > deadline) throw new Error('the transfer did not finish');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const ms = performance.now() - started;
      clearInterval(sampler);
      return {
        bytes: MEMORY_BYTES,
        ms,
        mib_per_s: MEMORY_BYTES / (1 << 20) / (ms / 1000),
        sender_rss_growth_mib: (peak.sender - base.sender) / 1024,
        fetcher_rss_growth_mib: (peak.fetcher - base.fetcher) / 1024,
        sender_rss_base_mib: base.sender / 1024,
        fetcher_rss_base_mib: base.fetcher / 1024,
      };
    } finally {
      sender.kill();
      fetcher?.kill();
    }
  })();
  rmSync(dir, { recursive: true, force: true });

  const mib = (/** @type {number} */ b) => `${(b / (1 << 20)).toFixed(0)} MiB`;
  console.table([
    {
      'terminal → terminal': `bare data channel (${mib(throughput.bytes)})`,
      'MiB/s': throughput.blast_mib_per_s.toFixed(1),
      'CPU ms per MiB (both ends)': throughput.blast_cpu_ms_per_mib.toFixed(1),
    },
    {
      'terminal → terminal': `bare data channel, receiver hashing pieces and whole (${mib(throughput.bytes)})`,
      'MiB/s': throughput.checked_blast_mib_per_s.toFixed(1),
      'CPU ms per MiB (both ends)': throughput.checked_blast_cpu_ms_per_mib.toFixed(1),
      'vs bare': `${(throughput.checked_blast_mib_per_s / throughput.blast_mib_per_s).toFixed(2)}×`,
    },
    {
      'terminal → terminal': `file transfer (${mib(throughput.bytes)})`,
      'MiB/s': throughput.file_mib_per_s.toFixed(1),
      'CPU ms per MiB (both ends)': throughput.file_cpu_ms_per_mib.toFixed(1),
      'vs bare': `${throughput.ratio.toFixed(2)}×`,
      'vs hashing': `${throughput.ratio_to_checked.toFixed(2)}×`,
    },
  ]);
  console.table([
    {
      file: mib(memory.bytes),
      'MiB/s': memory.mib_per_s.toFixed(1),
      'sender RSS growth (MiB)': memory.sender_rss_growth_mib.toFixed(1),
      'fetcher RSS growth (MiB)': memory.fetcher_rss_growth_mib.toFixed(1),
    },
  ]);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ quick, throughput, memory }, null, 2)}\n`);
} finally {
  await server.stop('SIGKILL');
}
