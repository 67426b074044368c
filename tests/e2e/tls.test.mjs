// TLS built in: the page over https and signaling over wss on one port,
// with a certificate made by the test; the certificate is replaced while
// people chat (SIGHUP), and nobody's connection drops.
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  join,
  launchBrowser,
  newPage,
  openRoom,
  send,
  startServer,
  waitForMembers,
  waitForMessage,
  waitForServerOpen,
} from './lib/harness.mjs';
import { certDir, makeCert, servedFingerprint, trustArgs } from './lib/tls.mjs';

/**
 * Counts the WebSockets a page opens.
 * @param {import('playwright-core').Page} page
 */
function countSockets(page) {
  const opened = { count: 0 };
  page.on('websocket', () => {
    opened.count += 1;
  });
  return opened;
}

test('https and wss with a test certificate, replaced mid-session without dropping anyone', async (t) => {
  const dir = await certDir();
  const first = await makeCert(dir, 'first');
  const second = await makeCert(dir, 'second');
  const live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
  await copyFile(first.cert, live.cert);
  await copyFile(first.key, live.key);

  const server = await startServer(['--tls-cert', live.cert, '--tls-key', live.key, '--turn-tls-port', '0']);
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the printed URL says https');
  const { hostname, port } = new URL(server.url);
  assert.equal(await servedFingerprint(hostname, Number(port)), first.fingerprint);
  const browser = await launchBrowser(trustArgs([first, second]));
  /** @type {LineClient | null} */
  let native = null;
  t.after(async () => {
    native?.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });

  const alice = await openRoom(browser, server.url, 'alice');
  const aliceSockets = countSockets(alice);
  assert.deepEqual(
    await alice.evaluate(() => [location.protocol, window.isSecureContext]),
    ['https:', true],
  );
  const bob = await newPage(browser, server.url);
  const bobSockets = countSockets(bob);
  await bob.goto(alice.url());
  await join(bob, 'bob');
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);
  await send(alice, 'over https');
  await waitForMessage(bob, 'over https', 'alice');

  // The certificate is renewed: new files at the same paths, and SIGHUP.
  await copyFile(second.key, live.key);
  await copyFile(second.cert, live.cert);
  server.proc.kill('SIGHUP');
  const deadline = Date.now() + 20_000;
  while ((await servedFingerprint(hostname, Number(port))) !== second.fingerprint) {
    assert.ok(Date.now() < deadline, 'the new certificate is served');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // Newcomers connect with the new certificate; the others' signaling
  // connections were not dropped (no new WebSocket), and they see them.
  const carol = await newPage(browser, server.url);
  await carol.goto(alice.url());
  await join(carol, 'carol');
  native = new LineClient('rusty', BIN, [
    'chat', alice.url(), '--name', 'rusty', '--plain', '--tls-ca', second.cert,
  ]);
  await native.waitFor((l) => l.startsWith('* joined as rusty'), 'err');
  await waitForMembers(alice, ['bob', 'carol', 'rusty']);
  await waitForMembers(bob, ['alice', 'carol', 'rusty']);
  await send(bob, 'still here');
  await waitForMessage(carol, 'still here', 'bob');
  await native.waitFor((l) => l === 'bob: still here');
  native.say('from the terminal, over wss');
  await waitForMessage(alice, 'from the terminal, over wss', 'rusty');
  await waitForServerOpen(alice);
  await waitForServerOpen(bob);
  assert.equal(aliceSockets.count, 0, 'alice kept the WebSocket she had before counting began');
  assert.equal(bobSockets.count, 1, 'bob opened one WebSocket, and kept it');
  for (const page of [alice, bob, carol]) assert.deepEqual(page.errors, []);
});
