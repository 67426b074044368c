// Browser end-to-end: real peerchat server, real headless Chromium pages
// chatting over real RTCDataChannels. Run inside a loopback-only network
// namespace (scripts/test.sh does this).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  join,
  newPage,
  openRoom,
  screenshot,
  send,
  serverAndBrowser,
  waitForMembers,
  waitForMessage,
  WAIT_MS,
} from './lib/harness.mjs';

test('three people chat in one room, one leaves, the server dies, the rest chat on', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  // Alice opens the home page and gets a fresh room.
  const alice = await newPage(browser, server.url);
  await alice.goto(`${server.url}/`);
  await alice.waitForURL(/\/r\/[A-Za-z0-9_-]{22}#[A-Za-z0-9_-]{43}$/);
  const link = await alice.getByLabel('Room link').inputValue();
  assert.equal(link, alice.url(), 'the room link is the page address');
  await join(alice, 'alice');
  await alice.getByRole('log').getByText('You joined as alice').waitFor();

  const bob = await newPage(browser, server.url);
  await bob.goto(link);
  await join(bob, 'bob');
  const carol = await newPage(browser, server.url, { width: 390, height: 844 });
  await carol.goto(link);
  await join(carol, 'carol');

  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);
  await waitForMembers(carol, ['alice', 'bob']);
  await alice.getByRole('log').getByText('carol joined').waitFor();

  // A taken nickname is refused with a clear message; the page may retry.
  const dave = await newPage(browser, server.url);
  await dave.goto(link);
  await join(dave, 'Alice');
  await dave.getByRole('alert').getByText('already taken').waitFor();
  assert.equal(await dave.getByRole('log').count(), 0, 'not joined');
  await dave.context().close();

  // Everyone says something; everyone sees all three.
  const lines = {
    alice: 'Hi both! Did the link work for you?',
    bob: 'Yes, straight in. No accounts, nice.',
    carol: "Here too, on my phone. Shift+Enter makes\na new line, Enter sends.",
  };
  await send(alice, lines.alice);
  await waitForMessage(bob, lines.alice, 'alice');
  await send(bob, lines.bob);
  await waitForMessage(carol, lines.bob, 'bob');
  const box = carol.getByLabel('Message', { exact: true });
  await box.fill("Here too, on my phone. Shift+Enter makes");
  await box.press('Shift+Enter');
  await box.pressSequentially('a new line, Enter sends.');
  await box.press('Enter');
  for (const page of [alice, bob, carol]) {
    for (const [author, text] of Object.entries(lines)) {
      await waitForMessage(page, text);
    }
  }
  await waitForMessage(alice, lines.carol, 'carol');
  await waitForMessage(carol, lines.carol, 'You');

  // Markup arrives as text, never as elements.
  const markup = '<img src=x onerror="window.pwned=1"><b>bold?</b>';
  await send(bob, markup);
  for (const page of [alice, carol]) {
    await waitForMessage(page, markup, 'bob');
    const injected = await page.evaluate(() => ({
      elements: document.querySelectorAll('[role="log"] img, [role="log"] b').length,
      pwned: 'pwned' in window,
    }));
    assert.deepEqual(injected, { elements: 0, pwned: false });
  }

  // Too long a message is refused with a note, and nothing is sent.
  await carol.getByLabel('Message', { exact: true }).fill('x'.repeat(16 * 1024 + 1));
  await carol.getByLabel('Message', { exact: true }).press('Enter');
  await carol.getByRole('alert').getByText('at most 16 KiB').first().waitFor();
  await carol.getByLabel('Message', { exact: true }).fill('');

  await screenshot(alice, 'conversation-desktop');
  await screenshot(carol, 'conversation-phone');

  // Carol leaves (on a phone, the button is under the folded member list):
  // the others are told at once.
  await carol.locator('#members-panel > summary').click();
  await carol.getByRole('button', { name: 'Leave the room' }).click();
  await carol.getByRole('button', { name: 'Join' }).waitFor();
  await carol.context().close();
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);
  await alice.getByRole('log').getByText('carol left').waitFor();

  // The server dies; the peer-to-peer conversation goes on.
  await server.stop('SIGKILL');
  await alice.locator('#server-status[data-state="offline"]').waitFor();
  await send(alice, 'The server is gone and we can still talk.');
  await waitForMessage(bob, 'The server is gone and we can still talk.', 'alice');
  await send(bob, 'Indeed: peer to peer.');
  await waitForMessage(alice, 'Indeed: peer to peer.', 'bob');
  await waitForMembers(alice, ['bob']);

  for (const page of [alice, bob]) assert.deepEqual(page.errors, [], 'no page errors');
});

test('a message typed before a member is connected is delivered once the channel opens', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();

  // Bob's browser gets its signals only when the test lets them through, so
  // his connection to alice cannot open before she has sent her message.
  const bob = await newPage(browser, server.url);
  /** @type {string[]} */
  const held = [];
  let holding = true;
  // Resolves when the first signal to bob is held back: which side offers
  // first depends on the two ids, so alice's signal (her offer, or her
  // answer to bob's) may reach the server only after her messages are sent.
  /** @type {() => void} */
  let heldOne = () => {};
  const signalHeld = new Promise((resolve, reject) => {
    heldOne = () => resolve(undefined);
    setTimeout(() => reject(new Error('no signal to bob was held back')), WAIT_MS).unref();
  });
  signalHeld.catch(() => {}); // awaited below; not unhandled if the test ends first
  /** @type {import('playwright-core').WebSocketRoute | null} */
  let route = null;
  await bob.routeWebSocket(/\/ws$/, (ws) => {
    route = ws;
    const upstream = ws.connectToServer();
    ws.onMessage((m) => upstream.send(m));
    upstream.onMessage((m) => {
      const isSignal = typeof m === 'string' && JSON.parse(m).type === 'signal';
      if (holding && isSignal) {
        held.push(/** @type {string} */ (m));
        heldOne();
      } else ws.send(m);
    });
  });
  await bob.goto(link);
  await join(bob, 'bob');
  await waitForMembers(alice, ['bob'], 'connecting');

  await send(alice, 'Sent while bob was still connecting');
  await send(alice, 'and a second one, in order');
  await waitForMembers(alice, ['bob'], 'connecting');

  await signalHeld;
  // Bob could not have connected without it.
  await waitForMembers(alice, ['bob'], 'connecting');
  holding = false;
  for (const m of held.splice(0)) route?.send(m);
  await waitForMembers(alice, ['bob']);
  await waitForMessage(bob, 'Sent while bob was still connecting', 'alice');
  await waitForMessage(bob, 'and a second one, in order', 'alice');
  const order = await bob.evaluate(() =>
    [...document.querySelectorAll('[role="log"] .msg-text')].map((e) => e.textContent),
  );
  assert.deepEqual(order, ['Sent while bob was still connecting', 'and a second one, in order']);
});
