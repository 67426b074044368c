// Interop beyond our own code: an independent WebRTC stack (aiortc, in
// tests/interop/aiortc_peer.py, written from docs/protocol.md) chats with
// the native client, in both roles: answering it and offering to it.
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import { BIN, ROOT, startServer } from './lib/harness.mjs';

const PYTHON = process.env.PYTHON ?? 'python3';
const PEER = `${ROOT}tests/interop/aiortc_peer.py`;
const ROOM = 'interop-room-aaaaaaaaaaaaa';
/** The room's secret: the part after # of its link. */
const SECRET = randomBytes(32).toString('base64url');

for (const nativeFirst of [true, false]) {
  const order = nativeFirst ? 'the native client answers aiortc' : 'aiortc answers the native client';
  test(`aiortc and peerchat chat both ways (${order})`, async (t) => {
    const server = await startServer();
    /** @type {LineClient[]} */
    const clients = [];
    t.after(async () => {
      for (const c of clients) c.kill();
      await server.stop('SIGKILL');
    });
    const link = `${server.url}/r/${ROOM}#${SECRET}`;
    const native = () => new LineClient('native', BIN, ['chat', `${ROOM}#${SECRET}`, '--server', server.url, '--name', 'rusty', '--plain']);
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
