// What the file benchmarks share: the CPU time of every thread of the
// processes a benchmark started (the browser, the server, terminal
// clients), per MiB moved; quantiles; the receiving page's heap and chat
// latencies, and the result they make.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * CPU time (clock ticks) of every thread of this process's children (the
 * browser, the server, terminal clients), by process kind and thread name.
 */
export function threadTicks() {
  /** @type {Map<number, number>} */
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const ours = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!ours.has(pid) && ours.has(ppid)) {
        ours.add(pid);
        grew = true;
      }
    }
  }
  /** @type {Map<string, number>} */
  const ticks = new Map();
  for (const pid of ours) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const kind = cmd.includes('chrom') ? (/--type=([a-z-]+)/.exec(cmd)?.[1] ?? 'browser') + (cmd.includes('--type=renderer') ? ` ${pid}` : '') : path.basename(cmd.split('\0')[0]);
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')).replace(/\d+$/, '');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        const key = `${kind}: ${name}`;
        ticks.set(key, (ticks.get(key) ?? 0) + Number(f[11]) + Number(f[12]));
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return ticks;
}

/**
 * Prints the CPU time per MiB spent since `before`, in all and by thread.
 * @param {string} label
 * @param {Map<string, number>} before
 * @param {number} mib
 */
export function cpuPerMiB(label, before, mib) {
  const rows = [...threadTicks()].map(([k, v]) => /** @type {[string, number]} */ ([k, v - (before.get(k) ?? 0)])).filter(([, v]) => v > 0);
  rows.sort((a, b) => b[1] - a[1]);
  const ms = (/** @type {number} */ t) => ((t * 10) / mib).toFixed(1);
  console.log(`${label}: CPU ${ms(rows.reduce((n, [, v]) => n + v, 0))} ms per MiB`);
  for (const [k, v] of rows.slice(0, 12)) console.log(`  ${ms(v).padStart(6)} ${k}`);
}

/** @param {number[]} xs @param {number} q */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/**
 * Makes a page note, in `window.latencies`, how long each chat message
 * `lat T` (T: when it was sent, ms since the epoch) took to show.
 * @param {import('playwright-core').Page} page
 */
export async function recordLatencies(page) {
  await page.evaluate(() => {
    const samples = /** @type {number[]} */ ([]);
    Object.assign(window, { latencies: samples });
    const log = /** @type {HTMLElement} */ (document.getElementById('log'));
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) {
          const text = n instanceof HTMLElement ? (n.querySelector('.msg-text')?.textContent ?? '') : '';
          const m = /^lat (\d+(?:\.\d+)?)$/.exec(text);
          if (m) samples.push(performance.timeOrigin + performance.now() - Number(m[1]));
        }
      }
    }).observe(log, { childList: true });
  });
}

/**
 * Samples a page's JS heap every 250 ms (after a garbage collection) until
 * `stop`, which resolves with its largest growth in MiB.
 * @param {import('playwright-core').Page} page
 */
export async function watchHeap(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const before = (await cdp.send('Runtime.getHeapUsage')).usedSize;
  let max = before;
  let stopped = false;
  const sampler = (async () => {
    while (!stopped) {
      max = Math.max(max, (await cdp.send('Runtime.getHeapUsage')).usedSize);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await sampler;
      return (max - before) / (1024 * 1024);
    },
  };
}

/**
 * A file benchmark's result: the file against the blast, the receiving
 * page's heap, chat latencies; printed, and returned for the JSON.
 * @param {{quick: boolean, route: string, blastWhat: string, sizeMiB: number, seconds: number,
 *   blastMiBs: number, blastSizeMiB: number, heapGrowthMiB: number, idle: number[], latencies: number[],
 *   chattingSeconds: number}} r
 */
export function fileResult(r) {
  const fileMiBs = r.sizeMiB / r.seconds;
  const result = {
    quick: r.quick,
    size_mib: r.sizeMiB,
    file_mib_s: fileMiBs,
    blast_mib_s: r.blastMiBs,
    blast_size_mib: r.blastSizeMiB,
    ratio: fileMiBs / r.blastMiBs,
    file_while_chatting_mib_s: r.sizeMiB / r.chattingSeconds,
    heap_growth_mib: r.heapGrowthMiB,
    chat_idle: { count: r.idle.length, p50_ms: quantile(r.idle, 0.5), p95_ms: quantile(r.idle, 0.95) },
    chat_during_transfer: {
      count: r.latencies.length,
      p50_ms: quantile(r.latencies, 0.5),
      p95_ms: quantile(r.latencies, 0.95),
      max_ms: quantile(r.latencies, 1),
    },
  };
  const ms = (/** @type {number | null} */ x) => x?.toFixed(1);
  console.log(`file ${r.sizeMiB} MiB ${r.route}: ${fileMiBs.toFixed(1)} MiB/s (accepted to received and checked)`);
  console.log(`bare data-channel blast, ${r.blastWhat}, ${r.blastSizeMiB} MiB: ${r.blastMiBs.toFixed(1)} MiB/s`);
  console.log(`ratio: ${result.ratio.toFixed(2)}×`);
  console.log(`receiving page's JS heap grew by at most ${result.heap_growth_mib.toFixed(1)} MiB`);
  console.log(`chat with nothing else going on: p50 ${ms(result.chat_idle.p50_ms)} ms, p95 ${ms(result.chat_idle.p95_ms)} ms`);
  const d = result.chat_during_transfer;
  console.log(`another file of ${r.sizeMiB} MiB while chatting: ${result.file_while_chatting_mib_s.toFixed(1)} MiB/s`);
  console.log(`chat while it was in flight: ${d.count} messages, p50 ${ms(d.p50_ms)} ms, p95 ${ms(d.p95_ms)} ms, max ${ms(d.max_ms)} ms`);
  return result;
}
