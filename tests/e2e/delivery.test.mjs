// Browser end-to-end: what people see about their messages. Delivery
// states, history for late joiners, typing notices, reloading a page, the
// server dying and coming back on the same port, and clearing history.
// Real peerchat server, real headless Chromium pages, one context (own
// storage) per person. Run inside a loopback-only network namespace
// (scripts/netns.sh).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LineClient } from './lib/cli.mjs';
import {
  BIN,
  enter,
  join,
  launchBrowser,
  messageTexts,
  newPageIn,
  noticeTexts,
  openRoom,
  restartServer,
  send,
  serverAndBrowser,
  startServer,
  unexpectedErrors,
  waitForDelivery,
  waitForMembers,
  waitForMessage,
  waitForMessages,
  waitForPage,
  waitForServerOpen,
  waitForStored,
} from './lib/harness.mjs';

/**
 * Sends `text` from `from` and waits until every page in `to` shows it.
 * @param {import('playwright-core').Page} from
 * @param {string} text
 * @param {import('playwright-core').Page[]} to
 */
async function say(from, text, to) {
  await send(from, text);
  await waitForMessage(from, text, 'You');
  for (const page of to) await waitForMessage(page, text);
}

/**
 * Asserts that every page shows exactly `want`, in that order.
 * @param {Record<string, import('playwright-core').Page>} pages by name
 * @param {string[]} want
 */
async function assertLogs(pages, want) {
  for (const [name, page] of Object.entries(pages)) {
    assert.deepEqual(await messageTexts(page), want, `${name}'s log`);
  }
}

test('delivery states: sent when alone, delivered (to bob) once he holds it', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  await send(alice, 'Anyone here yet?');
  const alone = await waitForDelivery(alice, 'Anyone here yet?', 'sent');
  assert.equal(alone.text, 'Sent');
  assert.match(alone.title, /No one else/);

  const bob = await enter(browser, server.url, alice.url(), 'bob');
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);
  // Bob gets the first one from alice's history, but it stays "sent": he
  // was not there when it was sent.
  await waitForMessage(bob, 'Anyone here yet?', 'alice');

  await send(alice, 'Hello bob');
  await waitForMessage(bob, 'Hello bob', 'alice');
  const delivered = await waitForDelivery(alice, 'Hello bob', 'delivered');
  assert.equal(delivered.text, 'Delivered');
  assert.equal(delivered.title, 'Delivered to bob.');
  assert.equal((await waitForDelivery(alice, 'Anyone here yet?', 'sent')).text, 'Sent');

  // Only own messages carry a status.
  const bobStatuses = await bob.locator('[role="log"] .msg-status').count();
  assert.equal(bobStatuses, 0, "bob's page shows no status on alice's messages");
  for (const page of [alice, bob]) assert.deepEqual(page.errors, [], 'no page errors');
});

test('a late joiner gets the conversation from everyone present, in the same order', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const bob = await enter(browser, server.url, alice.url(), 'bob');
  await waitForMembers(alice, ['bob']);

  // Each waits for the previous one, so each is a reply to all before it.
  const lines = [
    { from: alice, to: bob, text: 'one: hi bob' },
    { from: bob, to: alice, text: 'two: hi alice' },
    { from: alice, to: bob, text: 'three: carol is coming' },
    { from: bob, to: alice, text: 'four: great' },
    { from: alice, to: bob, text: 'five: here she is' },
  ];
  for (const { from, to, text } of lines) await say(from, text, [to]);
  const five = lines.map((l) => l.text);
  await assertLogs({ alice, bob }, five);

  const carol = await enter(browser, server.url, alice.url(), 'carol');
  await waitForMembers(carol, ['alice', 'bob']);
  await waitForMessages(carol, five);
  assert.deepEqual(await messageTexts(carol), five, "carol's log, in alice's order");

  // A live message from each travels behind their history on the same
  // ordered channel: once carol shows both, no late copy is still on its way.
  await say(alice, 'welcome carol', [bob, carol]);
  await say(bob, 'hi carol', [alice, carol]);
  const all = [...five, 'welcome carol', 'hi carol'];
  await assertLogs({ alice, bob, carol }, all);
  // Carol's copy says who wrote what.
  const authors = await carol.evaluate(() =>
    [...document.querySelectorAll('[role="log"] .msg-author')].map((e) => e.textContent),
  );
  assert.deepEqual(authors, ['alice', 'bob', 'alice', 'bob', 'alice', 'alice', 'bob']);
  for (const page of [alice, bob, carol]) assert.deepEqual(page.errors, [], 'no page errors');
});

