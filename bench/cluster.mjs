// Several servers sharing rooms through Redis, in one run: one server in
// memory (no Redis), one server with Redis, two servers, three servers.
// For each: join p50/p99, signal latency within a server and across
// servers (light load), and relayed messages per CPU-second counting every
// process (the servers and Redis). The servers and Redis share one core
// where there are two, the load generator the other. Prints a table and
// writes JSON.
//
// usage: node bench/cluster.mjs [--quick] [--out FILE]
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : path.join(ROOT, 'target', 'bench', 'cluster.json');
const PEERCHAT = process.env.PEERCHAT_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat');
const BENCH = process.env.PEERCHAT_BENCH_BIN ?? path.join(ROOT, 'target', 'release', 'peerchat-bench');
const SIZES = quick
  ? { joins: 20, signals: 40, pairs: 4, messages: 100 }
  : { joins: 400, signals: 1000, pairs: 20, messages: 5000 };

/** `taskset -c CPU` when there are two cores or more. */
async function pinned(cpu, command, args) {
  try {
    await run('taskset', ['-c', '0', 'true']);
    return ['taskset', ['-c', String(cpu), command, ...args]];
  } catch {
    return [command, args];
  }
}

async function startRedis(dir) {
  const socket = path.join(dir, 'redis.sock');
  const [cmd, argv] = await pinned(0, 'redis-server', [
    '--port', '0', '--save', '', '--appendonly', 'no', '--unixsocket', socket, '--dir', dir,
  ]);
  const proc = spawn(cmd, argv, { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const c = net.connect(socket, () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 500) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, url: `unix://${socket}`, socket };
}

/**
 * Calls of each Redis command since it started (`INFO commandstats`), or
 * null without redis-cli.
 * @param {string} socket
 */
async function commandCalls(socket) {
  try {
    const { stdout } = await run('redis-cli', ['-s', socket, 'INFO', 'commandstats']);
    /** @type {Record<string, number>} */
    const calls = {};
    for (const m of stdout.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
    return calls;
  } catch {
    return null;
  }
}

async function startServer(args) {
  const [cmd, argv] = await pinned(0, PEERCHAT, [
    'serve', '--addr', '127.0.0.1:0', '--no-turn', '--no-mailbox', '--room-capacity', '200',
    '--rate-limit', '1000000', '--rate-burst', '1000000',
    '--rate-limit-bytes', '4000000000', '--rate-burst-bytes', '4000000000', ...args,
  ]);
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('peerchat did not start')), 20_000);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /http:\/\/(127\.0\.0\.1:\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  proc.stdout.resume();
  // A server with Redis serves once its first beat went through.
  for (let i = 0; args.length > 0; i++) {
    const health = await (await fetch(`http://${addr}/healthz`)).json();
    if (health.serving) break;
    if (i > 500) throw new Error('peerchat never served');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, addr };
}

const setups = [
  { name: 'one server, in memory', servers: 1, redis: false },
  { name: 'one server, Redis', servers: 1, redis: true },
  { name: 'two servers', servers: 2, redis: true },
  { name: 'three servers', servers: 3, redis: true },
];

const results = [];
for (const setup of setups) {
  const dir = await mkdtemp(path.join(tmpdir(), 'peerchat-bench-redis-'));
  const procs = [];
  try {
    const redis = setup.redis ? await startRedis(dir) : null;
    const servers = [];
    for (let i = 0; i < setup.servers; i++) {
      const server = await startServer(redis ? ['--redis-url', redis.url] : []);
      procs.push(server.proc);
      servers.push(server);
    }
    // Servers first, then Redis: the order of the CPU figures.
    if (redis) procs.push(redis.proc);
    const [cmd, argv] = await pinned(1, BENCH, [
      'cluster',
      '--addrs', servers.map((s) => s.addr).join(','),
      '--pids', procs.map((p) => p.pid).join(','),
      '--joins', String(SIZES.joins), '--signals', String(SIZES.signals),
      '--pairs', String(SIZES.pairs), '--messages', String(SIZES.messages),
    ]);
    const { stdout } = await run(cmd, argv, { maxBuffer: 1 << 20 });
    // Every command of the run (joins, the light-load signals and the
    // load), against the load's messages: the load is nearly all of it.
    const calls = redis ? await commandCalls(redis.socket) : null;
    results.push({ ...setup, ...JSON.parse(stdout), redis_calls: calls });
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

const d = (x, digits = 2) => (x ? `${x.p50_ms.toFixed(digits)}/${x.p99_ms.toFixed(digits)}` : '–');
const base = results[0].relay.per_cpu_sec;
const rows = [['setup', 'join p50/p99 ms', 'same server p50/p99 ms', 'across p50/p99 ms', 'via a third p50/p99 ms', 'relayed/CPU-s', 'cost vs memory', 'under load p50/p99 ms']];
for (const r of results) {
  rows.push([
    r.name, d(r.join), d(r.same_node, 3), d(r.cross_node, 3), d(r.via_third, 3),
    r.relay.per_cpu_sec.toFixed(0), `${(base / r.relay.per_cpu_sec).toFixed(2)}×`, d(r.relay.latency),
  ]);
}
for (const r of results) {
  console.log(`${r.name}: CPU seconds under load, servers then Redis: ${r.relay.cpu_seconds.map((c) => c.toFixed(2)).join(', ')}`);
  if (r.redis_calls) {
    const per = (/** @type {number} */ n) => (n / r.relay.messages).toFixed(3);
    const c = r.redis_calls;
    console.log(
      `  Redis commands in the whole run per message of the load: ${per(Object.values(c).reduce((a, b) => a + b, 0))}` +
        ` (XADD ${per(c.xadd ?? 0)}, XREAD ${per(c.xread ?? 0)}, EVALSHA ${per(c.evalsha ?? 0)})`,
    );
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ quick, sizes: SIZES, results }, null, 2)}\n`);
console.log(`\nwritten to ${path.relative(ROOT, out)}`);
