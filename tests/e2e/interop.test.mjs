// Interop beyond our own code: an independent WebRTC stack (aiortc, in
// tests/interop/aiortc_peer.py, written from docs/protocol.md) chats with
// the native client, in both roles: answering it and offering to it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { json, LineClient } from './lib/cli.mjs';
import { drop } from './lib/files.mjs';
import { BIN, enter, ROOT, serverAndBrowser, startServer, waitForMessage } from './lib/harness.mjs';

const PYTHON = process.env.PYTHON ?? 'python3';
const PEER = `${ROOT}tests/interop/aiortc_peer.py`;
const ROOM = 'interop-room-aaaaaaaaaaaaa';
/** The room's secret: the part after # of its link. */
const SECRET = randomBytes(32).toString('base64url');

/**
 * A server, a scratch directory (the native client's history and identity
 * key go there, not in the user's data directory) and the test's clients,
 * all gone after the test.
 * @param {import('node:test').TestContext} t
 */
async function setUp(t) {
  const server = await startServer();
  const dir = mkdtempSync(path.join(tmpdir(), 'peerchat-interop-'));
  /** @type {LineClient[]} */
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.kill();
    await server.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return { server, dir, clients };
}

for (const nativeFirst of [true, false]) {
  const order = nativeFirst ? 'the native client answers aiortc' : 'aiortc answers the native client';
  test(`aiortc and peerchat chat both ways (${order})`, async (t) => {
    const { server, dir, clients } = await setUp(t);
    const link = `${server.url}/r/${ROOM}#${SECRET}`;
    const history = path.join(dir, 'history.sqlite3');
    const native = () => new LineClient('native', BIN, ['chat', `${ROOM}#${SECRET}`, '--server', server.url, '--name', 'rusty', '--plain', '--history-file', history]);
    const python = () => new LineClient('aiortc', PYTHON, [PEER, link, 'pyro']);

    const first = nativeFirst ? native() : python();
    clients.push(first);
    await first.waitFor((l) => l.startsWith('* joined as'), 'err');
    const second = nativeFirst ? python() : native();
    clients.push(second);
    await second.waitFor((l) => l.startsWith('* joined as'), 'err');
    const [rust, py] = nativeFirst ? [first, second] : [second, first];

    py.say('hello from aiortc');
    await rust.waitFor((l) => l === 'pyro: hello from aiortc');
    rust.say('hello from webrtc-rs, multi\\line stays literal');
    await py.waitFor((l) => l === 'rusty: hello from webrtc-rs, multi\\\\line stays literal');
  });
}

/**
 * Joins `link` as aiortc's pyro, which asks for `offered` before sending its
 * hello; asserts it was answered (`have`), then says "asked before my hello".
 * @param {LineClient[]} clients the test's, to kill after it
 * @param {string} link
 * @param {{fid: string, sha256: string}} offered
 */
async function askEarly(clients, link, offered) {
  const py = new LineClient('aiortc', PYTHON, [PEER, link, 'pyro', `--early-get=${offered.fid}:${offered.sha256}`]);
  clients.push(py);
  await py.waitFor((l) => l.startsWith('* early get: '), 'err');
  assert.equal(py.err.find((l) => l.startsWith('* early get: ')), '* early get: have');
  py.say('asked before my hello');
}

// A fetcher that verified the holder's hello may ask for a file before its
// own hello reached the holder: the holder keeps the `file` channel and
// answers once that hello verifies, instead of closing it (which made the
// fetcher back off, and could leave its next channel never opening).
test('a terminal holder answers a file channel that came before the fetcher’s hello', async (t) => {
  const { server, dir, clients } = await setUp(t);
  const room = 'interop-early-get-aaaaaaa';
  const link = `${server.url}/r/${room}#${SECRET}`;
  const history = path.join(dir, 'rusty.history');
  const native = new LineClient('native', BIN, ['chat', `${room}#${SECRET}`, '--server', server.url, '--name', 'rusty', '--json', '--history-file', history]);
  clients.push(native);
  await native.waitFor((l) => json(l)?.event === 'joined');
  const file = path.join(dir, 'notes.txt');
  writeFileSync(file, 'Minutes\n'.repeat(5000));
  native.say(`/send ${file}`);
  await native.waitFor((l) => json(l)?.event === 'file_offered');
  const offered = native.out.map(json).find((e) => e?.event === 'file_offered').file;

  await askEarly(clients, link, offered);
  // And the conversation goes on.
  await native.waitFor((l) => json(l)?.event === 'message' && json(l).text === 'asked before my hello');
});

test('a page holding a file answers a file channel that came before the fetcher’s hello', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  /** @type {LineClient[]} */
  const clients = [];
  t.after(() => {
    for (const c of clients) c.kill();
  });
  const room = 'interop-early-page-aaaaaa';
  const page = await enter(browser, server.url, `${server.url}/r/${room}?testhooks#${SECRET}`, 'alice');
  await drop(page, '#room-view', [{ name: 'notes.bin', size: 40000, seed: 9 }]);
  const offered = await (
    await page.waitForFunction(() => {
      const held = /** @type {any} */ (window).peerchatFiles?.held;
      return held?.size === 1 ? [...held.values()][0].meta : null;
    })
  ).jsonValue();

  await askEarly(clients, `${server.url}/r/${room}#${SECRET}`, offered);
  await waitForMessage(page, 'asked before my hello');
});
