// Signaling benchmarks: the same workloads against `peerchat serve` and
// PeerJS server (npm `peer`), measured in the same run, each server pinned
// to one core and the load generator to the other where possible; and the
// PeerJS protocol's workloads, with the same client bytes, against PeerJS
// server and peerchat's PeerJS endpoint (`peerchat serve --peerjs`). Prints
// tables with ratios and writes JSON.
//
// usage: node bench/signaling.mjs [--quick] [--out FILE] [--only LIST]
//          [--server LIST] [--clients N] [--peerchat-arg ARG]...
//   --only LIST          run only these of idle,connect,relay,relay-sealed,presence,slow
//                        (slow runs against a fresh server of its own)
//   --server LIST        measure only these of peerchat,peerjs,peerchat-peerjs
//   --clients N          clients held open in `idle`
//   --sources N          connect from 127.0.0.1 to 127.0.0.N
//                        (one address: ~28,000 clients at most)
//   --peerchat-arg ARG   one more flag for `peerchat serve` (repeatable)
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');
/** The value after `--name`, if given. */
function option(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const out = option('--out') ?? path.join(ROOT, 'target', 'bench', 'signaling.json');
const only = option('--only');
const KINDS = ['peerchat', 'peerjs', 'peerchat-peerjs'];
const servers = option('--server')?.split(',') ?? KINDS;
for (const kind of servers) {
  if (!KINDS.includes(kind)) throw new Error(`--server: no server kind ${kind} (${KINDS.join(', ')})`);
}
const peerchatArgs = process.argv.flatMap((a, i) => (a === '--peerchat-arg' ? [process.argv[i + 1]] : []));
const PEERCHAT = process.env.PEERCHAT_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat');
const BENCH = process.env.PEERCHAT_BENCH_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat-bench');
const PEERJS = path.join(ROOT, 'bench', 'node_modules', 'peer', 'dist', 'bin', 'peerjs.js');
const SIZES = quick
  ? { clients: 200, connectClients: 100, connectRounds: 2, pairs: 10, messages: 200, presence: '2,10', slowMessages: 4000 }
  : { clients: 10000, connectClients: 1000, connectRounds: 5, pairs: 50, messages: 2000, presence: '2,10,100', slowMessages: 10000 };
if (option('--clients')) SIZES.clients = Number(option('--clients'));

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

/** The workloads to run, each server starting afresh for `slow` (see below). */
const workloads = (only ?? 'idle,connect,relay,relay-sealed,presence,slow').split(',');
const main = workloads.filter((w) => w !== 'slow');

/**
 * Runs `list` of workloads against `server` and returns the report.
 * @param {string} kind
 * @param {{addr: string, pid: number}} server
 * @param {string[]} list
 */
async function load(kind, server, list) {
  const args = [
    'signaling', '--kind', kind === 'peerchat' ? 'peerchat' : 'peerjs', '--addr', server.addr, '--pid', String(server.pid),
    '--clients', String(SIZES.clients), '--pairs', String(SIZES.pairs),
    '--messages', String(SIZES.messages), '--presence', SIZES.presence,
    '--connect-clients', String(SIZES.connectClients), '--connect-rounds', String(SIZES.connectRounds),
    '--slow-messages', String(SIZES.slowMessages),
    '--only', list.join(','),
    ...(option('--sources') ? ['--sources', option('--sources')] : []),
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

/**
 * As many connections as this machine lets one process hold (the server
 * refuses a --max-connections it cannot hold), up to 20,000.
 */
function maxConnections() {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const hard = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(limits)?.[1] ?? 20000);
  return String(Math.min(20000, hard - 128));
}

/** `peerchat serve` with the rate limits out of the way, and `extra` flags. */
async function startPeerchat(extra) {
  const server = await start(
    PEERCHAT,
    ['serve', '--addr', '127.0.0.1:0', '--no-turn', '--no-mailbox', '--max-connections', maxConnections(),
      '--room-capacity', '200', '--rate-limit', '1000000', '--rate-burst', '1000000',
      '--rate-limit-bytes', '4000000000', '--rate-burst-bytes', '4000000000', ...extra, ...peerchatArgs],
    /http:\/\/127\.0\.0\.1:(\d+)/,
  );
  return { ...server, stop: () => server.proc.kill('SIGTERM') };
}

/** Each server, started afresh, and how to stop it. */
const launch = {
  peerchat: () => startPeerchat([]),
  // The PeerJS endpoint, as PeerJS server is run below.
  'peerchat-peerjs': () => startPeerchat(['--peerjs', '--peerjs-concurrent-limit', '100000']),
  peerjs: async () => {
    const server = await start(
      'node',
      [PEERJS, '--port', String(await freePort()), '--host', '127.0.0.1', '--path', '/peerjs',
        '--concurrent_limit', '100000'],
      /port: (\d+)/,
    );
    // PeerJS server waits on SIGTERM for every connection to close.
    return { ...server, stop: () => server.proc.kill('SIGKILL') };
  },
};

const results = {};
for (const kind of KINDS.filter((k) => servers.includes(k))) {
  // The slow reader runs against a server of its own: what it leaves in a
  // heap (or what others left there) would hide the memory it costs.
  for (const list of [main, workloads.includes('slow') ? ['slow'] : []]) {
    if (list.length === 0) continue;
    const server = await launch[kind]();
    try {
      results[kind] = { ...results[kind], ...(await load(kind, server, list)) };
    } finally {
      server.stop();
    }
  }
}

const j = results.peerjs ?? {};
const ratio = (a, b, higherIsBetter) => (higherIsBetter ? a / b : b / a);
const fixed = (x, digits) => (x === undefined ? '–' : x.toFixed(digits));
/** peerchat's results that the table compares with PeerJS server's. */
let p = results.peerchat ?? {};
/** A row of one figure, `get` reading it from a server's results. */
function row(label, get, digits, higherIsBetter) {
  const a = p.kind ? get(p) : undefined;
  const b = j.kind ? get(j) : undefined;
  const adv = a !== undefined && b !== undefined && higherIsBetter !== undefined
    ? `${ratio(a, b, higherIsBetter).toFixed(2)}×` : '';
  return [label, fixed(a, digits), fixed(b, digits), adv];
}
/** A row of a latency distribution, p50/p99. */
function dist(label, get, digits) {
  const f = (r) => {
    const d = r.kind ? get(r) : undefined;
    return d ? `${d.p50_ms.toFixed(digits)}/${d.p99_ms.toFixed(digits)}` : '–';
  };
  return [label, f(p), f(j), ''];
}
/**
 * The table of `p` against PeerJS server.
 * @param {string} first `p`'s name
 * @param {string} refusal what `p` tells a sender it pushes back on
 */
function table(first, refusal) {
  const rows = [['figure', first, 'PeerJS server', 'peerchat advantage']];
  if (p.idle || j.idle) {
    rows.push(
      row(`RSS per idle connection, ${SIZES.clients} connections (KiB)`, (r) => r.idle?.per_connection_kib, 1, false),
      row(`${SIZES.clients} clients connect (wall ms)`, (r) => r.connect?.wall_ms, 0, false),
      dist('  each connect p50/p99 (ms)', (r) => r.connect?.each, 2),
    );
  }
  if (p.connect_small || j.connect_small) {
    rows.push(
      row(`${SIZES.connectClients} clients connect (wall ms, median of ${SIZES.connectRounds})`,
        (r) => r.connect_small?.wall_ms, 1, false),
      dist('  each connect p50/p99 (ms)', (r) => r.connect_small?.each, 2),
      row('  server CPU per connect (ms)', (r) => r.connect_small?.server_cpu_ms_per_client, 3, false),
      row('  load generator CPU per connect (ms)', (r) => r.connect_small?.client_cpu_ms_per_client, 3),
    );
  }
  if (p.relay_load || j.relay_load) {
    rows.push(
      row('relayed 1 KB msgs per server CPU-second', (r) => r.relay_load?.per_server_cpu_sec, 0, true),
      row('relayed msgs per second (wall)', (r) => r.relay_load?.per_sec, 0, true),
      row('the same offers sealed (v2): per server CPU-second', (r) => r.relay_sealed_load?.per_server_cpu_sec, 0, true),
      dist('one-way latency under load p50/p99 (ms)', (r) => r.relay_load?.latency, 2),
      dist('one-way latency, light load p50/p99 (ms)', (r) => r.relay_light?.latency, 3),
    );
  }
  for (const [i, r] of (p.presence ?? []).entries()) {
    rows.push(dist(`join in a room of ${r.room_size}: all told p50/p99 (ms)`, (x) => x.presence?.[i]?.all_told, 2));
    rows[rows.length - 1][2] = 'no rooms';
  }
  if (p.slow || j.slow) {
    const sent = (p.slow ?? j.slow).sent;
    rows.push(
      row(`client stops reading, ${sent} × 1 KB sent to it: server memory growth (KiB)`, (r) => r.slow?.growth_kib, 0),
      [
        '  what the server did with it',
        ...[p, j].map((r) =>
          r.slow ? `${r.slow.cut_off ? 'cut off' : r.slow.stalled ? 'stalled' : r.slow.pushed_back ? `kept it, refused the sender's excess (${refusal})` : 'kept'}, ${r.slow.delivered} delivered` : '–'),
        '',
      ],
    );
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
}
if (results.peerchat) table('peerchat', 'peer_busy');
if (results['peerchat-peerjs']) {
  p = results['peerchat-peerjs'];
  if (results.peerchat) console.log();
  console.log('The PeerJS protocol, the same client bytes to both:');
  table('peerchat --peerjs', 'EXPIRE');
}
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ quick, sizes: SIZES, results }, null, 2)}\n`);
console.log(`\nwritten to ${path.relative(ROOT, out)}`);
