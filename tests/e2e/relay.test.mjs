// Privacy mode: relay-only pages talk through peerchat's embedded TURN
// relay and never reveal their own addresses. Run inside the loopback-only
// namespace, where the relay must be allowed to reach loopback
// (--turn-allow-private); without that it refuses, as it should.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  join,
  launchBrowser,
  newPage,
  openSignals,
  send,
  serverAndBrowser,
  startServer,
  waitForMembers,
  waitForMessage,
} from './lib/harness.mjs';

/**
 * Opens a relay-only page on `link` that records every signal it sends and
 * receives (sealed, as on the wire; `openSignals` opens them with the
 * room's secret, which the test has from the link).
 * @param {import('playwright-core').Browser} browser
 * @param {string} origin
 * @param {string} link
 */
async function relayPage(browser, origin, link) {
  const page = await newPage(browser, origin);
  /** @type {{to: string, payload: unknown}[]} */
  const sent = [];
  /** @type {{from: string, payload: unknown}[]} */
  const received = [];
  let me = '';
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const upstream = ws.connectToServer();
    ws.onMessage((m) => {
      if (typeof m === 'string') {
        const msg = JSON.parse(m);
        if (msg.type === 'signal') sent.push({ to: msg.to, payload: msg.payload });
      }
      upstream.send(m);
    });
    upstream.onMessage((m) => {
      if (typeof m === 'string') {
        const msg = JSON.parse(m);
        if (msg.type === 'joined') me = msg.you.id;
        if (msg.type === 'signal') received.push({ from: msg.from, payload: msg.payload });
      }
      ws.send(m);
    });
  });
  await page.goto(link);
  return Object.assign(page, {
    /** What the page sent, opened. */
    sentPlain: () => openSignals(page.url(), sent.map((s) => ({ from: me, ...s }))),
    /** What the page received, opened. */
    receivedPlain: () => openSignals(page.url(), received.map((r) => ({ to: me, ...r }))),
  });
}

test('relay-only pages chat through the embedded relay and reveal no address of their own', async (t) => {
  const server = await startServer(['--turn-allow-private']);
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop('SIGKILL');
  });

  const alice = await relayPage(browser, server.url, `${server.url}/?relay=1`);
  await alice.waitForURL(/\/r\/[A-Za-z0-9_-]{22}\?relay=1#[A-Za-z0-9_-]{43}$/);
  assert.equal(await alice.getByLabel('Hide my IP address').isChecked(), true);
  await join(alice, 'alice');
  const bob = await relayPage(browser, server.url, alice.url());
  await join(bob, 'bob');
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);
  await alice.getByText('IP hidden').waitFor();

  await send(alice, 'through the relay');
  await waitForMessage(bob, 'through the relay', 'alice');
  await send(bob, 'and back');
  await waitForMessage(alice, 'and back', 'bob');

  // The connection-details view names the route: relayed. The server
  // offers its relay over UDP and TCP, and the browser may settle on either
  // to reach it (seen both ways on a loaded machine); between the two
  // relays it is UDP.
  await alice.getByRole('button', { name: 'Connection details' }).click();
  const dialog = alice.getByRole('dialog', { name: 'Connection details' });
  await dialog.locator('td[data-route="relay"]').waitFor();
  assert.match(await dialog.textContent() ?? '', /relayed \(relay ↔ relay, udp(; our relay reached over TCP)?\)/);

  // No candidate other than a relay one ever left either page.
  for (const page of [alice, bob]) {
    const sent = await page.sentPlain();
    const candidates = sent.filter((p) => p.candidate).map((p) => p.candidate.candidate);
    assert.ok(candidates.length > 0, 'candidates were sent');
    for (const c of candidates) assert.match(c, / typ relay /);
    for (const d of sent.filter((p) => p.description)) {
      assert.doesNotMatch(d.description.sdp, / typ (host|srflx|prflx)/);
    }
    assert.deepEqual(page.errors, []);
  }
});

test('by default the relay will not reach loopback, so relay-only pages stay apart', async (t) => {
  const { server, browser } = await serverAndBrowser(t);
  const alice = await relayPage(browser, server.url, `${server.url}/?relay=1`);
  await alice.waitForURL(/\/r\//);
  await join(alice, 'alice');
  const bob = await relayPage(browser, server.url, alice.url());
  await join(bob, 'bob');
  await waitForMembers(alice, ['bob'], 'connecting');
  // ICE gives up on every pair: the member is shown as reconnecting, never
  // as connected.
  await alice.waitForFunction(
    () => {
      const li = [...document.querySelectorAll('[aria-label="Members"] li')].find(
        (l) => l.querySelector('.member-name')?.textContent === 'bob',
      );
      return li?.getAttribute('data-state') === 'reconnecting';
    },
    undefined,
    { timeout: 60_000 },
  );
  const states = await alice.evaluate(() =>
    [...document.querySelectorAll('[aria-label="Members"] li')].map((l) => l.getAttribute('data-state')),
  );
  assert.ok(!states.includes('connected'), String(states));
});

test('a relay-only terminal client chats with a browser through the relay', async (t) => {
  const server = await startServer(['--turn-allow-private']);
  const browser = await launchBrowser();
  /** @type {LineClient | null} */
  let native = null;
  t.after(async () => {
    native?.kill();
    await browser.close();
    await server.stop('SIGKILL');
  });
  const alice = await relayPage(browser, server.url, `${server.url}/`);
  await alice.waitForURL(/\/r\//);
  await join(alice, 'alice');
  native = new LineClient('rusty', BIN, ['chat', alice.url(), '--name', 'rusty', '--plain', '--relay-only']);
  await native.waitFor((l) => l.startsWith('* joined as rusty'), 'err');
  await waitForMembers(alice, ['rusty']);
  native.say('hidden behind the relay');
  await waitForMessage(alice, 'hidden behind the relay', 'rusty');
  await send(alice, 'got it');
  await native.waitFor((l) => l === 'alice: got it');
  await alice.getByRole('button', { name: 'Connection details' }).click();
  await alice.getByRole('dialog', { name: 'Connection details' }).locator('td[data-route="relay"]').waitFor();
  // The terminal client revealed no address of its own.
  const received = await alice.receivedPlain();
  const candidates = received.filter((p) => p.candidate).map((p) => p.candidate.candidate);
  assert.ok(candidates.length > 0, 'candidates arrived');
  for (const c of candidates) assert.match(c, / typ relay /);
  for (const d of received.filter((p) => p.description)) {
    assert.doesNotMatch(d.description.sdp, / typ (host|srflx|prflx)/);
  }
});
