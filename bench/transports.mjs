// Signaling over each transport, in one run: WebSocket and long polling,
// each without and with TLS (a certificate made here with openssl), against
// fresh `peerchat serve` processes pinned to one core, the load generator
// to the other where possible. Prints a table and writes JSON.
//
// usage: node bench/transports.mjs [--quick] [--out FILE]
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : path.join(ROOT, 'target', 'bench', 'transports.json');
const PEERCHAT = process.env.PEERCHAT_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat');
const BENCH = process.env.PEERCHAT_BENCH_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat-bench');
const SIZES = quick ? { joins: 20, messages: 200, handshakes: 20 } : { joins: 100, messages: 2000, handshakes: 500 };

/** `taskset -c CPU` when there are two cores or more. */
async function pinned(cpu, command, args) {
  try {
    await run('taskset', ['-c', '0', 'true']);
    return ['taskset', ['-c', String(cpu), command, ...args]];
  } catch {
    return [command, args];
  }
}

/** Starts `peerchat serve` with `extra` flags; resolves once it listens. */
async function startServer(extra) {
  const [cmd, argv] = await pinned(0, PEERCHAT, [
    'serve', '--addr', '127.0.0.1:0', '--no-turn', '--no-mailbox',
    '--rate-limit', '1000000', '--rate-burst', '1000000',
    '--rate-limit-bytes', '4000000000', '--rate-burst-bytes', '4000000000',
    '--join-burst-per-address', '100000', ...extra,
  ]);
  const proc = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('peerchat did not start')), 20_000);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /https?:\/\/(127\.0\.0\.1:\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  proc.stdout.resume();
  return { proc, addr };
}

const dir = await mkdtemp(path.join(tmpdir(), 'peerchat-bench-tls-'));
const cert = path.join(dir, 'cert.pem');
const key = path.join(dir, 'key.pem');
await run('openssl', [
  'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
  '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=peerchat bench',
  '-addext', 'subjectAltName=IP:127.0.0.1',
  '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth',
]);

const results = [];
try {
  for (const tls of [false, true]) {
    for (const transport of ['ws', 'poll']) {
      // A fresh server each time, so that no run pays for another's leftovers.
      const server = await startServer(tls ? ['--tls-cert', cert, '--tls-key', key] : []);
      try {
        const [cmd, argv] = await pinned(1, BENCH, [
          'transports', '--transport', transport, '--addr', server.addr, '--pid', String(server.proc.pid),
          '--joins', String(SIZES.joins), '--messages', String(SIZES.messages),
          '--handshakes', String(SIZES.handshakes), ...(tls ? ['--tls-ca', cert] : []),
        ]);
        const { stdout } = await run(cmd, argv, { maxBuffer: 1 << 20 });
        results.push(JSON.parse(stdout));
      } finally {
        server.proc.kill('SIGTERM');
      }
    }
  }
} finally {
  // The throwaway certificate and key go with the run.
  await rm(dir, { recursive: true, force: true });
}

const name = (r) => `${r.transport === 'ws' ? 'WebSocket' : 'long polling'}${r.tls ? ' + TLS' : ''}`;
const dist = (d, digits) => `${d.p50_ms.toFixed(digits)}/${d.p99_ms.toFixed(digits)}`;
const rows = [[
  'transport', 'join p50/p99 (ms)', 'server CPU per join (ms)', 'relayed msgs per server CPU-s',
  'server CPU per msg (µs)', 'relay latency p50/p99 (ms)', 'TLS handshake p50/p99 (ms)', 'server CPU per handshake (ms)',
]];
for (const r of results) {
  rows.push([
    name(r), dist(r.join, 2), r.server_cpu_ms_per_join.toFixed(3), r.relay.per_server_cpu_sec.toFixed(0),
    r.relay.server_cpu_us_per_message.toFixed(1), dist(r.relay.latency, 2),
    r.handshake ? dist(r.handshake.each, 2) : '–', r.handshake ? r.handshake.server_cpu_ms.toFixed(3) : '–',
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ quick, sizes: SIZES, results }, null, 2)}\n`);
console.log(`\nwritten to ${path.relative(ROOT, out)}`);