test('typing notice: shown while bob types, gone as soon as his message arrives', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const bob = await enter(browser, server.url, alice.url(), 'bob');
  await waitForMembers(alice, ['bob']);
  await waitForMembers(bob, ['alice']);
  assert.equal(await alice.locator('#typing').textContent(), '');

  const box = bob.getByLabel('Message', { exact: true });
  await box.pressSequentially('I am typing some');
  await waitForPage(alice, () => document.getElementById('typing')?.textContent === 'bob is typing…');
  assert.equal(await alice.locator('#typing').getAttribute('aria-live'), 'polite');
  assert.equal(await bob.locator('#typing').textContent(), '', 'bob is not told that he types');

  // The notice would run out by itself 6 s after the typing; it must be
  // gone the moment the message shows, long before that.
  const typedAt = Date.now();
  await box.press('Enter');
  const shownWith = await waitForPage(alice, () => {
    const arrived = [...document.querySelectorAll('[role="log"] .msg-text')].some(
      (e) => e.textContent === 'I am typing some',
    );
    return arrived ? { typing: document.getElementById('typing')?.textContent ?? '' } : null;
  });
  assert.ok(Date.now() - typedAt < 5000, 'the message arrived well within the notice lifetime');
  assert.deepEqual(shownWith, { typing: '' }, 'the typing notice cleared when the message arrived');
  for (const page of [alice, bob]) assert.deepEqual(page.errors, [], 'no page errors');
});

test('a reloaded or reopened page keeps its messages and identity and catches up, without duplicates', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  let bob = await enter(browser, server.url, link, 'bob');
  await waitForMembers(alice, ['bob']);
  await say(alice, 'a1: before the reload', [bob]);
  await say(bob, 'b1: mine', [alice]);
  await say(alice, 'a2: still here?', [bob]);
  await waitForDelivery(alice, 'a2: still here?', 'delivered');
  await waitForStored(bob, 3);

  // 1. A reload: bob comes straight back as the same member, without
  //    pressing Join, and nobody sees him leave or join.
  const aliceNotices = await noticeTexts(alice);
  await bob.reload();
  await bob.getByText('3 earlier messages from this device.').waitFor({ state: 'attached' });
  assert.deepEqual(await messageTexts(bob), ['a1: before the reload', 'b1: mine', 'a2: still here?']);
  await bob.getByRole('log').getByText('You are back as bob. Here: alice.').waitFor();
  await waitForMembers(bob, ['alice']);
  await waitForMembers(alice, ['bob']);
  // Still bob: his old message is his own, and he numbers on from it.
  const ownAfterReload = await bob.evaluate(() =>
    [...document.querySelectorAll('[role="log"] .msg.own .msg-text')].map((e) => e.textContent),
  );
  assert.deepEqual(ownAfterReload, ['b1: mine'], "bob's own message is still his after the reload");
  await say(bob, 'b2: back', [alice]);
  assert.equal(await bob.locator('[role="log"] .msg.own').last().getAttribute('data-seq'), '2');
  await waitForDelivery(bob, 'b2: back', 'delivered');
  await waitForStored(bob, 4);
  assert.deepEqual(await noticeTexts(alice), aliceNotices, 'alice saw bob neither leave nor join');
  assert.deepEqual(
    (await noticeTexts(bob)).filter((n) => / (left|joined)$/.test(n)),
    [],
    'bob saw no one leave or join',
  );

  // 2. Bob leaves the room (alice is told at once) and closes his tab;
  //    alice writes while he is gone; he opens the room again in the same
  //    browser (same storage) and joins again.
  const context = bob.context();
  await bob.getByRole('button', { name: 'Leave the room' }).click();
  await alice.getByRole('log').getByText('bob left').waitFor();
  await bob.getByRole('button', { name: 'Join' }).waitFor();
  await bob.close();
  await waitForMembers(alice, []);
  await send(alice, 'a3: sent while bob was away');
  await waitForDelivery(alice, 'a3: sent while bob was away', 'sent');

  bob = await newPageIn(context);
  await bob.goto(link);
  await bob.getByText('4 earlier messages from this device.').waitFor({ state: 'attached' });
  assert.equal(await bob.getByLabel('Nickname', { exact: true }).inputValue(), 'bob', 'the nickname is remembered');
  await join(bob, 'bob');
  await bob.getByRole('log').getByText('You joined as bob').waitFor();
  await waitForMembers(bob, ['alice']);
  await waitForMessage(bob, 'a3: sent while bob was away', 'alice');

  // Live messages both ways travel behind any history still on its way.
  await say(bob, 'b3: caught up', [alice]);
  await say(alice, 'a4: welcome back', [bob]);
  const want = [
    'a1: before the reload',
    'b1: mine',
    'a2: still here?',
    'b2: back',
    'a3: sent while bob was away',
    'b3: caught up',
    'a4: welcome back',
  ];
  await assertLogs({ alice, bob }, want);
  const seqs = await bob.evaluate(() =>
    [...document.querySelectorAll('[role="log"] .msg.own')].map((e) => /** @type {HTMLElement} */ (e).dataset.seq),
  );
  assert.deepEqual(seqs, ['1', '2', '3'], "bob's messages, numbered on across reloads");
  await waitForDelivery(bob, 'b3: caught up', 'delivered');
  assert.deepEqual(alice.errors, [], 'no page errors');
  assert.deepEqual(bob.errors, [], 'no page errors');
});

