// On a network that drops UDP, browsers and the terminal client still
// connect, through the embedded relay reached over TCP, or over TLS when
// TCP to the relay's port is blocked too. The clients run in a network
// namespace of their own whose firewall drops every UDP packet but those on
// loopback; the server and its relay run next door (lib/netns.mjs).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  join,
  launchBrowser,
  newPage,
  send,
  startServerOn,
  waitForMembers,
  waitForMessage,
} from './lib/harness.mjs';
import { clientNamespace, freePort, SERVER_IP } from './lib/netns.mjs';
import { certDir, makeCert, trustArgs } from './lib/tls.mjs';

/**
 * Two browsers and a terminal client in the UDP-less namespace chat
 * through the relay; returns the server.
 * @param {{blockTcp: boolean}} options
 */
async function chatWithoutUdp(t, { blockTcp }) {
  const dir = await certDir();
  const cert = await makeCert(dir, 'relay', { ips: [SERVER_IP], names: [] });
  const ns = await clientNamespace();
  t.after(() => ns.close());
  const [tcpPort, tlsPort] = [await freePort(SERVER_IP), await freePort(SERVER_IP)];
  if (blockTcp) await ns.blockTcp(tcpPort);
  const server = await startServerOn(`${SERVER_IP}:0`, [
    '--tls-cert', cert.cert, '--tls-key', cert.key, '--turn-allow-private',
    '--turn-tcp-port', String(tcpPort), '--turn-tls-port', String(tlsPort),
  ]);
  t.after(() => server.stop('SIGKILL'));
  const browser = await launchBrowser(trustArgs([cert]), { executablePath: ns.chromium, loopback: false });
  t.after(() => browser.close());

  const alice = await newPage(browser, server.url);
  await alice.goto(`${server.url}/`);
  await alice.waitForURL(/\/r\//);
  await join(alice, 'alice');
  const bob = await newPage(browser, server.url);
  await bob.goto(alice.url());
  await join(bob, 'bob');
  const [command, args] = ns.wrap(BIN, [
    'chat', alice.url(), '--name', 'rusty', '--plain', '--tls-ca', cert.cert, '--no-mdns',
  ]);
  const native = new LineClient('rusty', command, args);
  t.after(() => native.kill());
  await native.waitFor((l) => l.startsWith('* joined as rusty'), 'err');

  await waitForMembers(alice, ['bob', 'rusty']);
  await waitForMembers(bob, ['alice', 'rusty']);
  await send(alice, 'no UDP here');
  await waitForMessage(bob, 'no UDP here', 'alice');
  await native.waitFor((l) => l === 'alice: no UDP here');
  native.say('nor here');
  await waitForMessage(alice, 'nor here', 'rusty');
  await waitForMessage(bob, 'nor here', 'rusty');

  // The pages say how they reach their relay.
  await alice.getByRole('button', { name: 'Connection details' }).click();
  const details = alice.getByRole('dialog', { name: 'Connection details' });
  await details.locator('td[data-route="relay"]').first().waitFor();
  const shown = (await details.textContent()) ?? '';
  assert.match(shown, blockTcp ? /relay reached over TLS/ : /relay reached over (TCP|TLS)/, shown);
  for (const page of [alice, bob]) assert.deepEqual(page.errors, []);
  return server;
}

test('without UDP, browsers and a terminal client chat through the relay over TCP', async (t) => {
  const server = await chatWithoutUdp(t, { blockTcp: false });
  assert.ok(server.url.startsWith('https://'));
});

test('without UDP, and with the relay\'s TCP port blocked, they chat through the relay over TLS', async (t) => {
  await chatWithoutUdp(t, { blockTcp: true });
});
