// Signaling benchmarks: the same workloads against `peerchat serve` and
// PeerJS server (npm `peer`), measured in the same run, each server pinned
// to one core and the load generator to the other where possible. Prints a
// table with ratios and writes JSON.
//
// usage: node bench/signaling.mjs [--quick] [--out FILE]
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : path.join(ROOT, 'target', 'bench', 'signaling.json');
const PEERCHAT = process.env.PEERCHAT_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat');
const BENCH = process.env.PEERCHAT_BENCH_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat-bench');
const PEERJS = path.join(ROOT, 'bench', 'node_modules', 'peer', 'dist', 'bin', 'peerjs.js');
const SIZES = quick
  ? { clients: 200, pairs: 10, messages: 200, presence: '2,10' }
  : { clients: 10000, pairs: 50, messages: 2000, presence: '2,10,100' };

/** `taskset -c CPU` when there are two cores or more. */
async function pinned(cpu, command, args) {
  try {
    await run('taskset', ['-c', '0', 'true']);
    return ['taskset', ['-c', String(cpu), command, ...args]];
  } catch {
    return [command, args];
  }
}

/** Starts a server and resolves with its pid and address once it listens. */
async function start(command, args, pattern) {
  const [cmd, argv] = await pinned(0, command, args);
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start`)), 20_000);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = pattern.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  proc.stdout.resume();
  return { proc, pid: proc.pid, addr: `127.0.0.1:${port}` };
}

async function load(kind, server) {
  const args = [
    'signaling', '--kind', kind, '--addr', server.addr, '--pid', String(server.pid),
    '--clients', String(SIZES.clients), '--pairs', String(SIZES.pairs),
    '--messages', String(SIZES.messages), '--presence', SIZES.presence,
  ];
  const [cmd, argv] = await pinned(1, BENCH, args);
  const { stdout } = await run(cmd, argv, { maxBuffer: 1 << 20 });
  return JSON.parse(stdout);
}

/** A port free right now (PeerJS's command line cannot pick one itself). */
function freePort() {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address());
      probe.close(() => resolve(port));
    });
  });
}

const results = {};
{
  const server = await start(
    PEERCHAT,
    ['serve', '--addr', '127.0.0.1:0', '--no-turn', '--no-mailbox', '--max-connections', '20000',
      '--room-capacity', '200', '--rate-limit', '1000000', '--rate-burst', '1000000',
      '--rate-limit-bytes', '4000000000', '--rate-burst-bytes', '4000000000'],
    /http:\/\/127\.0\.0\.1:(\d+)/,
  );
  try {
    results.peerchat = await load('peerchat', server);
  } finally {
    server.proc.kill('SIGTERM');
  }
}
{
  const server = await start(
    'node',
    [PEERJS, '--port', String(await freePort()), '--host', '127.0.0.1', '--concurrent_limit', '100000'],
    /port: (\d+)/,
  );
  try {
    results.peerjs = await load('peerjs', server);
  } finally {
    // PeerJS server waits on SIGTERM for every connection to close.
    server.proc.kill('SIGKILL');
  }
}

const p = results.peerchat;
const j = results.peerjs;
const ratio = (a, b, higherIsBetter) => (higherIsBetter ? a / b : b / a);
const rows = [
  ['figure', 'peerchat', 'PeerJS server', 'peerchat advantage'],
  ['RSS per idle connection (KiB)', p.idle.per_connection_kib.toFixed(1), j.idle.per_connection_kib.toFixed(1),
    `${ratio(p.idle.per_connection_kib, j.idle.per_connection_kib, false).toFixed(2)}×`],
  [`${SIZES.clients} clients connect (wall ms)`, p.connect.wall_ms.toFixed(0), j.connect.wall_ms.toFixed(0),
    `${ratio(p.connect.wall_ms, j.connect.wall_ms, false).toFixed(2)}×`],
  ['connect p99 (ms)', p.connect.each.p99_ms.toFixed(2), j.connect.each.p99_ms.toFixed(2), ''],
  ['relayed 1 KB msgs per server CPU-second', p.relay_load.per_server_cpu_sec.toFixed(0), j.relay_load.per_server_cpu_sec.toFixed(0),
    `${ratio(p.relay_load.per_server_cpu_sec, j.relay_load.per_server_cpu_sec, true).toFixed(2)}×`],
  ['relayed msgs per second (wall)', p.relay_load.per_sec.toFixed(0), j.relay_load.per_sec.toFixed(0),
    `${ratio(p.relay_load.per_sec, j.relay_load.per_sec, true).toFixed(2)}×`],
  ['one-way latency under load p50/p99 (ms)', `${p.relay_load.latency.p50_ms.toFixed(2)}/${p.relay_load.latency.p99_ms.toFixed(2)}`,
    `${j.relay_load.latency.p50_ms.toFixed(2)}/${j.relay_load.latency.p99_ms.toFixed(2)}`, ''],
  ['one-way latency, light load p50/p99 (ms)', `${p.relay_light.latency.p50_ms.toFixed(3)}/${p.relay_light.latency.p99_ms.toFixed(3)}`,
    `${j.relay_light.latency.p50_ms.toFixed(3)}/${j.relay_light.latency.p99_ms.toFixed(3)}`, ''],
  ...p.presence.map((r) => [`join in a room of ${r.room_size}: all told p50/p99 (ms)`,
    `${r.all_told.p50_ms.toFixed(2)}/${r.all_told.p99_ms.toFixed(2)}`, 'no rooms', '']),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ quick, sizes: SIZES, results }, null, 2)}\n`);
console.log(`\nwritten to ${path.relative(ROOT, out)}`);