test('the server is SIGKILLed and restarted on the same port: nobody leaves, nothing is lost', async (t) => {
  let server = await startServer();
  const first = server;
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await first.stop('SIGKILL');
    await server.stop('SIGKILL');
  });

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await enter(browser, server.url, link, 'bob');
  const carol = await enter(browser, server.url, link, 'carol');
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);
  await waitForMembers(carol, ['alice', 'bob']);
  await say(alice, 'alice: before the crash', [bob, carol]);
  await say(bob, 'bob: before the crash', [alice, carol]);
  await say(carol, 'carol: before the crash', [alice, bob]);
  const noticesBefore = {
    alice: await noticeTexts(alice),
    bob: await noticeTexts(bob),
    carol: await noticeTexts(carol),
  };

  await server.stop('SIGKILL');
  for (const page of [alice, bob, carol]) {
    await waitForPage(page, () => document.getElementById('server-status')?.dataset.state === 'offline');
  }
  await say(alice, 'alice: the server is gone', [bob, carol]);
  await say(bob, 'bob: we still talk', [alice, carol]);

  server = await restartServer(first);
  for (const page of [alice, bob, carol]) await waitForServerOpen(page);
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);
  await waitForMembers(carol, ['alice', 'bob']);
  await say(carol, 'carol: the server is back', [alice, bob]);

  // A newcomer: the server knows everyone again, and dave gets everything.
  const dave = await enter(browser, server.url, link, 'dave');
  await waitForMembers(dave, ['alice', 'bob', 'carol']);
  await waitForMembers(alice, ['bob', 'carol', 'dave']);
  await waitForMembers(bob, ['alice', 'carol', 'dave']);
  await waitForMembers(carol, ['alice', 'bob', 'dave']);
  const conversation = await messageTexts(alice);
  assert.equal(conversation.length, 6, `alice's log: ${JSON.stringify(conversation)}`);
  await waitForMessages(dave, conversation);
  // Flush: a live message from each travels behind its history to dave.
  await say(alice, 'alice: hi dave', [bob, carol, dave]);
  await say(bob, 'bob: hi dave', [alice, carol, dave]);
  await say(carol, 'carol: hi dave', [alice, bob, dave]);
  const all = [...conversation, 'alice: hi dave', 'bob: hi dave', 'carol: hi dave'];
  await assertLogs({ alice, bob, carol, dave }, all);

  // Nobody was seen leaving (or joining again) through all this: the only
  // notice since is dave joining.
  for (const [name, page] of Object.entries({ alice, bob, carol })) {
    const notices = await noticeTexts(page);
    assert.deepEqual(notices.filter((n) => / left$/.test(n)), [], `${name} saw no one leave`);
    assert.deepEqual(notices, [...noticesBefore[/** @type {'alice'|'bob'|'carol'} */ (name)], 'dave joined'], `${name}'s notices`);
  }
  for (const page of [alice, bob, carol, dave]) assert.deepEqual(unexpectedErrors(page), [], 'no page errors');
});

