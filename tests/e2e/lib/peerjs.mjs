// Helpers for the PeerJS tests: the reference server (peer 1.0.2 from npm)
// as a child process, and a raw PeerJS-protocol WebSocket client.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import WebSocket from 'ws';

import { WAIT_MS } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * Starts peer 1.0.2 on a free loopback port with path `/peerjs`; resolves
 * once it listens. Its `url` has the same shape as a peerchat server's.
 * @param {{key: string, expire_timeout_ms: number, alive_timeout_ms: number, concurrent_limit: number}} config
 * @param {{discovery?: boolean}} [options]
 */
export async function startReference(config, options = {}) {
  const args = [
    path.join(HERE, 'peer-reference.mjs'),
    config.key,
    String(config.expire_timeout_ms),
    String(config.alive_timeout_ms),
    String(config.concurrent_limit),
    ...(options.discovery ? ['--discovery'] : []),
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: path.dirname(HERE) });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('peer 1.0.2 did not start')), WAIT_MS);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /^listening on (\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`peer 1.0.2 exited early with ${code}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    /** @param {NodeJS.Signals} [signal] */
    async stop(signal = 'SIGKILL') {
      // It waits on SIGTERM for every connection to close.
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/**
 * A WebSocket to `{url}/peerjs/peerjs?{query}` that keeps what happens to it
 * (messages, parsed; its close) in order, for `next()` to take one at a
 * time.
 * @param {string} url the server's `http://host:port`
 * @param {string} query
 */
export async function connectRaw(url, query) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/peerjs/peerjs?${query}`);
  /** @type {any[]} */
  const events = [];
  /** @type {((event: any) => void) | null} */
  let wake = null;
  const push = (event) => {
    events.push(event);
    if (wake) {
      const w = wake;
      wake = null;
      w(events.shift());
    }
  };
  ws.on('message', (data, binary) => {
    const text = String(data);
    try {
      push({ message: JSON.parse(text), binary });
    } catch {
      push({ text, binary });
    }
  });
  ws.on('close', (code) => push({ closed: true, code }));
  ws.on('error', () => {});
  await Promise.race([once(ws, 'open'), once(ws, 'close')]);
  return {
    ws,
    /** @param {string} text */
    send(text) {
      ws.send(text);
    },
    /**
     * The next thing that happened to the connection: `{message}`,
     * `{text}` or `{closed, code}`.
     * @returns {Promise<any>}
     */
    next() {
      if (events.length > 0) return Promise.resolve(events.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          wake = null;
          reject(new Error(`nothing within ${WAIT_MS} ms`));
        }, WAIT_MS);
        wake = (event) => {
          clearTimeout(timer);
          resolve(event);
        };
      });
    },
    close() {
      ws.close();
    },
  };
}
