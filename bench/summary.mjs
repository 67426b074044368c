// Gathers the figures the targets in docs/benchmarks.md speak of from
// target/bench/webrtc.json, files.json, terminal-files.json, terminal-browser-files.json, signaling.json and cluster.json (written by the
// benchmark scripts in the same run) into target/bench/summary.json,
// each with its target and whether this run met it, and prints them.
//
// usage: node bench/summary.mjs [DIR]   (default: target/bench)
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = process.argv[2] ?? path.join(ROOT, 'target', 'bench');

/** @param {string} name */
async function read(name) {
  try {
    return JSON.parse(await readFile(path.join(dir, name), 'utf8'));
  } catch {
    return null;
  }
}

const webrtc = await read('webrtc.json');
const signaling = await read('signaling.json');
const cluster = await read('cluster.json');
const files = await read('files.json');
const terminalFiles = await read('terminal-files.json');
const terminalBrowserFiles = await read('terminal-browser-files.json');
const clusterRuns = cluster?.results ?? [];
const inMemory = clusterRuns.find((r) => r.servers === 1 && !r.redis);
// The costliest setup with Redis (two or three servers, pairs across them).
const withRedis = clusterRuns
  .filter((r) => r.redis)
  .reduce((worst, r) => (!worst || r.relay.per_cpu_sec < worst.relay.per_cpu_sec ? r : worst), null);
const crossP99 = Math.max(...clusterRuns.filter((r) => r.cross_node).map((r) => r.cross_node.p99_ms));
const p = signaling?.results?.peerchat ?? {};
const j = signaling?.results?.peerjs ?? {};
/** peerchat's PeerJS endpoint, under the PeerJS workloads. */
const pj = signaling?.results?.['peerchat-peerjs'] ?? {};
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && a > 0 && b > 0 ? a / b : null);
const presence100 = (p.presence ?? []).find((r) => r.room_size === 100);

const quick = Boolean(signaling?.quick || webrtc?.quick || cluster?.quick || files?.quick || terminalFiles?.quick || terminalBrowserFiles?.quick);

/**
 * One figure: its value, the target, and whether it was met (null when the
 * run did not measure it, or measured it at the quick mode's small sizes,
 * which are not the target's conditions).
 * @param {number | null | undefined} value
 * @param {'at most' | 'at least'} sense
 * @param {number} target
 * @param {Record<string, unknown>} [detail]
 */
function figure(value, sense, target, detail = {}) {
  const v = typeof value === 'number' && Number.isFinite(value) ? value : null;
  const met = v === null || quick ? null : sense === 'at most' ? v <= target : v >= target;
  return { value: v, target: `${sense} ${target}`, met, ...detail };
}