test('the server is stopped with SIGTERM and restarted: an outage, not everyone leaving', async (t) => {
  let server = await startServer();
  const first = server;
  const browser = await launchBrowser();
  /** @type {LineClient | undefined} */
  let carol;
  t.after(async () => {
    carol?.kill();
    await browser.close();
    await first.stop('SIGKILL');
    await server.stop('SIGKILL');
  });

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await enter(browser, server.url, link, 'bob');
  carol = new LineClient('carol', BIN, ['chat', link, '--name', 'carol', '--plain', '--no-history']);
  await carol.waitFor((l) => l.startsWith('* joined as carol; here: alice, bob'), 'err');
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);
  await carol.waitFor((l) => l === '* bob is connected', 'err');
  await say(alice, 'alice: before the stop', [bob]);
  await carol.waitFor((l) => l === 'alice: alice: before the stop');
  const noticesBefore = { alice: await noticeTexts(alice), bob: await noticeTexts(bob) };

  // A graceful stop: every client is told `shutting_down` and closed (1001).
  assert.equal(await server.stop('SIGTERM'), 0, 'the server exits cleanly');
  for (const page of [alice, bob]) {
    await waitForPage(page, () => document.getElementById('server-status')?.dataset.state === 'offline');
  }
  await carol.waitFor((l) => l.startsWith('* server unreachable'), 'err');
  // Nobody left: the members are still connected to each other and chat on.
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);
  await say(bob, 'bob: the server stopped', [alice]);
  await carol.waitFor((l) => l === 'bob: bob: the server stopped');
  carol.say('carol: still here');
  await waitForMessage(alice, 'carol: still here', 'carol');
  await waitForMessage(bob, 'carol: still here', 'carol');
  assert.equal((await waitForDelivery(bob, 'bob: the server stopped', 'delivered')).text, 'Delivered');

  server = await restartServer(first);
  for (const page of [alice, bob]) await waitForServerOpen(page);
  await say(alice, 'alice: the server is back', [bob]);
  await carol.waitFor((l) => l === 'alice: alice: the server is back');
  // The terminal said once that the server was lost, however many times
  // it tried, and once that it is back.
  await carol.waitFor((l) => l === '* connected to the server again', 'err');
  assert.equal(carol.err.filter((l) => l.startsWith('* server unreachable')).length, 1, carol.err.join('\n'));
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMembers(bob, ['alice', 'carol']);
  // A newcomer finds everyone: each of them is in the new server's room.
  const dave = await enter(browser, server.url, link, 'dave');
  await waitForMembers(dave, ['alice', 'bob', 'carol']);

  for (const [name, page] of Object.entries({ alice, bob })) {
    const notices = await noticeTexts(page);
    assert.deepEqual(notices.filter((n) => / left$/.test(n)), [], `${name} saw no one leave`);
    assert.deepEqual(notices, [...noticesBefore[/** @type {'alice'|'bob'} */ (name)], 'dave joined'], `${name}'s notices`);
  }
  assert.deepEqual(carol.err.filter((l) => / (left|joined)$/.test(l)), ['* dave joined'], "carol's notices");
  for (const page of [alice, bob, dave]) assert.deepEqual(unexpectedErrors(page), [], 'no page errors');
});

test('cleared history stays cleared: not shown, not brought back by others, not after a reload', async (t) => {
  const { server, browser } = await serverAndBrowser(t);

  const alice = await openRoom(browser, server.url, 'alice');
  const link = alice.url();
  const bob = await enter(browser, server.url, link, 'bob');
  await waitForMembers(alice, ['bob']);
  const old = ['a1: soon forgotten', 'b1: by alice only', 'a2: gone too'];
  await say(alice, old[0], [bob]);
  await say(bob, old[1], [alice]);
  await say(alice, old[2], [bob]);

  await alice.getByRole('button', { name: 'Clear history on this device' }).click();
  await alice.getByRole('dialog', { name: 'Clear this room from this device?' }).getByRole('button', { name: 'Clear everything' }).click();
  await alice.getByRole('log').getByText(/^Cleared on this device/).waitFor();
  assert.deepEqual(await messageTexts(alice), [], "alice's log is empty");
  await waitForStored(alice, 0);

  await say(bob, 'b2: after the clear', [alice]);
  assert.deepEqual(await messageTexts(alice), ['b2: after the clear'], 'alice shows only the new one');

  // Carol joins and syncs with both; she has everything, alice still not.
  const carol = await enter(browser, server.url, link, 'carol');
  await waitForMembers(carol, ['alice', 'bob']);
  await waitForMembers(alice, ['bob', 'carol']);
  await waitForMessages(carol, [...old, 'b2: after the clear']);
  // Alice's live message reaches carol behind alice's sync, so carol has
  // answered that sync (with whatever history she would send alice)
  // before she sends hers; alice gets carol's after that history.
  await say(alice, 'a3: hi carol', [bob, carol]);
  await say(carol, 'c1: hi all', [alice, bob]);
  const kept = ['b2: after the clear', 'a3: hi carol', 'c1: hi all'];
  await assertLogs({ alice }, kept);
  await assertLogs({ bob, carol }, [...old, ...kept]);

  // After a reload, alice's device still holds only what came after.
  await waitForStored(alice, 3);
  await alice.reload();
  await alice.getByText('3 earlier messages from this device.').waitFor({ state: 'attached' });
  assert.deepEqual(await messageTexts(alice), kept, 'after the reload');
  await alice.getByRole('log').getByText('You are back as alice').waitFor();
  await waitForMembers(alice, ['bob', 'carol']);
  await say(alice, 'a4: reloaded', [bob, carol]);
  await say(bob, 'b3: ok', [alice, carol]);
  await say(carol, 'c2: ok', [alice, bob]);
  await assertLogs({ alice }, [...kept, 'a4: reloaded', 'b3: ok', 'c2: ok']);
  for (const page of [alice, bob, carol]) assert.deepEqual(page.errors, [], 'no page errors');
});