const summary = {
  quick,
  written: new Date().toISOString(),
  figures: {
    rss_per_idle_connection_kib: figure(p.idle?.per_connection_kib, 'at most', 5, {
      connections: p.idle?.connections ?? null,
      peerjs_kib: j.idle?.per_connection_kib ?? null,
    }),
    relay_per_server_cpu_second_vs_peerjs: figure(ratio(p.relay_load?.per_server_cpu_sec, j.relay_load?.per_server_cpu_sec), 'at least', 2.5, {
      peerchat: p.relay_load?.per_server_cpu_sec ?? null,
      peerjs: j.relay_load?.per_server_cpu_sec ?? null,
    }),
    relay_one_way_light_load_p99_ms: figure(p.relay_light?.latency?.p99_ms, 'at most', 1),
    connect_and_join_speedup_vs_peerjs: figure(ratio(j.connect_small?.wall_ms, p.connect_small?.wall_ms), 'at least', 2.5, {
      clients: signaling?.sizes?.connectClients ?? null,
      peerchat_ms: p.connect_small?.wall_ms ?? null,
      peerjs_ms: j.connect_small?.wall_ms ?? null,
    }),
    peerjs_endpoint_relay_per_server_cpu_second_vs_peerjs: figure(
      ratio(pj.relay_load?.per_server_cpu_sec, j.relay_load?.per_server_cpu_sec), 'at least', 2.5, {
        peerchat: pj.relay_load?.per_server_cpu_sec ?? null,
        peerjs: j.relay_load?.per_server_cpu_sec ?? null,
      },
    ),
    peerjs_endpoint_rss_per_idle_connection_vs_peerjs: figure(
      ratio(pj.idle?.per_connection_kib, j.idle?.per_connection_kib), 'at most', 0.5, {
        connections: pj.idle?.connections ?? null,
        peerchat_kib: pj.idle?.per_connection_kib ?? null,
        peerjs_kib: j.idle?.per_connection_kib ?? null,
      },
    ),
    join_in_100_member_room_all_told_p99_ms: figure(presence100?.all_told?.p99_ms, 'at most', 5),
    first_message_from_load_median_ms: figure(webrtc?.first_message?.from_load_median_ms, 'at most', 300, {
      p95_ms: webrtc?.first_message?.from_load_p95_ms ?? null,
    }),
    first_message_from_navigation_start_median_ms: figure(webrtc?.first_message?.median_ms, 'at most', 300, {
      p95_ms: webrtc?.first_message?.p95_ms ?? null,
    }),
    // Protocol version 2 (issue 14): the first message, with its work on
    // the message's path taken out as the reference (bench/webrtc.mjs), and
    // the server's cost per relayed signal, sealed against the same in clear.
    first_message_v2_added_median_ms: figure(webrtc?.first_message?.v2_exposed_median_ms, 'at most', 20, {
      p95_ms: webrtc?.first_message?.v2_exposed_p95_ms ?? null,
      with_v2_median_ms: webrtc?.first_message?.median_ms ?? null,
      with_v2_p95_ms: webrtc?.first_message?.p95_ms ?? null,
      without_v2_median_ms: webrtc?.first_message?.without_v2_exposed_median_ms ?? null,
      without_v2_p95_ms: webrtc?.first_message?.without_v2_exposed_p95_ms ?? null,
      v2_work_in_flight_median_ms: webrtc?.first_message?.v2_work_median_ms ?? null,
    }),
    relay_cost_sealed_vs_plain: figure(ratio(p.relay_load?.per_server_cpu_sec, p.relay_sealed_load?.per_server_cpu_sec), 'at most', 1.1, {
      plain_per_server_cpu_sec: p.relay_load?.per_server_cpu_sec ?? null,
      sealed_per_server_cpu_sec: p.relay_sealed_load?.per_server_cpu_sec ?? null,
    }),
    cluster_cross_node_signal_p99_ms: figure(Number.isFinite(crossP99) ? crossP99 : null, 'at most', 2),
    cluster_cost_per_relayed_message_redis_vs_memory: figure(
      ratio(inMemory?.relay?.per_cpu_sec, withRedis?.relay?.per_cpu_sec), 'at most', 3,
    ),
    native_to_chromium_throughput_vs_chromium_to_chromium: figure(
      ratio(webrtc?.throughput?.native_chromium?.mib_per_s, webrtc?.throughput?.chromium_chromium?.mib_per_s), 'at least', 0.8,
    ),
    file_throughput_browser_vs_bare_blast: figure(files?.ratio, 'at least', 0.8, {
      file_mib_s: files?.file_mib_s ?? null,
      blast_mib_s: files?.blast_mib_s ?? null,
      size_mib: files?.size_mib ?? null,
    }),
    chat_p95_ms_while_file_in_flight: figure(files?.chat_during_transfer?.p95_ms, 'at most', 100, {
      idle_p95_ms: files?.chat_idle?.p95_ms ?? null,
    }),
    receiving_page_heap_growth_mib_during_file: figure(files?.heap_growth_mib, 'at most', 64),
    terminal_file_throughput_vs_bare_data_channel: figure(terminalFiles?.throughput?.ratio, 'at least', 0.8, {
      file_mib_per_s: terminalFiles?.throughput?.file_mib_per_s ?? null,
      bare_mib_per_s: terminalFiles?.throughput?.blast_mib_per_s ?? null,
      // The bare blast whose receiver hashes each piece and the whole, as
      // a fetcher must: what the checks alone leave of the bare blast.
      hashing_blast_mib_per_s: terminalFiles?.throughput?.checked_blast_mib_per_s ?? null,
      file_vs_hashing_blast: terminalFiles?.throughput?.ratio_to_checked ?? null,
    }),
    terminal_to_browser_file_throughput_vs_bare_data_channel: figure(terminalBrowserFiles?.ratio, 'at least', 0.8, {
      file_mib_s: terminalBrowserFiles?.file_mib_s ?? null,
      blast_mib_s: terminalBrowserFiles?.blast_mib_s ?? null,
      size_mib: terminalBrowserFiles?.size_mib ?? null,
    }),
    chat_p95_ms_while_terminal_file_in_flight_to_browser: figure(terminalBrowserFiles?.chat_during_transfer?.p95_ms, 'at most', 100, {
      idle_p95_ms: terminalBrowserFiles?.chat_idle?.p95_ms ?? null,
    }),
    receiving_page_heap_growth_mib_during_terminal_file: figure(terminalBrowserFiles?.heap_growth_mib, 'at most', 64),
    terminal_1gib_transfer_rss_growth_mib: figure(
      terminalFiles?.memory
        ? Math.max(terminalFiles.memory.sender_rss_growth_mib, terminalFiles.memory.fetcher_rss_growth_mib)
        : null,
      'at most',
      64,
    ),
  },
  slow_reader: { peerchat: p.slow ?? null, peerjs: j.slow ?? null, peerchat_peerjs: pj.slow ?? null },
};

await writeFile(path.join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
for (const [name, f] of Object.entries(summary.figures)) {
  const value = f.value === null ? 'not measured' : Number(f.value.toFixed(3)).toString();
  const verdict = f.met === null ? '' : f.met ? 'met' : 'missed';
  console.log(`${name.padEnd(56)} ${value.padStart(12)}  (${f.target}) ${verdict}`);
}
if (quick) console.log('(quick mode: small sizes, not the conditions the targets are set for)');
console.log(`\nwritten to ${path.relative(ROOT, path.join(dir, 'summary.json'))}`);
